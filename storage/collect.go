package storage

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	"github.com/ringkv/ringkv/vclock"
)

// Tombstone GC and context pruning, driven by anti-entropy.
//
// A tombstone may be forgotten only when no replica can still hold a
// version it obsoletes: otherwise the next anti-entropy exchange would copy
// that version back and the deleted value would return. Anti-entropy tells
// the engine, per partition, a time before which everything this node
// received is known to be on every replica (MarkSynced); Collect forgets a
// tombstone-only key received (recv, this node's clock) before that time
// and more than Config.TombstoneGC ago. The tombstones' own wall times are
// not used: they come from other nodes' clocks.
//
// The same rule lets Collect prune contexts: once every replica holds a
// set, context entries naming actors with no version in it decide nothing
// (vclock.PruneContexts), except against a version that arrives late: a
// hint still queued somewhere for a replica. Pruning before the grace
// would let such a hint bring back a value the set's version deleted or
// overwrote, also when the tombstone itself is long gone (a key deleted and
// written again: the new version's context is then the only thing that
// still covers the deleted value). So pruning waits for the grace as
// dropping does (hints expire before it). Keys written too often ever to
// be settled are pruned by candidate instead (candidate.go).

// collectBatch is how many keys Collect rewrites before it waits for their
// WAL records and checks its context.
const collectBatch = 256

// CollectStats counts what one Collect pass changed.
type CollectStats struct {
	// Dropped is the number of tombstone-only keys forgotten.
	Dropped int
	// Pruned is the number of keys whose contexts were pruned.
	Pruned int
	// Noted is the number of keys whose pruning candidate alone was
	// written: noted, confirmed or cleared (candidate.go).
	Noted int
}

// gcRule is the collection rule of one partition at one instant.
type gcRule struct {
	cutoff int64 // recv must be before this: now - TombstoneGC
	synced int64 // recv must be before this: the partition's MarkSynced time
}

// gcRule returns sh's rule now.
func (e *Engine) gcRule(sh *shard) gcRule {
	return gcRule{cutoff: e.cfg.Now().Add(-e.cfg.TombstoneGC).UnixNano(), synced: sh.synced.Load()}
}

// settledAt reports whether t (Unix nanoseconds, this node's clock) is
// before the grace and before the partition's last full sync: every
// replica holds what this node held then, and any hint older than it has
// expired.
func (g gcRule) settledAt(t int64) bool { return t < g.cutoff && t < g.synced }

// settled reports whether the entry was received at a settled time.
func (g gcRule) settled(it item) bool { return g.settledAt(it.recv()) }

// collectable reports whether the entry, whose decoded set is s, may be
// forgotten: it is settled and every version is a tombstone.
func (g gcRule) collectable(it item, s vclock.Siblings) bool {
	return it.p != nil && g.settled(it) && !hasLive(s)
}

// MarkSynced records that anti-entropy saw every replica of partition in
// sync for everything this node received before at. The latest time is
// kept; an earlier one, or a bad partition, is ignored. It is held in
// memory only: after a restart nothing is collected until the next full
// sync.
func (e *Engine) MarkSynced(partition int, at time.Time) {
	if partition < 0 || partition >= len(e.shards) {
		return
	}
	t := at.UnixNano()
	synced := &e.shards[partition].synced
	for { // each failed CAS means another caller made progress
		cur := synced.Load()
		if t <= cur || synced.CompareAndSwap(cur, t) {
			return
		}
	}
}

// Collect makes one pass over partition. For each key received (by this
// node's clock) before the partition's MarkSynced time and more than
// Config.TombstoneGC ago, it drops the key if every version is a
// tombstone, and otherwise prunes context entries naming actors with no
// version in the set (vclock.PruneContexts; dots, values, digest and tree
// do not change). A key received later is pruned up to its candidate once
// the candidate's time is settled the same way, and given a new candidate
// (candidate.go).
// Each change is a WAL record made under the partition's lock, and only if
// the key is still exactly as the pass read it, so a key written
// meanwhile is never touched. Keys are rewritten in batches, waiting for
// each batch's records to be durable; ctx is checked between batches.
// Before a key is dropped or pruned the minting counter is raised above
// every counter of this engine's actor in it (see ReserveCounter), so the
// engine never mints a dot the forgotten history named.
func (e *Engine) Collect(ctx context.Context, partition int) (CollectStats, error) {
	var st CollectStats
	if partition < 0 || partition >= len(e.shards) {
		return st, fmt.Errorf("%w: partition %d, have %d", ErrInvalid, partition, len(e.shards))
	}
	sh := e.shards[partition]
	gc := e.gcRule(sh)
	if gc.synced == 0 {
		return st, nil
	}
	cands := sh.collectable(gc)
	// After the scan: a candidate's time must not precede the receipt
	// of the set it describes.
	now := e.cfg.Now().UnixNano()
	pending := make([]Pending, 0, collectBatch)
	for len(cands) > 0 {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		batch := cands[:min(len(cands), collectBatch)]
		cands = cands[len(batch):]
		pending = pending[:0]
		for _, c := range batch {
			// Decoded once here for change and replaceIf, outside the
			// shard's lock.
			cs := c.siblings()
			ch, ok := gc.change(c, cs, now)
			if !ok {
				continue
			}
			if ch.next != nil && !ch.next.Valid() {
				// PruneContexts keeps sets canonical (a property test
				// checks it); a record the decoder refuses would make
				// the WAL unreadable, so never write one.
				e.logger.Error("pruned sibling set not canonical; key left as is", "key", c.key)
				continue
			}
			p, ok, err := e.replaceIf(sh, c, cs, ch)
			if err != nil {
				return st, fmt.Errorf("storage: collect partition %d: %w", partition, err)
			}
			if !ok {
				continue
			}
			pending = append(pending, p)
			switch {
			case ch.next == nil:
				st.Dropped++
			case ch.pruned:
				st.Pruned++
			default:
				st.Noted++
			}
		}
		for _, p := range pending {
			if _, err := p.Wait(ctx); err != nil {
				return st, fmt.Errorf("storage: collect partition %d: %w", partition, err)
			}
		}
	}
	if st != (CollectStats{}) {
		e.logger.Info("partition collected", "partition", partition, "dropped", st.Dropped, "pruned", st.Pruned, "noted", st.Noted)
	}
	return st, nil
}

