package vclock

import (
	"cmp"
	"slices"
)

// PruneContexts returns s with every context entry removed whose actor is
// not the actor of some version's dot in s. It returns s itself (no copy)
// when nothing is removed.
//
// Why it is safe to call once every replica holds s: a context entry of an
// actor with no version left in s only records what s's versions
// obsoleted; once no replica holds those obsoleted versions any more the
// entry decides nothing. Removing it can only make a version obsolete
// fewer others: at worst a version that reappears later (a straggling hint)
// becomes a spurious sibling; no value is ever dropped (see the property
// test: Merge(PruneContexts(a), b) keeps every live value of Merge(a, b)).
// Dots and values never change.
//
// The caller keeps the minting counters in mind: a context may be the only
// place the set remembers a counter of the coordinator's own actor, so a
// coordinator must number dots from a counter that does not depend on the
// set (Write.MinCounter).
func PruneContexts(s Siblings) Siblings {
	has := dotActors(s)
	return pruneWhere(s, func(d Dot) bool { return !has(d.Actor) })
}

// PruneContextsUpTo is PruneContexts limited to what upTo covers: it
// removes a context entry (a, c) only when no version's dot is of actor a
// and upTo covers (a, c). It returns s itself when nothing is removed.
//
// It serves keys written too often for PruneContexts's precondition (no
// write since every replica was seen holding the set) ever to hold: upTo is
// ContextOnly of the set as it was at some earlier time T, and once every
// replica held that set and the hints of T's time have expired, what upTo
// covers decides nothing, however often the key was written since.
// Entries above upTo (an actor that wrote the key again after T) stay.
func PruneContextsUpTo(s Siblings, upTo Clock) Siblings {
	if len(upTo) == 0 {
		return s
	}
	has := dotActors(s)
	return pruneWhere(s, func(d Dot) bool { return !has(d.Actor) && upTo.Covers(d) })
}

// pruneWhere returns s with the context entries drop selects removed, or s
// itself when it selects none.
func pruneWhere(s Siblings, drop func(Dot) bool) Siblings {
	if !anyContextEntry(s, drop) {
		return s
	}
	out := make(Siblings, len(s))
	copy(out, s)
	for i := range out {
		var kept Clock
		for _, d := range out[i].Context {
			if !drop(d) {
				kept = append(kept, d)
			}
		}
		out[i].Context = kept
	}
	return out
}

// ContextOnly returns, for every actor named in some context of s but by
// no version's dot, the highest counter the contexts give it: what
// PruneContexts would remove, as a canonical Clock (nil when nothing).
func ContextOnly(s Siblings) Clock {
	has := dotActors(s)
	var out Clock
	for i := range s {
		for _, d := range s[i].Context {
			if !has(d.Actor) {
				out = append(out, d)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	// Sorted once and folded, not joined entry by entry: a context of
	// many actors would make that quadratic.
	slices.SortFunc(out, func(a, b Dot) int {
		return cmp.Or(cmp.Compare(a.Actor, b.Actor), cmp.Compare(b.Counter, a.Counter))
	})
	return slices.CompactFunc(out, func(a, b Dot) bool { return a.Actor == b.Actor })
}

// anyContextEntry reports whether drop selects some context entry of s.
func anyContextEntry(s Siblings, drop func(Dot) bool) bool {
	for i := range s {
		for _, d := range s[i].Context {
			if drop(d) {
				return true
			}
		}
	}
	return false
}

// dotActors returns a test for "some version of s has a dot of actor".
// Small sets (nearly all) are scanned; a large one gets a map so that
// hostile sets of many siblings with long contexts cost linear time, as in
// coverIndex.
func dotActors(s Siblings) func(actor string) bool {
	if len(s) <= smallSet {
		return func(actor string) bool {
			for i := range s {
				if s[i].Dot.Actor == actor {
					return true
				}
			}
			return false
		}
	}
	set := make(map[string]struct{}, len(s))
	for i := range s {
		set[s[i].Dot.Actor] = struct{}{}
	}
	return func(actor string) bool {
		_, ok := set[actor]
		return ok
	}
}
