package ring

import (
	"errors"
	"maps"
	"slices"
	"testing"
)

func TestPlanZones(t *testing.T) {
	base := NewPlan([]string{"a", "b", "c"}, 10)
	zoned := base
	zoned.Zones = map[string]string{"a": "z1", "b": "z2", "c": "z3"}
	if err := zoned.Validate(); err != nil {
		t.Fatal(err)
	}
	if zoned.Compare(base) == 0 || zoned.Hash() == base.Hash() {
		t.Fatal("zones do not change Compare or Hash")
	}
	noZones := base
	noZones.Zones = map[string]string{}
	if noZones.Compare(base) != 0 || noZones.Hash() != base.Hash() {
		t.Fatal("an empty zone map is not the same plan as none")
	}
	for name, zones := range map[string]map[string]string{
		"uninvolved node": {"x": "z1"},
		"empty zone":      {"a": ""},
		"bad zone":        {"a": "z 1"},
	} {
		bad := base
		bad.Zones = zones
		if err := bad.Validate(); !errors.Is(err, ErrBadPlan) {
			t.Errorf("%s: Validate = %v, want ErrBadPlan", name, err)
		}
	}

	// A node in the plan keeps its zone whatever it declares now; a new one
	// takes the declared zone; a committed plan drops the zones of nodes
	// that left.
	declared := map[string]string{"a": "other", "d": "z1"}
	next := zoned.MoveToZoned([]string{"a", "b", "d"}, func(n string) string { return declared[n] }, 20)
	want := map[string]string{"a": "z1", "b": "z2", "c": "z3", "d": "z1"}
	if !maps.Equal(next.Zones, want) {
		t.Fatalf("MoveToZoned zones %v, want %v", next.Zones, want)
	}
	committed := next.Commit(30)
	delete(want, "c")
	if !maps.Equal(committed.Zones, want) {
		t.Fatalf("Commit zones %v, want %v", committed.Zones, want)
	}
	pairs := committed.ZonePairs()
	back, err := ZonesFromPairs(pairs)
	if err != nil || !maps.Equal(back, committed.Zones) {
		t.Fatalf("ZonesFromPairs(%v) = %v, %v", pairs, back, err)
	}
	for _, bad := range [][]string{{"a"}, {"a", "z1", "a", "z2"}} {
		if _, err := ZonesFromPairs(bad); !errors.Is(err, ErrBadPlan) {
			t.Errorf("ZonesFromPairs(%v) = %v, want ErrBadPlan", bad, err)
		}
	}
}

// TestZonedTransitionMovesAsPredicted joins a tenth node to nine nodes in
// three zones: the transition's moves are the what-if's added replicas,
// its target is the zoned ring with the node, and every partition of the
// target spans the three zones.
func TestZonedTransitionMovesAsPredicted(t *testing.T) {
	cfg := smallConfig()
	members := names("n", 9)
	zones := zoneMap(members, 3)
	plan := NewPlan(members, 1)
	plan.Zones = zones
	tr := mustTransition(t, cfg, plan)
	if !tr.Current().Equal(mustZoned(t, cfg, members, zones)) {
		t.Fatal("the serving ring is not the zoned ring of the plan")
	}
	w, err := tr.Current().WhatIfAddZone("n10", "z2")
	if err != nil {
		t.Fatal(err)
	}
	next := plan.MoveToZoned(append(slices.Clone(members), "n10"), func(string) string { return "z2" }, 2)
	moving := mustTransition(t, cfg, next)
	checkDefinitions(t, moving)
	var predicted, got []Move
	for _, mv := range w.Moves {
		for _, to := range mv.Added {
			predicted = append(predicted, Move{Partition: mv.Partition, To: to})
		}
	}
	for _, mv := range moving.Moves() {
		got = append(got, Move{Partition: mv.Partition, To: mv.To})
	}
	slices.SortFunc(predicted, func(a, b Move) int {
		if a.Partition != b.Partition {
			return a.Partition - b.Partition
		}
		return compareStrings(a.To, b.To)
	})
	if !slices.EqualFunc(got, predicted, func(a, b Move) bool { return a.Partition == b.Partition && a.To == b.To }) {
		t.Fatalf("transition moves %v, what-if predicted %v", got, predicted)
	}
	if len(got) == 0 {
		t.Fatal("adding a node moved nothing")
	}
	for p := range cfg.Partitions {
		if z := perZone(moving.Target(), p); len(z) != 3 {
			t.Fatalf("target partition %d spans zones %v", p, z)
		}
	}
	if !moving.Zoned() || moving.Zone("n10") != "z2" || moving.Zone("n1") != "z1" || moving.Zone("x") != "" {
		t.Fatalf("transition zones: n10 %q, n1 %q", moving.Zone("n10"), moving.Zone("n1"))
	}
	done := mustTransition(t, cfg, next.Commit(3))
	if !done.Current().Equal(moving.Target()) {
		t.Fatal("the committed ring is not the transition's target")
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestDecideGivesNewNodesTheirZone(t *testing.T) {
	cfg := smallConfig()
	plan := NewPlan([]string{"a", "b", "c"}, 1)
	plan.Zones = map[string]string{"a": "z1", "b": "z2", "c": "z3"}
	declared := map[string]string{"a": "z9", "b": "z2", "c": "z3", "d": "z1"}
	s := Situation{
		Plan:    plan,
		Desired: []string{"a", "b", "c", "d"},
		Alive:   func(string) bool { return true },
		Zone:    func(n string) string { return declared[n] },
		Now:     5,
	}
	next, reason, ok := Decide(cfg, s)
	if !ok {
		t.Fatalf("no decision: %s", reason)
	}
	want := map[string]string{"a": "z1", "b": "z2", "c": "z3", "d": "z1"}
	if !maps.Equal(next.Zones, want) {
		t.Fatalf("zones %v, want %v", next.Zones, want)
	}
	declared["d"] = "bad zone"
	if _, reason, ok := Decide(cfg, s); ok {
		t.Fatalf("moved to a node with an invalid zone: %s", reason)
	}
}
