package ring

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestUnzonedMemberKeepsNoZone is the wiped-disk case: a node of the plan
// without a zone comes back declaring one. It must stay without a zone
// while it is in the plan, whether it serves or is only in the target.
func TestUnzonedMemberKeepsNoZone(t *testing.T) {
	declared := map[string]string{"a": "z1", "d": "z2", "e": "z3"}
	zoneOf := func(n string) string { return declared[n] }
	plan := NewPlan([]string{"a", "b", "c"}, 1)
	next := plan.MoveToZoned([]string{"a", "b", "c", "d"}, zoneOf, 2)
	if want := map[string]string{"d": "z2"}; !maps.Equal(next.Zones, want) {
		t.Fatalf("MoveToZoned zones %v, want %v (a is in the plan without a zone)", next.Zones, want)
	}
	// d is in the target only; a retarget keeps d's zone and gives e its own.
	declared["d"] = "other"
	re := next.MoveToZoned([]string{"a", "b", "c", "d", "e"}, zoneOf, 3)
	if want := map[string]string{"d": "z2", "e": "z3"}; !maps.Equal(re.Zones, want) {
		t.Fatalf("retarget zones %v, want %v", re.Zones, want)
	}
	// An unzoned node only in the target stays unzoned on a retarget.
	bare := plan.MoveToZoned([]string{"a", "b", "c", "f"}, nil, 4)
	declared["f"] = "z1"
	if re := bare.MoveToZoned([]string{"a", "b", "c", "f", "e"}, zoneOf, 5); re.Zones["f"] != "" {
		t.Fatalf("retarget gave f, unzoned in the target, zone %q", re.Zones["f"])
	}
}

// TestDecideNeverChangesTheServingRing drives Decide through random joins,
// leaves, retargets and commits while every node declares a random zone
// at every step (including nodes already in the plan, with or without a
// zone there). Each plan Decide makes must serve the ring the previous
// plan served (a start or retarget) or the one it was moving to (a
// commit): no transfer covers any other change of the serving ring.
func TestDecideNeverChangesTheServingRing(t *testing.T) {
	cfg := transitionConfig()
	pool := []string{"a", "b", "c", "d", "e", "f"}
	zones := []string{"", "z1", "z2", "z3"}
	rapid.Check(t, func(rt *rapid.T) {
		plan := NewPlan(pool[:3], 1)
		plan.Zones = map[string]string{}
		for _, n := range plan.Members {
			if z := rapid.SampledFrom(zones).Draw(rt, "initial zone of "+n); z != "" {
				plan.Zones[n] = z
			}
		}
		if len(plan.Zones) == 0 {
			plan.Zones = nil
		}
		for step := range 12 {
			declared := map[string]string{}
			for _, n := range pool {
				declared[n] = rapid.SampledFrom(zones).Draw(rt, fmt.Sprintf("step %d zone of %s", step, n))
			}
			var desired []string
			for _, n := range pool {
				if rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("step %d %s wants", step, n)) > 0 {
					desired = append(desired, n)
				}
			}
			complete := rapid.Bool().Draw(rt, fmt.Sprintf("step %d complete", step))
			s := Situation{Plan: plan, Desired: desired, Gone: nobody, Alive: all,
				Complete: func(string, int) bool { return complete },
				Zone:     func(n string) string { return declared[n] }, Now: uint64(10 + step)}
			next, reason, ok := Decide(cfg, s)
			if !ok {
				continue
			}
			before := mustTransition(rt, cfg, plan)
			after := mustTransition(rt, cfg, next)
			if strings.HasPrefix(reason, "commit") {
				if !after.Current().Equal(before.Target()) {
					rt.Fatalf("%s: served ring after the commit is not the target before it", reason)
				}
			} else if !after.Current().Equal(before.Current()) {
				rt.Fatalf("%s: serving ring changed (zones %v -> %v)", reason, plan.Zones, next.Zones)
			}
			for _, n := range slices.Concat(plan.Members, plan.Target) {
				if next.Involves(n) && next.Zones[n] != plan.Zones[n] {
					rt.Fatalf("%s: %s's zone changed from %q to %q", reason, n, plan.Zones[n], next.Zones[n])
				}
			}
			plan = next
		}
	})
}