// collectChange is what Collect does to one key: install next (nil drops
// the key) and cand as its candidate.
type collectChange struct {
	next vclock.Siblings
	cand *candidate
	// pruned says next is not the set read (contexts were pruned).
	pruned bool
}

// change decides what Collect does to c, whose decoded set is cs, at time
// now; false means nothing.
func (g gcRule) change(c entry, cs vclock.Siblings, now int64) (collectChange, bool) {
	switch {
	case g.collectable(c.item, cs):
		return collectChange{}, true
	case g.settled(c.item):
		next := vclock.PruneContexts(cs)
		pruned := !sameSet(next, cs)
		return collectChange{next: next, pruned: pruned}, pruned || c.cand != nil
	case c.cand == nil:
		cand := newCandidate(cs, now)
		return collectChange{next: cs, cand: cand}, cand != nil
	case c.cand.confirmed == 0:
		if c.cand.at >= g.synced {
			return collectChange{}, false // no full sync since it was noted
		}
		confirmed := *c.cand
		confirmed.confirmed = now
		return collectChange{next: cs, cand: &confirmed}, true
	case c.cand.confirmed < g.cutoff:
		next := vclock.PruneContextsUpTo(cs, c.cand.upTo)
		return collectChange{next: next, cand: newCandidate(next, now), pruned: !sameSet(next, cs)}, true
	}
	return collectChange{}, false // confirmed less than a grace ago
}

// hasLive reports whether some version of s is not a tombstone.
func hasLive(s vclock.Siblings) bool {
	for i := range s {
		if !s[i].Tombstone {
			return true
		}
	}
	return false
}

// collectable copies out the entries Collect may change: those received
// at a settled time, those with a candidate and those whose contexts name
// actors with no version in the set (they get a candidate). The entries
// are copied out under the read lock and decoded outside it, so writers
// to the partition do not wait for the decoding; replaceIf checks again
// that an entry is unchanged.
func (sh *shard) collectable(g gcRule) []entry {
	all := sh.entries()
	out := all[:0]
	for _, c := range all {
		if g.settled(c.item) || c.cand != nil || newCandidate(c.siblings(), 0) != nil {
			out = append(out, c)
		}
	}
	return out
}

// sameSet reports whether a and b are the same slice (not merely equal):
// whether a pruning function gave back the set it was given.
func sameSet(a, b vclock.Siblings) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// replaceIf installs ch in place of was, keeping the receipt time, if the
// key still holds exactly was (set, receipt time and candidate); it
// reports whether it did. wasSet is was's set, decoded by the caller: the
// key's blob is immutable, so when it is still was's, so is the set, and
// nothing is decoded under the lock. The record is queued, not waited for.
func (e *Engine) replaceIf(sh *shard, was entry, wasSet vclock.Siblings, ch collectChange) (Pending, bool, error) {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return Pending{}, false, ErrClosed
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur, ok := sh.m[was.key]
	if !ok || cur != was.item || sh.cands[was.key] != was.cand {
		return Pending{}, false, nil
	}
	// Raised before the history is forgotten, under the key's lock, so
	// that a coordinator minting this key next already sees it.
	e.raiseCounter(wasSet.MaxCounter(e.actor))
	key := unsafe.Slice(unsafe.StringData(was.key), len(was.key))
	sh.scratch = appendEntryCandidate(sh.scratch[:0], key, ch.next, cur.recv(), ch.cand)
	p, err := e.log.AppendAsync(sh.scratch)
	if err != nil {
		return Pending{}, false, err
	}
	sh.replace(was.key, oldOf(was.key, wasSet), true, ch.next, cur.recv())
	if ch.next != nil {
		sh.setCandidate(was.key, ch.cand)
	}
	return p, true, nil
}
