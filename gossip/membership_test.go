package gossip

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

func TestMergeRows(t *testing.T) {
	j := func(v uint64) Entry { return Entry{Status: StatusJoined, Version: v, Addr: "a:1"} }
	with := func(s Status, v uint64) Entry { return Entry{Status: s, Version: v, Addr: "a:1"} }
	tests := []struct {
		name string
		a, b Entry
		want Entry
	}{
		{"higher version wins over rank", with(StatusRemoved, 3), j(4), j(4)},
		{"equal version: removed beats joined", j(5), with(StatusRemoved, 5), with(StatusRemoved, 5)},
		{"equal version: left beats leaving", with(StatusLeaving, 2), with(StatusLeft, 2), with(StatusLeft, 2)},
		{"equal version: leaving beats joined", j(2), with(StatusLeaving, 2), with(StatusLeaving, 2)},
		{"equal version: removed beats left", with(StatusLeft, 7), with(StatusRemoved, 7), with(StatusRemoved, 7)},
		{"equal version and status: greater address", Entry{StatusJoined, 1, "a:1", ""}, Entry{StatusJoined, 1, "b:1", ""}, Entry{StatusJoined, 1, "b:1", ""}},
		{"identical", j(1), j(1), j(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][2]Entry{{tc.a, tc.b}, {tc.b, tc.a}} {
				got := Merge(Map{"n": order[0]}, Map{"n": order[1]})
				if diff := cmp.Diff(Map{"n": tc.want}, got); diff != "" {
					t.Errorf("Merge(%v, %v) (-want +got):\n%s", order[0], order[1], diff)
				}
			}
		})
	}
}

