package hints

import (
	"context"
	"slices"
)

// Ring membership: the queue re-routes the hints of nodes that have left
// the ring (see Remove). It keeps the latest member snapshot and the names
// that have left since, and re-routes hints held for those names both when
// a snapshot shows them gone and on every retry tick after: a coordinator
// whose ring view lags can still hint for a node after its re-route
// finished, and those hints would otherwise wait for a node that is never
// coming back.

// RingChanged takes the current ring members. The hints of every target
// that is no longer a member are re-routed (see Remove), now and, for
// hints stored for such a target later, on the retry timer. An empty
// member list is ignored (no ring known yet). Callers whose first ring
// view may be partial should use RingSnapshot.
func (q *Queue) RingChanged(ctx context.Context, members []string) error {
	if len(members) == 0 {
		return nil
	}
	q.mu.Lock()
	q.noteMembersLocked(members)
	for name := range q.targets {
		if !slices.Contains(members, name) {
			q.left[name] = true
		}
	}
	q.mu.Unlock()
	return q.rerouteLeft(ctx)
}

// RingSnapshot takes each ring snapshot as the node builds it. A name that
// was a member of an earlier snapshot and is not in this one has left the
// ring: its hints are re-routed now (see Remove), and so are hints stored
// for it later, on the retry timer, until a snapshot lists it again. The
// first snapshot never counts as a removal, and a target that no snapshot
// listed (a hint log recovered before gossip learned the node) is never
// re-routed: a partial first view must not move hints away from live
// members. An empty member list is ignored.
func (q *Queue) RingSnapshot(ctx context.Context, members []string) error {
	if len(members) == 0 {
		return nil
	}
	q.mu.Lock()
	q.noteMembersLocked(members)
	q.mu.Unlock()
	return q.rerouteLeft(ctx)
}

// noteMembersLocked makes members the latest snapshot: members of the
// previous one missing from it have left, and names in it are members
// again. q.mu must be held.
func (q *Queue) noteMembersLocked(members []string) {
	cur := make(map[string]bool, len(members))
	for _, m := range members {
		cur[m] = true
	}
	for m := range q.members {
		if !cur[m] {
			q.left[m] = true
		}
	}
	for m := range cur {
		delete(q.left, m)
	}
	q.members = cur
}

// rerouteLeft re-routes the hints of every target that has left the ring.
func (q *Queue) rerouteLeft(ctx context.Context) error {
	q.mu.Lock()
	var gone []string
	for name := range q.targets {
		if q.left[name] {
			gone = append(gone, name)
		}
	}
	q.mu.Unlock()
	if len(gone) == 0 {
		return nil
	}
	slices.Sort(gone)
	return q.Remove(ctx, gone...)
}
