package chaos

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
)

// freePorts reserves n distinct ports on ip, free for TCP and, because
// gossip uses both, for UDP. They come from outside the kernel's
// ephemeral range: a free port inside it may be handed to an outgoing
// connection of a running node, and a node restarted on its old ports
// would then fail to bind. They are released before the nodes bind them,
// so another process may take one in between; Start retries then.
func freePorts(ip string, n int) ([]int, error) {
	lo, hi := portPool()
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
		return nil, fmt.Errorf("chaos: found only %d of %d free ports on %s in %d-%d", len(ports), n, ip, lo, hi)
	}
	return ports, nil
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
