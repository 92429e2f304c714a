package vclock

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

func TestPruneContexts(t *testing.T) {
	v := func(actor string, c uint64, ctx ...Dot) Version {
		return Version{Dot: Dot{Actor: actor, Counter: c}, Context: Clock(ctx), Value: []byte("x")}
	}
	d := func(actor string, c uint64) Dot { return Dot{Actor: actor, Counter: c} }
	tests := []struct {
		name string
		in   Siblings
		want Siblings
		same bool // the input slice itself comes back
	}{
		{"empty", nil, nil, true},
		{"no contexts", Siblings{v("a", 1), v("b", 1)}, Siblings{v("a", 1), v("b", 1)}, true},
		{"context of present actors", Siblings{v("a", 3, d("a", 2), d("b", 1)), v("b", 2, d("a", 1))},
			Siblings{v("a", 3, d("a", 2), d("b", 1)), v("b", 2, d("a", 1))}, true},
		{"foreign actor removed", Siblings{v("a", 3, d("a", 2), d("c", 7))}, Siblings{v("a", 3, d("a", 2))}, false},
		{"whole context removed", Siblings{v("a", 3, d("c", 7), d("d", 1)), v("b", 1, d("b", 0+1))},
			Siblings{v("a", 3), v("b", 1, d("b", 1))}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PruneContexts(tc.in)
			if !got.Equal(tc.want) {
				t.Fatalf("PruneContexts(%v) = %v, want %v", tc.in, got, tc.want)
			}
			if same := len(got) > 0 && &got[0] == &tc.in[0]; tc.same && len(tc.in) > 0 && !same {
				t.Fatal("nothing to prune but a copy came back")
			} else if !tc.same && same {
				t.Fatal("pruned in place: the argument was modified")
			}
		})
	}
}

// A large set takes the map path and gives the same answer as a scan.
func TestPruneContextsLargeSet(t *testing.T) {
	var s Siblings
	for i := range 3 * smallSet {
		s = append(s, Version{Dot: Dot{Actor: fmt.Sprintf("a%02d", i), Counter: 1},
			Context: Clock{{Actor: "gone", Counter: 9}}, Value: []byte("v")})
	}
	got := PruneContexts(s)
	for i := range got {
		if got[i].Context != nil {
			t.Fatalf("version %d kept context %v", i, got[i].Context)
		}
		if s[i].Context == nil {
			t.Fatal("argument modified")
		}
	}
}

// liveDots returns the dots and values of the live versions of s.
func liveDots(s Siblings) map[Dot]string {
	out := make(map[Dot]string)
	for _, v := range s.Live() {
		out[v.Dot] = string(v.Value)
	}
	return out
}

// Pruning never loses a live value: Merge(PruneContexts(a), b) keeps every
// live version of Merge(a, b) (it may keep more), whichever side is pruned,
// and the pruned set is canonical, has the same dots and values, and is a
// fixed point.
func TestPruneContextsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		a := rapid.SampledFrom(append(h.seen, h.replicas...)).Draw(t, "a")
		b := rapid.SampledFrom(append(h.seen, h.replicas...)).Draw(t, "b")
		pa := PruneContexts(a)
		if !pa.Valid() {
			t.Fatalf("PruneContexts(%v) = %v is not canonical", a, pa)
		}
		if len(pa) != len(a) {
			t.Fatalf("pruning changed the versions: %v -> %v", a, pa)
		}
		for i := range a {
			if pa[i].Dot != a[i].Dot || string(pa[i].Value) != string(a[i].Value) || pa[i].Tombstone != a[i].Tombstone {
				t.Fatalf("pruning changed version %d: %v -> %v", i, a[i], pa[i])
			}
		}
		if again := PruneContexts(pa); len(again) > 0 && &again[0] != &pa[0] {
			t.Fatal("pruning a pruned set copied it")
		}
		want := liveDots(Merge(a, b))
		for name, got := range map[string]Siblings{
			"pruned left":  Merge(pa, b),
			"pruned right": Merge(b, pa),
			"both pruned":  Merge(pa, PruneContexts(b)),
		} {
			live := liveDots(got)
			for d, val := range want {
				if g, ok := live[d]; !ok || g != val {
					t.Fatalf("%s: Merge lost live version %v=%q: Merge(a,b)=%v, pruned merge=%v", name, d, val, Merge(a, b), got)
				}
			}
		}
	})
}

