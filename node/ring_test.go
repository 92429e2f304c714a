package node

import (
	"slices"
	"testing"
)

// A stale member list (New's initial read racing gossip's callback) must
// not replace the ring built from gossip's current membership.
func TestSetRingIgnoresStaleMemberList(t *testing.T) {
	n := startNode(t, testConfig(t, "solo"))
	before := n.ring.Load()
	n.setRing([]string{"ghost-a", "ghost-b"})
	after := n.ring.Load()
	if got := after.Members(); !slices.Equal(got, []string{"solo"}) {
		t.Fatalf("ring members after a stale setRing = %v, want [solo]", got)
	}
	if !before.Equal(after) {
		t.Fatalf("ring changed on a stale member list")
	}
}