func TestMergeDoesNotModifyInputs(t *testing.T) {
	a := Map{"x": {StatusJoined, 1, "a:1", ""}}
	b := Map{"x": {StatusLeft, 2, "a:1", ""}, "y": {StatusJoined, 1, "b:1", ""}}
	wantA, wantB := a.Clone(), b.Clone()
	_ = Merge(a, b)
	if diff := cmp.Diff(wantA, a); diff != "" {
		t.Errorf("a modified (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantB, b); diff != "" {
		t.Errorf("b modified (-want +got):\n%s", diff)
	}
}

func TestRingMembersAndSet(t *testing.T) {
	m := Map{}.
		Set("c", StatusJoined, "c:1", 0).
		Set("a", StatusJoined, "a:1", 0).
		Set("b", StatusJoined, "b:1", 0).
		Set("d", StatusJoined, "d:1", 0)
	m = m.Set("b", StatusLeaving, "b:1", 0).Set("d", StatusLeft, "d:1", 0).Set("e", StatusRemoved, "", 0)
	if diff := cmp.Diff([]string{"a", "b", "c"}, m.RingMembers()); diff != "" {
		t.Errorf("RingMembers (-want +got):\n%s", diff)
	}
	if got := m["d"].Version; got != 2 {
		t.Errorf("d version after two sets = %d, want 2", got)
	}
	if got := m["e"]; got != (Entry{StatusRemoved, 1, "", ""}) {
		t.Errorf("e = %+v", got)
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, m.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
}

func TestChanged(t *testing.T) {
	prev := Map{"a": {StatusJoined, 1, "a:1", ""}, "b": {StatusJoined, 1, "b:1", ""}}
	next := Merge(prev, Map{"b": {StatusLeft, 2, "b:1", ""}, "c": {StatusJoined, 1, "c:1", ""}})
	want := Map{"b": {StatusLeft, 2, "b:1", ""}, "c": {StatusJoined, 1, "c:1", ""}}
	if diff := cmp.Diff(want, Changed(prev, next)); diff != "" {
		t.Errorf("Changed (-want +got):\n%s", diff)
	}
	if got := Changed(next, next); len(got) != 0 {
		t.Errorf("Changed(m, m) = %v, want empty", got)
	}
}

func TestMapValidate(t *testing.T) {
	long := string(make([]byte, maxNameLen+1))
	tests := []struct {
		name string
		m    Map
		want error
	}{
		{"ok", Map{"n1": {StatusJoined, 1, "127.0.0.1:1", ""}}, nil},
		{"empty name", Map{"": {StatusJoined, 1, "", ""}}, ErrBadName},
		{"slash in name", Map{"a/b": {StatusJoined, 1, "", ""}}, ErrBadName},
		{"control char", Map{"a\nb": {StatusJoined, 1, "", ""}}, ErrBadName},
		{"too long", Map{long: {StatusJoined, 1, "", ""}}, ErrBadName},
		{"bad status", Map{"n1": {"gone", 1, "", ""}}, ErrBadState},
		{"empty status", Map{"n1": {"", 1, "", ""}}, ErrBadState},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

// genMap draws a map over a small name space with small versions, so that
// equal-version conflicts, the interesting case, are frequent.
func genMap(t *rapid.T, label string) Map {
	names := []string{"n1", "n2", "n3", "n4"}
	statuses := []Status{StatusJoined, StatusLeaving, StatusLeft, StatusRemoved}
	addrs := []string{"10.0.0.1:7946", "10.0.0.2:7946"}
	m := Map{}
	for _, name := range names {
		if !rapid.Bool().Draw(t, fmt.Sprintf("%s.has.%s", label, name)) {
			continue
		}
		m[name] = Entry{
			Status:  rapid.SampledFrom(statuses).Draw(t, label+".status."+name),
			Version: rapid.Uint64Range(0, 3).Draw(t, label+".version."+name),
			Addr:    rapid.SampledFrom(addrs).Draw(t, label+".addr."+name),
		}
	}
	return m
}

func TestMergeProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genMap(t, "a"), genMap(t, "b"), genMap(t, "c")
		if diff := cmp.Diff(Merge(a, b), Merge(b, a)); diff != "" {
			t.Fatalf("not commutative (-ab +ba):\n%s", diff)
		}
		if diff := cmp.Diff(Merge(Merge(a, b), c), Merge(a, Merge(b, c))); diff != "" {
			t.Fatalf("not associative (-(ab)c +a(bc)):\n%s", diff)
		}
		if diff := cmp.Diff(a, Merge(a, a)); diff != "" {
			t.Fatalf("not idempotent (-a +aa):\n%s", diff)
		}
		// The join is an upper bound: merging it with either input changes
		// nothing, and every row comes from one of the inputs.
		ab := Merge(a, b)
		if diff := cmp.Diff(ab, Merge(ab, a)); diff != "" {
			t.Fatalf("merge result not above a:\n%s", diff)
		}
		for name, e := range ab {
			if e != a[name] && e != b[name] {
				t.Fatalf("row %q = %+v invented, not from a (%+v) or b (%+v)", name, e, a[name], b[name])
			}
		}
	})
}

// TestMergeConvergesInAnyOrder models gossip: several nodes each make local
// changes with Set, then the deltas are delivered to two observers in
// different orders (with duplicates); both end with the same map.
func TestMergeConvergesInAnyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := genMap(t, "base")
		statuses := []Status{StatusJoined, StatusLeaving, StatusLeft, StatusRemoved}
		var deltas []Map
		n := rapid.IntRange(1, 8).Draw(t, "changes")
		for i := range n {
			name := rapid.SampledFrom([]string{"n1", "n2", "n3", "n4"}).Draw(t, fmt.Sprintf("name%d", i))
			s := rapid.SampledFrom(statuses).Draw(t, fmt.Sprintf("status%d", i))
			// Each change is made against the base view, so changes to the
			// same row collide on version: concurrent updates.
			next := base.Set(name, s, "10.0.0.9:1", 0)
			deltas = append(deltas, Map{name: next[name]})
		}
		deliver := func(order []int) Map {
			m := base
			for _, i := range order {
				m = Merge(m, deltas[i])
			}
			return m
		}
		first := make([]int, 0, n)
		for i := range n {
			first = append(first, i)
		}
		second := rapid.Permutation(first).Draw(t, "order")
		second = append(second, rapid.SampledFrom(first).Draw(t, "dup"))
		if diff := cmp.Diff(deliver(first), deliver(second)); diff != "" {
			t.Fatalf("observers diverged (-in order +permuted):\n%s", diff)
		}
	})
}
