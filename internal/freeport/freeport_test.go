package freeport

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// The ports handed out are distinct, lie outside the kernel's ephemeral
// range (where an outgoing connection could take one first), and can be
// bound for TCP and UDP once Ports has returned.
func TestPortsAvoidEphemeralRangeAndAreFree(t *testing.T) {
	elo, ehi := ephemeralRange()
	lo, hi := pool()
	ports, err := Ports("127.0.0.1", 16)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 16 {
		t.Fatalf("got %d ports, want 16", len(ports))
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < lo || p > hi {
			t.Errorf("port %d lies outside the pool %d-%d", p, lo, hi)
		}
		if p >= elo && p <= ehi && ehi-elo < 40000 {
			t.Errorf("port %d lies in the ephemeral range %d-%d", p, elo, ehi)
		}
		addr := "127.0.0.1:" + strconv.Itoa(p)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("port %d not free for TCP after Ports returned: %v", p, err)
			continue
		}
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Errorf("port %d not free for UDP after Ports returned: %v", p, err)
			continue
		}
		u.Close()
	}
}

// The pool is never the ephemeral range itself while a side of it holds
// 1000 ports, and always unprivileged.
func TestPoolBesideEphemeralRange(t *testing.T) {
	elo, ehi := ephemeralRange()
	lo, hi := pool()
	if lo < 10000 || hi > 65535 || hi-lo < 1000 {
		t.Fatalf("pool %d-%d, want at least 1000 unprivileged ports", lo, hi)
	}
	if elo-10000 >= 1000 || 65535-ehi >= 1000 {
		if hi >= elo && lo <= ehi {
			t.Fatalf("pool %d-%d overlaps the ephemeral range %d-%d", lo, hi, elo, ehi)
		}
	}
}

// An address no interface holds yields an error naming the shortfall,
// not a short list.
func TestPortsErrorWhenNoneFree(t *testing.T) {
	ports, err := Ports("192.0.2.1", 2) // TEST-NET-1: bind fails, nothing is sent
	if err == nil {
		t.Fatalf("Ports on an address of no interface = %v, want an error", ports)
	}
	if !strings.Contains(err.Error(), "found only 0 of 2 free ports on 192.0.2.1") {
		t.Fatalf("error = %q, want it to name the shortfall and the address", err)
	}
}
