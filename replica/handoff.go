package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ringkv/ringkv/vclock"
)

// This file holds hinted handoff's side of the coordinator: sending a down
// replica's copy to a stand-in (sloppy quorum), serving hints kept for
// other nodes, and delivering a stand-in's hints back in batches.
//
// Stand-ins never coordinate: a write reaching a node outside the key's
// preference list is forwarded to the first live replica, which mints the
// dot. A stand-in only stores the merged set it is sent, in its hint log,
// apart from its own data, so no node ever mints a dot for a key from a
// partial view of that key's history (see docs/hints.md).

// standIns hands out a write's fallbacks, each at most once, to the
// goroutines replicating its copies. Safe for concurrent use.
type standIns struct {
	list  []string
	alive func(string) bool
	// zoned, when not nil, gives nodes' zones: a down replica's stand-in
	// is then the first live unused fallback of its own zone, if any.
	// Without zones (nil, or every node in zone "") that rule never
	// applies, and fallbacks go out in ring order.
	zoned ZonedPlacement

	mu sync.Mutex // guards used and usedMore
	// Fallbacks are handed out of ring order when zones apply: used
	// marks the first 64 handed out, usedMore (allocated only for longer
	// lists) the rest, so that the common case allocates nothing.
	used     uint64
	usedMore []bool
}

// take returns a live fallback not yet used by this write, for the down
// replica target: the first of target's zone, else the first of any zone
// (without zones, the next in ring order).
func (s *standIns) take(target string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.zoned != nil {
		if z := s.zoned.Zone(target); z != "" {
			if i, ok := s.find(func(n string) bool { return s.zoned.Zone(n) == z }); ok {
				return s.list[i], true
			}
		}
	}
	if i, ok := s.find(func(string) bool { return true }); ok {
		return s.list[i], true
	}
	return "", false
}

// find marks and returns the index of the first unused live fallback
// that match accepts.
func (s *standIns) find(match func(string) bool) (int, bool) {
	for i, n := range s.list {
		if s.isUsed(i) || !match(n) || !s.alive(n) {
			continue
		}
		if i < 64 {
			s.used |= 1 << i
		} else {
			if s.usedMore == nil {
				s.usedMore = make([]bool, len(s.list))
			}
			s.usedMore[i] = true
		}
		return i, true
	}
	return 0, false
}

func (s *standIns) isUsed(i int) bool {
	if i < 64 {
		return s.used&(1<<i) != 0
	}
	return s.usedMore != nil && s.usedMore[i]
}

// copySent judges the answer err of a replica's own copy of a write: a
// success or a refusal as no replica is final; any other failure is to be
// tried on a stand-in (final false, the reply's err the cause).
func (c *Coordinator) copySent(node string, err error) (r reply, final bool) {
	if err == nil {
		return reply{node: node}, true
	}
	c.stats.replicaFailures.Add(1)
	if errors.Is(err, ErrNotReplica) {
		// The node follows a newer plan in which it holds no copy of
		// the key: a hint kept for it would be delivered to a node
		// that is no replica, and count toward W for nothing.
		return reply{node: node, err: err}, true
	}
	return reply{node: node, err: err}, false
}

// standIn sends the copy of a write for target, whose own copy failed
// with cause (or which is down), to the next live fallback as a hint,
// trying further fallbacks while stand-ins refuse; when none takes it,
// the coordinator keeps the hint itself (keepHint).
func (c *Coordinator) standIn(ctx context.Context, target string, store Request, stand *standIns, sloppy bool, cause error) reply {
	key, set, epoch := store.Key, store.Siblings, store.Epoch
	for ctx.Err() == nil {
		fb, ok := stand.take(target)
		if !ok {
			break
		}
		err := c.sendHint(ctx, fb, target, key, set, epoch)
		if err != nil {
			c.stats.hintFailures.Add(1)
			c.log.Debug("stand-in refused hint", "peer", fb, "target", target, "err", err)
			cause = fmt.Errorf("%w; stand-in %s: %w", cause, fb, err)
			continue
		}
		c.stats.hintsSent.Add(1)
		if !sloppy {
			return reply{node: target, err: fmt.Errorf("%w (%s keeps a hint, not counted: strict quorum)", cause, fb)}
		}
		return reply{node: target, via: fb}
	}
	return reply{node: target, err: c.keepHint(ctx, target, key, set, cause)}
}