func TestPruneContextsUpTo(t *testing.T) {
	v := func(actor string, c uint64, ctx ...Dot) Version {
		return Version{Dot: Dot{Actor: actor, Counter: c}, Context: Clock(ctx), Value: []byte("x")}
	}
	d := func(actor string, c uint64) Dot { return Dot{Actor: actor, Counter: c} }
	s := Siblings{v("a", 3, d("a", 2), d("c", 7), d("e", 4)), v("b", 1, d("c", 9), d("d", 2))}
	tests := []struct {
		name string
		upTo Clock
		want Siblings
		same bool
	}{
		{"nothing", nil, s, true},
		{"actor with a dot is kept", Clock{d("a", 9), d("b", 9)}, s, true},
		{"entry above the bound is kept", Clock{d("c", 7)},
			Siblings{v("a", 3, d("a", 2), d("e", 4)), v("b", 1, d("c", 9), d("d", 2))}, false},
		{"all covered", Clock{d("c", 9), d("d", 2), d("e", 5)},
			Siblings{v("a", 3, d("a", 2)), v("b", 1)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PruneContextsUpTo(s, tc.upTo)
			if !got.Equal(tc.want) || !got.Valid() {
				t.Fatalf("PruneContextsUpTo(%v, %v) = %v, want %v", s, tc.upTo, got, tc.want)
			}
			if same := &got[0] == &s[0]; same != tc.same {
				t.Fatalf("returned the argument itself: %v, want %v", same, tc.same)
			}
		})
	}
	if got, want := ContextOnly(s), (Clock{d("c", 9), d("d", 2), d("e", 4)}); !got.Equal(want) {
		t.Fatalf("ContextOnly = %v, want %v", got, want)
	}
	if got := ContextOnly(Siblings{v("a", 1, d("a", 1))}); got != nil {
		t.Fatalf("ContextOnly of a set naming only dot actors = %v, want nil", got)
	}
}

// PruneContextsUpTo with any bound never loses a live value either, and
// with the bound ContextOnly it is PruneContexts.
func TestPruneContextsUpToProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		a := rapid.SampledFrom(append(h.seen, h.replicas...)).Draw(t, "a")
		b := rapid.SampledFrom(append(h.seen, h.replicas...)).Draw(t, "b")
		if got, want := PruneContextsUpTo(a, ContextOnly(a)), PruneContexts(a); !got.Equal(want) {
			t.Fatalf("PruneContextsUpTo(a, ContextOnly(a)) = %v, PruneContexts(a) = %v", got, want)
		}
		var upTo Clock
		for _, d := range ContextOnly(Merge(a, b)) {
			if c := rapid.Uint64Range(0, d.Counter+1).Draw(t, "bound"); c > 0 {
				upTo = append(upTo, Dot{Actor: d.Actor, Counter: c})
			}
		}
		pa := PruneContextsUpTo(a, upTo)
		if !pa.Valid() || len(pa) != len(a) {
			t.Fatalf("PruneContextsUpTo(%v, %v) = %v: not canonical or versions changed", a, upTo, pa)
		}
		want := liveDots(Merge(a, b))
		live := liveDots(Merge(pa, b))
		for d, val := range want {
			if g, ok := live[d]; !ok || g != val {
				t.Fatalf("Merge lost live version %v=%q after pruning up to %v", d, val, upTo)
			}
		}
	})
}
