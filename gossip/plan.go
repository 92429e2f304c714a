package gossip

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ringkv/ringkv/ring"
)

// The cluster's plan (ring.Plan, docs/gossip.md "The plan") is held next to
// the membership map and spread the same three ways: whole in push-pull,
// as a named broadcast, and sent directly by Propose. Merging keeps the
// greater plan under Plan.Compare, so every node that has seen the same
// plans holds the same one, whatever the order they arrived in.

// maxPlanEpoch bounds a plan's epoch. Epochs count changes (one per start,
// retarget or commit of a transition), so 2^48 is more than one change a
// millisecond for eight thousand years; the bound keeps Epoch+1, which
// every next plan takes, from ever wrapping to 0 (the unknown plan).
const maxPlanEpoch = 1 << 48

// maxPlanBroadcast is the largest plan message queued for gossip. A
// gossip packet is memberlist's UDP buffer (1400 bytes) less its headers,
// the encryption overhead and memberlist's own broadcasts; a larger
// message would wait in the queue for ever. A larger plan (a cluster of
// dozens of nodes with long names) travels by push-pull and Propose's
// direct sends only.
const maxPlanBroadcast = 1024

// planBroadcastName names the plan's broadcast: a newer plan queued
// replaces an older one still waiting.
const planBroadcastName = "plan"

// checkPlan checks a plan's shape, whoever made it: Plan.Validate, every
// name a valid gossip node name, and the epoch within maxPlanEpoch. The
// error wraps ring.ErrBadPlan.
func checkPlan(p ring.Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Epoch > maxPlanEpoch {
		return fmt.Errorf("%w: epoch %d beyond %d", ring.ErrBadPlan, p.Epoch, uint64(maxPlanEpoch))
	}
	for _, list := range [][]string{p.Members, p.Target} {
		for _, name := range list {
			if err := validName(name); err != nil {
				return fmt.Errorf("%w: %w", ring.ErrBadPlan, err)
			}
		}
	}
	return nil
}

// ErrZoneChanged reports a node started with another zone than the plan
// it belongs to gives it. A zone, or having none, is fixed while the plan
// places the node: to move it, it leaves and joins again (or, if it was
// removed, its data directory is cleared). Clearing the data directory of
// a node the cluster's plan still places does not move it: it then
// follows the plan's zone and logs the mismatch.
var ErrZoneChanged = errors.New("gossip: node zone differs from the plan's")

// checkOwnZone refuses to start node in zone when plan, the persisted
// plan, has the node in Members or Target with another zone.
func checkOwnZone(plan ring.Plan, node, zone string) error {
	if !plan.Involves(node) {
		return nil
	}
	fixed := plan.Zones[node]
	if fixed == zone {
		return nil
	}
	change := "to change zones, leave the ring first (ringkv leave) and start it again with the new zone, or, if it was removed (ringkv remove), clear its data directory"
	if fixed == "" {
		change = "zones cannot be switched on in place: leave the ring first (ringkv leave) and start it again with the zone, or, if it was removed (ringkv remove), clear its data directory (docs/ring.md, \"Zones on an existing cluster\")"
	}
	return fmt.Errorf("%w: configured zone %q, but the cluster's plan (epoch %d) places this node in zone %q; start it with zone %q; %s",
		ErrZoneChanged, zone, plan.Epoch, fixed, fixed, change)
}

// acceptable checks a plan for this node to hold: checkPlan, and, as for
// rows, a version at most maxVersionLead ahead of the clock.
func (g *Gossip) acceptable(p ring.Plan) error {
	if err := checkPlan(p); err != nil {
		return err
	}
	if limit := versionAt(g.cfg.now()) + maxVersionLead; p.Version > limit {
		return fmt.Errorf("%w: version %d is more than %d ms ahead of this node's clock (limit %d)",
			ring.ErrBadPlan, p.Version, maxVersionLead, limit)
	}
	return nil
}

// Plan returns the cluster plan this node holds: the zero Plan (Epoch 0)
// until one is known. It takes no lock. The slices are shared: do not
// modify them.
func (g *Gossip) Plan() ring.Plan {
	if p := g.plan.Load(); p != nil {
		return *p
	}
	return ring.Plan{}
}

// Propose makes p the cluster plan if it is greater (Plan.Compare) than the
// plan this node holds: it is installed, persisted, queued for gossip and
// sent directly over TCP to every peer not known dead before Propose
// returns. A plan that is not greater lost to a newer one: Propose returns
// nil and does nothing. An invalid plan (checkPlan, or a version more than
// a day ahead of the clock) is an error wrapping ring.ErrBadPlan.
//
// Like Leave, it returns an error if the plan could not be persisted, or
// if alive peers exist and none acknowledged before ctx ended; the plan is
// then still held here and gossip keeps spreading it. OnPlanChange reports
// it as for a plan from a peer.
func (g *Gossip) Propose(ctx context.Context, p ring.Plan) error {
	if g.closed.Load() {
		return fmt.Errorf("%w: cannot propose a plan", ErrShutdown)
	}
	// The caller keeps its slices; ours must never change.
	p.Members, p.Target = slices.Clone(p.Members), slices.Clone(p.Target)
	if err := g.acceptable(p); err != nil {
		return fmt.Errorf("gossip: propose plan epoch %d: %w", p.Epoch, err)
	}
	if !g.installPlan(p) {
		g.log.Debug("proposed plan is not newer than the plan held; ignored",
			"epoch", p.Epoch, "version", p.Version, "held_epoch", g.Plan().Epoch)
		return nil
	}
	g.log.Info("plan proposed", "epoch", p.Epoch, "version", p.Version, "members", p.Members, "target", p.Target)
	g.queuePlan(p)
	g.markDirty()
	if err := g.persist(); err != nil {
		return fmt.Errorf("gossip: propose plan epoch %d: %w", p.Epoch, err)
	}
	return g.announce(ctx, "propose plan", encodePlanMsg(p))
}

// installPlan makes p the plan held if it is greater than the current one
// and reports whether it did. The compare and the store happen under mu,
// so two concurrent installs keep the greater.
func (g *Gossip) installPlan(p ring.Plan) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.Compare(g.Plan()) <= 0 {
		return false
	}
	g.plan.Store(&p)
	return true
}

// mergePlan takes a plan from a peer (via names how it came, for the log)
// if it is acceptable and greater than ours, re-gossips it (news spreads
// epidemically) and wakes the event goroutine to persist and report it. A
// refused plan is logged sparingly: the gossip port takes datagrams from
// anyone who can reach it.
func (g *Gossip) mergePlan(p ring.Plan, via string) {
	if !p.Known() {
		return
	}
	if err := g.acceptable(p); err != nil {
		g.refusePlan(via, err)
		return
	}
	if !g.installPlan(p) {
		return
	}
	g.queuePlan(p)
	g.markDirty()
}

// refusePlan logs a plan from a peer that was not taken, at most once per
// logEvery.
func (g *Gossip) refusePlan(via string, err error) {
	g.planLog.warn(g.log, g.cfg.now(),
		"refusing a cluster plan from a peer; check the clocks, or the gossip port is exposed",
		"via", via, "err", err)
}

// queuePlan queues p for gossip, unless it is too large for a gossip
// packet.
func (g *Gossip) queuePlan(p ring.Plan) {
	msg := encodePlanMsg(p)
	if len(msg) > maxPlanBroadcast {
		g.log.Debug("plan too large to gossip; push-pull and direct sends carry it", "bytes", len(msg), "epoch", p.Epoch)
		return
	}
	g.bcast.QueueBroadcast(&namedBroadcast{name: planBroadcastName, msg: msg})
}
