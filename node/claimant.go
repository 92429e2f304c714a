package node

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/ring"
)

// The claimant turns membership intent (gossip rows: joined, leaving, left,
// removed) into plans. Every node runs claimLoop; only the node that
// ring.Claimant names acts, and ring.Decide says what to do: start moving
// to the desired members, retarget a change whose target lost a member, or
// commit a change whose every new replica holds a full copy. Safety does
// not rest on there being one claimant: a commit needs every pending
// replica's own report for that exact plan, and data is dropped only once
// every live node follows the same stable plan (cleanup.go).

// loopInterval is how often the claimant and cleanup loops look again
// without being woken (liveness changes do not wake them).
const loopInterval = time.Second

// statusTimeout bounds one KindStatus call.
const statusTimeout = 2 * time.Second

// every runs step on every wake and every loopInterval until ctx ends: the
// claimant's and the cleanup's loop.
func every(ctx context.Context, wake <-chan struct{}, step func(context.Context)) {
	tick := time.NewTicker(loopInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
		step(ctx)
	}
}

// desiredFrom returns the nodes that want to be in the ring: those whose
// row says joined. known is false while rows lacks a node of p: a node
// that has the plan but not yet every row (a joiner that just reached a
// seed) would take the missing members for nodes that do not want to be
// in, and retarget the cluster to what it knows.
func desiredFrom(p ring.Plan, rows gossip.Map) (desired []string, known bool) {
	for _, name := range slices.Concat(p.Members, p.Target) {
		if _, ok := rows[name]; !ok {
			return nil, false
		}
	}
	for name, e := range rows {
		if e.Status == gossip.StatusJoined {
			desired = append(desired, name)
		}
	}
	slices.Sort(desired)
	return desired, true
}

// situation gathers what ring.Decide needs from gossip's plan p and rows.
func (n *Node) situation(p ring.Plan, rows gossip.Map, desired []string) ring.Situation {
	self := n.cfg.Node.Name
	return ring.Situation{
		Plan:    p,
		Desired: desired,
		Gone: func(name string) bool {
			st := rows[name].Status
			return st == gossip.StatusRemoved || st == gossip.StatusLeft
		},
		Alive:    func(name string) bool { return name == self || n.gossip.Alive(name) },
		Zone:     func(name string) string { return rows[name].Zone },
		Complete: func(string, int) bool { return false },
		Now:      uint64(max(time.Now().UnixMilli(), 0)),
	}
}

// claimStep makes one claimant decision, if this node is the claimant.
func (n *Node) claimStep(ctx context.Context) {
	p := n.gossip.Plan()
	t := n.place.Load()
	if !p.Known() || t == nil || !t.Plan().Equal(p) {
		return // not installed yet: setPlan wakes us again
	}
	rows := n.gossip.Ring()
	desired, known := desiredFrom(p, rows)
	if !known {
		return
	}
	s := n.situation(p, rows, desired)
	s.Transition = t
	if ring.Claimant(s) != n.cfg.Node.Name {
		return
	}
	// A commit also needs every live node to follow the plan of the
	// change: one still on the plan before it reads only the old replicas
	// (R of them), which the writes of the committed plan (W of the new
	// ones) need not reach. During the change reads and writes are joint,
	// so from there the commit is safe to spread.
	if !p.Stable() && n.everyoneFollows(ctx, t) {
		done := n.doneByNode(ctx, t)
		s.Complete = func(node string, part int) bool { return done[node][int32(part)] }
	}
	next, reason, ok := ring.Decide(n.rcfg, s)
	if !ok {
		return
	}
	// The calls above take time: decide only on what still holds.
	if !n.gossip.Plan().Equal(p) || !maps.Equal(n.gossip.Ring(), rows) {
		return
	}
	n.log.Info("claimant: "+reason, "epoch", next.Epoch, "members", strings.Join(next.Members, ","), "target", strings.Join(next.Target, ","))
	pctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if err := n.gossip.Propose(pctx, next); err != nil {
		n.log.Warn("claimant: proposing the plan failed", "epoch", next.Epoch, "err", err)
	}
}

// doneByNode asks every pending replica of t which partitions it holds a
// full copy of, for t's plan. A node that does not answer, or answers for
// another plan, has nothing done.
func (n *Node) doneByNode(ctx context.Context, t *ring.Transition) map[string]map[int32]bool {
	out := map[string]map[int32]bool{}
	for _, m := range t.Moves() {
		if _, asked := out[m.To]; asked {
			continue
		}
		done := map[int32]bool{}
		out[m.To] = done
		st, err := n.status(ctx, m.To)
		// A peer's list is outside input: one longer than the partition
		// count, or naming a partition that does not exist, is ignored
		// rather than allowed to size a map.
		if err != nil || st.Epoch != t.Epoch() || st.PlanHash != t.PlanHash() || len(st.Done) > n.rcfg.Partitions {
			continue
		}
		for _, part := range st.Done {
			if part >= 0 && int(part) < n.rcfg.Partitions {
				done[part] = true
			}
		}
	}
	return out
}

// nodeStatus is a node's answer to KindStatus.
type nodeStatus struct {
	Epoch, PlanHash uint64
	Done            []int32
}

// status asks node which plan it follows and what it has pulled; this
// node answers from its own puller.
func (n *Node) status(ctx context.Context, node string) (nodeStatus, error) {
	if node == n.cfg.Node.Name {
		e, h, done := n.puller.Progress()
		return nodeStatus{Epoch: e, PlanHash: h, Done: done}, nil
	}
	cctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	resp, err := n.rpc.Call(cctx, node, replica.Request{Kind: replica.KindStatus})
	if err != nil {
		return nodeStatus{}, err
	}
	return nodeStatus{Epoch: resp.Epoch, PlanHash: resp.PlanHash, Done: resp.Done}, nil
}
