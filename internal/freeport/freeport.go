// Package freeport finds ports on a loopback address that a test or a
// chaos run can hand to a node it starts later, with the port written
// into another node's config first (a seed, a peer's address, a restart
// on the same address).
//
// A port found free by listening on port 0 comes from the kernel's
// ephemeral range, the same range it hands to outgoing connections and
// to every other listener on port 0. Once released, it can be taken by
// any of them before the node it was meant for binds it: nodes started
// earlier dialling their seeds, other tests of the run. The ports here
// come from outside that range, where the kernel assigns nothing on its
// own, and at random, so that concurrent callers rarely meet.
package freeport

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
)

// Ports returns n distinct ports on ip, each free for TCP and, because
// gossip uses both, for UDP at the time of the call. They are released
// before Ports returns, so another process may still take one before its
// user binds it; callers either retry or fail loudly.
func Ports(ip string, n int) ([]int, error) {
	lo, hi := pool()
	var ports []int
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for attempts := 0; len(ports) < n && attempts < 100*n; attempts++ {
		addr := net.JoinHostPort(ip, strconv.Itoa(lo+rand.IntN(hi-lo+1)))
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
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("found only %d of %d free ports on %s in %d-%d", len(ports), n, ip, lo, hi)
	}
	return ports, nil
}

// pool is the span Ports draws from: the wider span of unprivileged ports
// (from 10000) on either side of the kernel's ephemeral range, or every
// one of them when neither side holds 1000.
func pool() (lo, hi int) {
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
// connections and listeners on port 0 (Linux's default 32768-60999 when
// it cannot be read).
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
