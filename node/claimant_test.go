package node

import (
	"slices"
	"testing"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/ring"
)

// A node that has the plan but not every member's row must not take the
// missing members for nodes that want out: it would retarget the cluster
// to the members it knows (a joiner just past its seed, to itself).
func TestDesiredWaitsForEveryMembersRow(t *testing.T) {
	plan := ring.NewPlan([]string{"n1", "n2", "n3"}, 1)
	joined := gossip.Entry{Status: gossip.StatusJoined, Version: 1}
	partial := gossip.Map{"n5": joined, "n1": joined}
	if d, known := desiredFrom(plan, partial); known {
		t.Fatalf("desiredFrom with rows of n1 and n5 only = %v, known; want unknown", d)
	}
	change := plan.MoveTo([]string{"n1", "n2", "n3", "n4"}, 2)
	rows := gossip.Map{"n1": joined, "n2": joined, "n3": joined,
		"n5": joined, "n6": {Status: gossip.StatusLeaving, Version: 1}}
	if _, known := desiredFrom(change, rows); known {
		t.Fatal("desiredFrom without the target's n4 row is known; want unknown")
	}
	rows["n4"] = joined
	d, known := desiredFrom(change, rows)
	if want := []string{"n1", "n2", "n3", "n4", "n5"}; !known || !slices.Equal(d, want) {
		t.Fatalf("desiredFrom = %v, %v; want %v (the leaving n6 left out)", d, known, want)
	}
}
