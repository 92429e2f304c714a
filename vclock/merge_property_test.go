package vclock

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// history simulates what the system does to one key: replicas (whose actors
// are their names) coordinate writes with contexts that clients read from any
// replica, and ship whole merged sets to each other. Every set it produces is
// one that Merge can meet in production.
type history struct {
	replicas []Siblings
	seen     []Siblings // every set that existed at some point
	minted   []Version  // every version ever acknowledged by its coordinator
}

func newHistory(n int) *history { return &history{replicas: make([]Siblings, n)} }

func (h *history) step(t *rapid.T) {
	n := len(h.replicas)
	switch rapid.IntRange(0, 3).Draw(t, "op") {
	case 0, 1: // a write coordinated by c with a context read from r (or none)
		c := rapid.IntRange(0, n-1).Draw(t, "coord")
		var w Write
		switch rapid.IntRange(0, 2).Draw(t, "ctx") {
		case 0:
			w.Context = h.replicas[rapid.IntRange(0, n-1).Draw(t, "read")].Context()
		case 1:
			w.Blind = true
		}
		w.Tombstone = rapid.IntRange(0, 5).Draw(t, "tomb") == 0
		w.Value = []byte(fmt.Sprintf("v%d", len(h.minted)))
		w.WallTime = int64(len(h.minted))
		v, set := Mint(h.replicas[c], fmt.Sprintf("r%d", c), w)
		h.minted = append(h.minted, v)
		h.replicas[c] = set
		h.seen = append(h.seen, set)
		// Replicate the merged set to a random subset of the others.
		for i := range h.replicas {
			if i != c && rapid.Bool().Draw(t, "ship") {
				h.replicas[i] = Merge(h.replicas[i], set)
				h.seen = append(h.seen, h.replicas[i])
			}
		}
	default: // anti-entropy / read repair between two replicas
		a := rapid.IntRange(0, n-1).Draw(t, "a")
		b := rapid.IntRange(0, n-1).Draw(t, "b")
		h.replicas[a] = Merge(h.replicas[a], h.replicas[b])
		h.seen = append(h.seen, h.replicas[a])
	}
}

func drawHistory(t *rapid.T) *history {
	h := newHistory(rapid.IntRange(1, 4).Draw(t, "replicas"))
	steps := rapid.IntRange(1, 40).Draw(t, "steps")
	for range steps {
		h.step(t)
	}
	return h
}

func (h *history) pick(t *rapid.T, label string) Siblings {
	if len(h.seen) == 0 {
		return nil
	}
	return h.seen[rapid.IntRange(0, len(h.seen)-1).Draw(t, label)]
}

func TestMergeIsAJoin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		a, b, c := h.pick(t, "a"), h.pick(t, "b"), h.pick(t, "c")
		ab := Merge(a, b)
		if !ab.Valid() {
			t.Fatalf("Merge result not canonical: %+v", ab)
		}
		if !ab.Equal(Merge(b, a)) {
			t.Fatalf("not commutative:\n a=%+v\n b=%+v", a, b)
		}
		if !Merge(ab, c).Equal(Merge(a, Merge(b, c))) {
			t.Fatalf("not associative:\n a=%+v\n b=%+v\n c=%+v", a, b, c)
		}
		if !Merge(a, a).Equal(a) || !Merge(ab, a).Equal(ab) {
			t.Fatalf("not idempotent:\n a=%+v\n b=%+v", a, b)
		}
	})
}

// TestMergeMatchesReference checks the linear merge against the definition:
// the versions of the union that no version of the union obsoletes.
func TestMergeMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		a, b := h.pick(t, "a"), h.pick(t, "b")
		union := map[Dot]Version{}
		for _, v := range append(append(Siblings{}, a...), b...) {
			union[v.Dot] = v
		}
		want := 0
		for _, v := range union {
			obsolete := false
			for _, w := range union {
				if w.Obsoletes(&v) {
					obsolete = true
				}
			}
			if !obsolete {
				want++
			}
		}
		if got := Merge(a, b); len(got) != want {
			t.Fatalf("Merge kept %d versions, reference keeps %d", len(got), want)
		}
	})
}

// TestNoAcknowledgedWriteLost: once every replica has merged everything,
// each minted version is either present or obsoleted by a version whose
// writer saw it (its dot is in that writer's context).
func TestNoAcknowledgedWriteLost(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		var all Siblings
		for _, r := range h.replicas {
			all = Merge(all, r)
		}
		ctx := all.Context()
		for _, v := range h.minted {
			if !ctx.Covers(v.Dot) {
				t.Fatalf("version %v vanished from the causal history", v.Dot)
			}
		}
		dots := map[Dot]bool{}
		for _, v := range h.minted {
			if dots[v.Dot] {
				t.Fatalf("dot %v minted twice", v.Dot)
			}
			dots[v.Dot] = true
		}
	})
}

func TestSiblingsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawHistory(t).pick(t, "s")
		b, err := EncodeSiblings(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSiblings(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !got.Equal(s) {
			t.Fatalf("round trip changed the set:\n got %+v\nwant %+v", got, s)
		}
	})
}
