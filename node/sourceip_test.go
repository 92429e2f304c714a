package node

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
)

func TestSourceIP(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want net.IP
	}{
		{"127.0.0.2:7001", net.IPv4(127, 0, 0, 2)},
		{"[::1]:7001", net.IPv6loopback},
		{"0.0.0.0:7001", nil},
		{"[::]:7001", nil},
		{":7001", nil},
		{"localhost:7001", nil}, // a name may resolve to several addresses
		{"no port", nil},
	} {
		if got := sourceIP(tc.addr); !got.Equal(tc.want) {
			t.Errorf("sourceIP(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// acceptLog is a listener that notes the remote address of every
// connection it accepts: what a firewall rule on this node matches.
type acceptLog struct {
	net.Listener
	mu      sync.Mutex // guards remotes
	remotes []net.Addr
}

func (l *acceptLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.remotes = append(l.remotes, c.RemoteAddr())
		l.mu.Unlock()
	}
	return c, err
}

func (l *acceptLog) seen() []net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]net.Addr(nil), l.remotes...)
}

// TestNodesDialFromListenIP: nodes listening on their own loopback
// addresses (as in the chaos tests) open RPC connections from them, so
// the receiving node sees the sender's address, not 127.0.0.1. Linux
// routes all of 127.0.0.0/8 over lo: no namespace is needed.
func TestNodesDialFromListenIP(t *testing.T) {
	onIP := func(name, ip string, seeds ...string) Config {
		cfg := testConfig(t, name, seeds...)
		a := ip + ":0"
		cfg.Listen = ListenConfig{HTTP: a, RESP: a, RPC: a, Gossip: a}
		return cfg
	}
	n2 := startNode(t, onIP("n2", "127.0.0.2"))

	// n3 is started by hand to record who connects to its RPC listener.
	n, err := New(onIP("n3", "127.0.0.3", n2.Addrs().Gossip), testkit.Logger(t).With("test_node", "n3"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &acceptLog{Listener: n.rpcLn}
	n.rpcLn = rec
	ctx, cancel := context.WithCancel(context.Background())
	n3 := &runningNode{Node: n, cancel: cancel, done: make(chan error, 1)}
	go func() { n3.done <- n.Run(ctx) }()
	t.Cleanup(func() { n3.stop(t) })

	waitConverged(t, n2, n3)
	// w=all on a 2-node ring: every write reaches n3, whoever coordinates.
	for i := range 4 {
		url := httpURL(n2, fmt.Sprintf("/v1/kv/src%d?w=all", i))
		if code, _, body := do(t, "PUT", url, []byte("v"), nil); code != 204 {
			t.Fatalf("PUT %s = %d %s", url, code, body)
		}
	}
	var seen []net.Addr
	testkit.Eventually(t, time.Minute, "n3 to accept an RPC connection", func() bool {
		seen = rec.seen()
		return len(seen) > 0
	})
	for _, a := range seen {
		if ip := a.(*net.TCPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 2)) {
			t.Fatalf("n3 accepted an RPC connection from %v, want 127.0.0.2 (all: %v)", a, seen)
		}
	}
}