// keepHint keeps a down replica's copy in this node's own hint sink when
// no stand-in took it (none free, as in 3 nodes with N=3, or all
// refused), as Cassandra's coordinator does, so that the replica still
// gets the write once it is back. It never counts toward W: the returned
// error is the replica's cause, with what became of the hint.
func (c *Coordinator) keepHint(ctx context.Context, target string, key []byte, set vclock.Siblings, cause error) error {
	if c.cfg.Hints == nil {
		return cause
	}
	if ctx.Err() != nil {
		// The replica held the send until the request's deadline: the copy
		// still needs keeping, and keeping it is a local write.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
		defer cancel()
	}
	if err := c.cfg.Hints.StoreHint(ctx, target, key, set); err != nil {
		c.log.Debug("keeping hint failed", "target", target, "err", err)
		return fmt.Errorf("%w; keeping a hint here failed: %w", cause, err)
	}
	c.stats.hintsKept.Add(1)
	return fmt.Errorf("%w (kept as a hint by the coordinator, not counted)", cause)
}

// sendHint asks stand-in to keep set for key on behalf of target.
func (c *Coordinator) sendHint(ctx context.Context, standIn, target string, key []byte, set vclock.Siblings, epoch uint64) error {
	_, err := c.cfg.Transport.Call(ctx, standIn, Request{Kind: KindStore, Key: key, Siblings: set, HintFor: target, Epoch: epoch})
	return err
}

// Handoff delivers a batch of hints this node kept for target: target
// merges each entry into its store (KindHandoff). A target that is this
// node itself (hints re-routed here after a ring change) applies them
// locally. It returns nil only when every entry is durable on target.
// The hinted-handoff queue's delivery calls it.
func (c *Coordinator) Handoff(ctx context.Context, target string, batch []Entry) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(batch) == 0 {
		return nil
	}
	if target == c.cfg.Self {
		return c.applyBatch(ctx, batch)
	}
	_, err := c.cfg.Transport.Call(ctx, target, Request{Kind: KindHandoff, Batch: batch, Epoch: c.epoch()})
	if err == nil {
		c.stats.handoffsSent.Add(1)
	}
	return err
}

// handleHandoff serves a handoff batch from a stand-in.
func (c *Coordinator) handleHandoff(ctx context.Context, from string, req Request) error {
	if len(req.Batch) == 0 {
		return fmt.Errorf("%w: handoff from %s without entries", ErrBadRequest, from)
	}
	c.stats.handoffsServed.Add(1)
	return c.applyBatch(ctx, req.Batch)
}

// applyBatch merges every entry into the local store.
func (c *Coordinator) applyBatch(ctx context.Context, batch []Entry) error {
	var errs []error
	for i, e := range batch {
		if len(e.Key) == 0 { // sets were checked by UnmarshalRequest
			errs = append(errs, fmt.Errorf("%w: handoff entry %d: empty key", ErrBadRequest, i))
			continue
		}
		if _, err := c.cfg.Store.Apply(ctx, e.Key, e.Siblings); err != nil {
			errs = append(errs, fmt.Errorf("handoff entry %q: %w", e.Key, err))
		}
	}
	return errors.Join(errs...)
}

// ringMember reports whether node is a member of the current ring: one of
// the replicas, pending replicas or fallbacks of key's partition, which
// together are every member (of the serving ring and of the one a change
// moves to). Hints are kept only for members; each target gets its own
// hint log, so names a peer made up would otherwise each cost an open
// file.
func (c *Coordinator) ringMember(key []byte, node string) bool {
	rt, err := c.route(key)
	if err != nil {
		return false
	}
	return slices.Contains(rt.reps, node) || slices.Contains(rt.pending, node) || slices.Contains(rt.fallbacks, node)
}
