package node

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/ring"
)

// Cleanup drops the partitions this node no longer replicates, and
// finishes a leave. Dropping is the one step of a membership change that
// cannot be undone, so it waits until the plan is stable, this node is not
// a replica of the partition, and every live node answers that it follows
// the very same plan: a node still on the previous plan could otherwise
// read the partition here and find it empty. No request from a newer plan
// may have been seen either (this node would be behind). Each key is
// deleted under its lock with the same checks repeated, so a write that a
// newer plan sends here in the meantime survives.

// cleanStep drops what can be dropped and, for a node whose leave is
// complete, records that it left and asks Run to return.
func (n *Node) cleanStep(ctx context.Context) {
	t := n.place.Load()
	if t == nil || !t.Plan().Known() || !t.Plan().Stable() {
		return
	}
	self := n.cfg.Node.Name
	var drop []int
	for part, st := range n.engine.PartitionStats() {
		if st.Keys > 0 && !t.Holds(self, part) {
			drop = append(drop, part)
		}
	}
	leaving := n.gossip.Ring()[self].Status == gossip.StatusLeaving && !slices.Contains(t.Plan().Members, self)
	if len(drop) == 0 && !leaving {
		return
	}
	if n.coord.MaxEpochSeen() > t.Epoch() || !n.everyoneFollows(ctx, t) {
		return
	}
	for _, part := range drop {
		still := func() bool {
			cur := n.place.Load()
			return cur == t && !cur.Holds(self, part) && n.coord.MaxEpochSeen() <= t.Epoch()
		}
		dropped, err := n.coord.DropPartition(ctx, part, still)
		n.droppedKeys.Add(int64(dropped))
		if err != nil {
			if !errors.Is(err, replica.ErrDropAborted) && ctx.Err() == nil {
				n.log.Warn("dropping a partition this node no longer replicates failed", "partition", part, "err", err)
			}
			return
		}
		n.droppedParts.Add(1)
		n.log.Info("dropped a partition this node no longer replicates", "partition", part, "keys", dropped, "epoch", t.Epoch())
	}
	if leaving {
		// Hints this node keeps as a stand-in counted toward their
		// writes' W: they go to their targets (or, for removed targets,
		// the keys' replicas) before the node stops.
		if p := n.hints.Stats().PendingHints; p > 0 {
			n.log.Info("leave: waiting for the hints this node holds to be delivered", "hints", p)
			return
		}
		n.finishLeave(ctx)
	}
}

// everyoneFollows reports whether every live node that is, or wants to
// be, in the ring answers KindStatus with t's plan.
func (n *Node) everyoneFollows(ctx context.Context, t *ring.Transition) bool {
	names := map[string]bool{}
	for _, m := range t.Plan().Members {
		names[m] = true
	}
	for name, e := range n.gossip.Ring() {
		if e.Status == gossip.StatusJoined || e.Status == gossip.StatusLeaving {
			names[name] = true
		}
	}
	for name := range names {
		if name == n.cfg.Node.Name || !n.gossip.Alive(name) {
			continue
		}
		st, err := n.status(ctx, name)
		if err != nil || st.Epoch != t.Epoch() || st.PlanHash != t.PlanHash() {
			return false
		}
	}
	return true
}

// finishLeave records that this node left the ring, now that a stable plan
// without it is followed by everyone and its data is dropped, and makes
// Run return.
func (n *Node) finishLeave(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.gossip.Leave(lctx); err != nil {
		n.log.Warn("recording the leave failed; retrying", "err", err)
		return
	}
	n.log.Info("handed every partition off and left the ring; stopping")
	n.leftOnce.Do(func() { close(n.left) })
}
