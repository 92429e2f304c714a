package chaos

import "testing"

// The ports handed out are distinct and none lies in the kernel's
// ephemeral range, where an outgoing connection could take it first.
func TestFreePortsAvoidEphemeralRange(t *testing.T) {
	elo, ehi := ephemeralRange()
	ports, err := freePorts("127.0.0.1", 16)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		if p >= elo && p <= ehi && ehi-elo < 40000 {
			t.Errorf("port %d lies in the ephemeral range %d-%d", p, elo, ehi)
		}
	}
}
