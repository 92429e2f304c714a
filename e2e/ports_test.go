package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
)

// freePorts reserves n distinct loopback ports, free for TCP and, because
// gossip uses both, for UDP. They are drawn from outside the kernel's
// ephemeral range: a port found free there is the kind the kernel hands
// to outgoing connections, and the nodes started first, dialling each
// other, took one before the node it was meant for bound it. They are
// released just before use, so another process could still take one in
// between; the tests fail loudly if it does.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	lo, hi := portPool()
	var ports []int
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for attempts := 0; len(ports) < n && attempts < 100*n; attempts++ {
		port := lo + rand.IntN(hi-lo+1)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		held = append(held, l)
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		held = append(held, u)
		ports = append(ports, port)
	}
	if len(ports) < n {
		t.Fatalf("found only %d free ports in %d-%d", len(ports), lo, hi)
	}
	return ports
}

// portPool is the wider span of unprivileged ports (from 10000) on
// either side of the kernel's ephemeral range, or every one of them
// when neither side holds 1000.
func portPool() (lo, hi int) {
	elo, ehi := ephemeralRange()
	lo, hi = 10000, elo-1
	if 65535-ehi > hi-lo {
		lo, hi = ehi+1, 65535
	}
	if hi-lo < 1000 {
		return 10000, 65535 // the ephemeral range is nearly everything: no way around it
	}
	return lo, hi
}

// ephemeralRange is the kernel's range of local ports for outgoing
// connections (Linux's default 32768-60999 when it cannot be read).
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if _, err := fmt.Sscan(string(b), &a, &z); err == nil && a <= z {
			lo, hi = a, z
		}
	}
	return lo, hi
}
