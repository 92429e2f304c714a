package storage

import "github.com/ringkv/ringkv/vclock"

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
// after it. Once the candidate's time is before the grace and before the
// partition's last full sync, every replica holds a set that covers those
// entries and every hint that could carry a version they cover has
// expired, which is exactly what a cold key's receipt time proves; Collect
// then removes the context entries the candidate covers
// (vclock.PruneContextsUpTo) and notes what is left as the next candidate.
// A context therefore holds at most the entries of actors that stopped
// writing the key during the last two graces or so.
//
// Candidates are persisted in the key's entry (the 4-element form, see
// codec.go), written by Collect only; the writes of the request path keep
// the 3-element form, which leaves a key's candidate as it is. A replayed
// candidate that is older than the key's state is still a true statement
// about an earlier set, so replay order cannot make pruning unsafe.

// candidate is what a key's set held at some time: the context-only
// entries Collect may prune once that time is settled.
type candidate struct {
	at   int64        // Unix nanoseconds, this node's clock
	upTo vclock.Clock // canonical, non-empty
}

// newCandidate returns the candidate of s at time at, nil when s has no
// context-only entry.
func newCandidate(s vclock.Siblings, at int64) *candidate {
	c := vclock.ContextOnly(s)
	if len(c) == 0 {
		return nil
	}
	return &candidate{at: at, upTo: c}
}

// appendCandidate appends c as msgpack: nil, or [at int, [[actor, counter]...]].
func appendCandidate(dst []byte, c *candidate) []byte {
	if c == nil {
		return append(dst, 0xc0)
	}
	dst = appendArrayLen(dst, 2)
	dst = appendInt(dst, c.at)
	dst = appendArrayLen(dst, len(c.upTo))
	for _, d := range c.upTo {
		dst = appendDot(dst, d)
	}
	return dst
}

// candidate parses what appendCandidate wrote. The array length is bounded
// by the payload (mpReader.arrayLen) before anything is allocated.
func (d *entryDecoder) candidate(p *mpReader) *candidate {
	n, isNil := p.arrayLen()
	if isNil || p.err != nil {
		return nil
	}
	if n != 2 {
		p.fail("candidate is not a 2-element array")
		return nil
	}
	c := &candidate{at: p.int()}
	m, _ := p.arrayLen()
	if p.err != nil {
		return nil
	}
	c.upTo = make(vclock.Clock, m)
	for i := range c.upTo {
		c.upTo[i] = d.dot(p)
	}
	if p.err == nil && (len(c.upTo) == 0 || !c.upTo.Valid()) {
		p.fail("candidate clock empty or not canonical")
	}
	if p.err != nil {
		return nil
	}
	return c
}

// setCandidate installs c (nil removes) as key's candidate. mu must be
// held exclusively.
func (sh *shard) setCandidate(key string, c *candidate) {
	if c == nil {
		delete(sh.cands, key) // no-op on a nil map
		return
	}
	if sh.cands == nil {
		sh.cands = make(map[string]*candidate)
	}
	sh.cands[key] = c
}
