package chaos

import (
	"fmt"
	"os"
	"testing"
)

// The ports handed out are distinct and none lies in the kernel's
// ephemeral range, where an outgoing connection could take it first.
func TestFreePortsAvoidEphemeralRange(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skipf("no ephemeral port range to check against: %v", err)
	}
	var elo, ehi int
	if _, err := fmt.Sscan(string(b), &elo, &ehi); err != nil {
		t.Fatalf("ip_local_port_range %q: %v", b, err)
	}
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
