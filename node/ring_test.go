package node

import (
	"slices"
	"testing"

	"github.com/ringkv/ringkv/ring"
)

// A stale plan (New's initial read racing gossip's callback) must not
// replace the placement built from gossip's current plan.
func TestSetPlanIgnoresStalePlan(t *testing.T) {
	n := startNode(t, testConfig(t, "solo"))
	before := n.place.Load()
	n.setPlan(ring.Plan{Epoch: 1, Members: []string{"ghost-a", "ghost-b"}})
	after := n.place.Load()
	if got := after.Current().Members(); !slices.Equal(got, []string{"solo"}) {
		t.Fatalf("ring members after a stale setPlan = %v, want [solo]", got)
	}
	if before != after {
		t.Fatalf("placement changed on a stale plan")
	}
}
