package vclock

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
	if !needsPrune(s, has) {
		return s
	}
	out := make(Siblings, len(s))
	copy(out, s)
	for i := range out {
		var kept Clock
		for _, d := range out[i].Context {
			if has(d.Actor) {
				kept = append(kept, d)
			}
		}
		out[i].Context = kept
	}
	return out
}

// needsPrune reports whether some context entry of s names an actor has
// says no version's dot has.
func needsPrune(s Siblings, has func(string) bool) bool {
	for i := range s {
		for _, d := range s[i].Context {
			if !has(d.Actor) {
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
