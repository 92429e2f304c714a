package node

import (
	"strconv"
	"strings"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/ring"
)

// Placement follows the cluster's plan (ring.Plan, spread by gossip): the
// members whose ring serves now and, during a membership change, the
// members the data is moving to. Every plan gossip delivers is turned into
// a ring.Transition and installed through the coordinator's fence, so that
// once the install returns no store or local write still works on the
// previous placement (the transfer sources rely on it: see
// docs/operations.md). The puller, the claimant and the cleanup loop are
// woken on every change.

// setPlan builds and installs the placement of p. It runs once from New,
// before gossip starts, then on gossip's event goroutine; a plan the ring
// refuses keeps the previous placement.
func (n *Node) setPlan(p ring.Plan) {
	n.planMu.Lock()
	defer n.planMu.Unlock()
	if old := n.place.Load(); old != nil && old.Plan().Compare(p) >= 0 {
		n.updateReady()
		return
	}
	t, err := ring.NewTransition(n.rcfg, p)
	if err != nil {
		n.log.Error("plan refused; keeping the previous placement", "epoch", p.Epoch, "members", strings.Join(p.Members, ","), "err", err)
		return
	}
	install := func() {
		n.place.Store(t)
		n.ring.Store(t.Current())
	}
	n.coord.Fence(install)
	n.log.Info("plan installed", "epoch", p.Epoch, "members", strings.Join(p.Members, ","),
		"target", strings.Join(p.Target, ","), "stable", p.Stable(),
		"fingerprint", strconv.FormatUint(t.Current().Fingerprint(), 16))
	n.checkPlanZone(p)
	n.ringChangedHints()
	n.wakeLoops()
	n.updateReady()
}

// checkPlanZone logs an error when p places this node in another zone
// than node.zone, once per differing plan zone: the plan was learnt from
// a peer (a persisted plan with another zone refuses the start), and the
// cluster places the node by the plan's zone. Runs under planMu.
func (n *Node) checkPlanZone(p ring.Plan) {
	self := n.cfg.Node.Name
	if !p.Involves(self) || p.Zones[self] == n.cfg.Node.Zone {
		return
	}
	if w := &n.zoneWarned; w.set && w.zone == p.Zones[self] {
		return
	}
	n.zoneWarned.zone, n.zoneWarned.set = p.Zones[self], true
	n.log.Error("the cluster's plan places this node in another zone than node.zone; placement follows the plan: leave the ring and join again to change zones",
		"plan_zone", p.Zones[self], "zone", n.cfg.Node.Zone, "epoch", p.Epoch)
}

// The coordinator hands hints to fallbacks of the down replica's zone.
var _ replica.ZonedPlacement = (*ring.Transition)(nil)

// placement is the current placement as the coordinator sees it.
func (n *Node) placement() replica.Placement {
	if t := n.place.Load(); t != nil {
		return t
	}
	return nil
}

// transferPlacement is the current placement as the puller sees it.
func (n *Node) transferPlacement() replica.TransferPlacement {
	return n.place.Load()
}

// onRowsChanged runs when gossip's membership map changes (a node joins,
// starts leaving, leaves or is removed): the claimant may have a decision
// to make and the cleanup loop a leave to finish.
func (n *Node) onRowsChanged([]string) { n.wakeLoops() }

// wakeLoops nudges the claimant, the puller and the cleanup loop without
// blocking the caller.
func (n *Node) wakeLoops() {
	for _, ch := range []chan struct{}{n.claimWake, n.cleanWake} {
		if ch == nil {
			continue
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	n.puller.Wake()
}
