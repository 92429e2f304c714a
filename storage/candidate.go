package storage

import (
	"strings"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/vclock"
)

// Pruning candidates: context pruning for keys that are never left alone.
//
// Collect prunes a key's contexts once the key was received before the
// grace and before the partition's last full sync (see collect.go). A key
// written more often than once per grace never qualifies, yet its context
// still gains an entry whenever an actor stops writing it: each unclean
// restart renews this node's minting actor, and the old actor's last dot
// stays in the context for good.
//
// So Collect notes, for such a key, a candidate: the context-only entries
// of its set (vclock.ContextOnly) and the time it saw them. That the set
// held them at that time stays true however often the key is written
// after it. The first Collect after a full sync later than that time
// confirms the candidate: every replica now holds a set that covers its
// entries, so every hint made from now on carries a covering set. Hints
// made earlier may still carry a version the entries cover (a replica
// that had not seen the covering write took a write of its own and kept a
// hint for a replica that was down); they expire within the grace. So once
// the confirmation time is before the grace, Collect removes the context
// entries the candidate covers (vclock.PruneContextsUpTo) and notes what
// is left as the next candidate. The cold-key rule proves the same with the
// key's receipt time, which every merge of a replica's set moves forward.
//
// Only keys with at least candidateMinActors context-only actors get a
// candidate: a context naming a few actors is small, most keys written by
// more than one coordinator have one or two, and each candidate costs a
// WAL record holding the whole set. A context therefore names at most
// about candidateMinActors actors plus those that stopped writing the key
// during the last grace and sync intervals.
//
// Candidates are persisted in the key's entry (the 4-element form, see
// codec.go), written by Collect only; the writes of the request path keep
// the 3-element form, which leaves a key's candidate as it is. A replayed
// candidate that is older than the key's state is still a true statement
// about an earlier set, so replay order cannot make pruning unsafe.

// candidateMinActors is the fewest context-only actors a key needs before
// Collect notes a candidate for it.
const candidateMinActors = 8

// candidate is what a key's set held at some time: the context-only
// entries Collect may prune once that time is settled.
type candidate struct {
	at int64 // when the set held upTo: Unix nanoseconds, this node's clock
	// confirmed is when Collect first saw a full sync later than at (0:
	// not yet); pruning waits for it to pass the grace.
	confirmed int64
	upTo      vclock.Clock // canonical, non-empty
}

// newCandidate returns the candidate of s at time at, nil when s has
// fewer than candidateMinActors context-only actors.
func newCandidate(s vclock.Siblings, at int64) *candidate {
	n := 0
	for i := range s {
		n += len(s[i].Context)
	}
	if n < candidateMinActors { // cheap test first: most keys stop here
		return nil
	}
	c := vclock.ContextOnly(s)
	if len(c) < candidateMinActors {
		return nil
	}
	return &candidate{at: at, upTo: c}
}

// appendCandidate appends c as msgpack: nil, or
// [at int, confirmed int, [[actor, counter]...]].
func appendCandidate(dst []byte, c *candidate) []byte {
	if c == nil {
		return append(dst, 0xc0)
	}
	dst = wire.AppendArrayLen(dst, 3)
	dst = wire.AppendInt(dst, c.at)
	dst = wire.AppendInt(dst, c.confirmed)
	dst = wire.AppendArrayLen(dst, len(c.upTo))
	for _, d := range c.upTo {
		dst = vclock.AppendDot(dst, d)
	}
	return dst
}

// candidate parses what appendCandidate wrote. The array length is bounded
// by the payload (vclock.ReadClock) before anything is allocated.
func (d *entryDecoder) candidate(p *wire.Reader) *candidate {
	n, isNil := p.ArrayLen()
	if isNil || p.Err() != nil {
		return nil
	}
	if n != 3 {
		p.Failf("candidate is not a 3-element array")
		return nil
	}
	c := &candidate{at: p.Int(), confirmed: p.Int()}
	c.upTo = vclock.ReadClock(p, d.intern)
	if p.Err() == nil && (len(c.upTo) == 0 || !c.upTo.Valid()) {
		p.Failf("candidate clock empty or not canonical")
	}
	if p.Err() != nil {
		return nil
	}
	return c
}

// setCandidate installs c (nil removes) as key's candidate. mu must be
// held exclusively. The map keeps a copy of key: the caller's key may
// point into the key's blob, which a later write replaces, and the
// candidate would keep that old blob alive.
func (sh *shard) setCandidate(key string, c *candidate) {
	if c == nil {
		delete(sh.cands, key) // no-op on a nil map
		return
	}
	if sh.cands == nil {
		sh.cands = make(map[string]*candidate)
	}
	sh.cands[strings.Clone(key)] = c
}
