package vclock

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// validReference is the definition Valid implements, checked pair by pair.
func validReference(s Siblings) bool {
	for i := range s {
		v := &s[i]
		if v.Dot.Actor == "" || v.Dot.Counter == 0 || !v.Context.Valid() || (v.Tombstone && len(v.Value) != 0) {
			return false
		}
		if i > 0 && s[i-1].Dot.Compare(v.Dot) >= 0 {
			return false
		}
		for j := range s {
			if i != j && s[j].Obsoletes(v) {
				return false
			}
		}
	}
	return true
}

// pruneReference keeps the versions no other version obsoletes.
func pruneReference(s Siblings) Siblings {
	var out Siblings
	for i := range s {
		obsolete := false
		for j := range s {
			if i != j && s[j].Obsoletes(&s[i]) {
				obsolete = true
			}
		}
		if !obsolete {
			out = append(out, s[i])
		}
	}
	return out
}

// drawClock draws a canonical clock over a few actors.
func drawClock(t *rapid.T, label string) Clock {
	var c Clock
	for a := range 4 {
		if n := rapid.IntRange(0, 4).Draw(t, label); n > 0 {
			c = append(c, Dot{Actor: fmt.Sprintf("a%d", a), Counter: uint64(n)})
		}
	}
	return c
}

// drawSet draws a set of versions with canonical clocks but otherwise
// anything: unsorted or duplicate dots, versions covering each other or
// themselves, zero counters.
func drawSet(t *rapid.T) Siblings {
	n := rapid.IntRange(0, 8).Draw(t, "n")
	s := make(Siblings, n)
	for i := range s {
		s[i].Dot = Dot{Actor: fmt.Sprintf("a%d", rapid.IntRange(0, 3).Draw(t, "actor")), Counter: uint64(rapid.IntRange(0, 5).Draw(t, "counter"))}
		s[i].Context = drawClock(t, "ctx")
	}
	if rapid.Bool().Draw(t, "sorted") {
		slices.SortFunc(s, func(a, b Version) int { return a.Dot.Compare(b.Dot) })
	}
	return s
}

// TestValidMatchesReference checks the linear Valid and prune against the
// pairwise definitions, on sets far more varied than Merge produces.
func TestValidMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawSet(t)
		if got, want := s.Valid(), validReference(s); got != want {
			t.Fatalf("Valid = %v, reference %v for %+v", got, want, s)
		}
		want := pruneReference(s)
		if got := prune(slices.Clone(s)); !got.Equal(want) {
			t.Fatalf("prune:\n got %+v\nwant %+v", got, want)
		}
	})
}

// TestValidLargeSetLinear: a peer can send a set of 100,000 siblings in a
// few megabytes. Checking it pair by pair costs 10^10 comparisons (minutes
// of CPU that no deadline interrupts); the linear check takes milliseconds.
// The limit below is more than a hundred times what the linear check needs
// on a loaded machine with the race detector, and far below the pairwise
// check's cost.
func TestValidLargeSetLinear(t *testing.T) {
	const n = 100_000
	s := make(Siblings, n)
	for i := range s {
		// Every version saw an older write of every other actor, so the
		// context lookups are not trivially empty.
		s[i] = Version{Dot: Dot{Actor: fmt.Sprintf("x%07d", i), Counter: 5}, Context: Clock{{Actor: fmt.Sprintf("x%07d", (i+1)%n), Counter: 4}}}
	}
	slices.SortFunc(s, func(a, b Version) int { return a.Dot.Compare(b.Dot) })
	done := make(chan bool, 1)
	go func() { done <- s.Valid() && len(Merge(s, s[:1])) == n }()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("a valid set of siblings was refused or pruned")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("checking %d siblings took longer than 30s", n)
	}
}
