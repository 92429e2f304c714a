package gossip

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ringkv/ringkv/internal/testkit"
)

// acceptRemote listens on addr and returns its address and a channel that
// gets the remote address of each connection accepted (the view a
// firewall rule on the receiving side matches). Each connection is closed
// once noted; the listener closes with the test.
func acceptRemote(t *testing.T, addr string) (string, <-chan *net.TCPAddr) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	remotes := make(chan *net.TCPAddr, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			select {
			case remotes <- c.RemoteAddr().(*net.TCPAddr):
			default: // the test reads the first few
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String(), remotes
}

// nextRemote waits for the next accepted connection's remote address.
func nextRemote(t *testing.T, remotes <-chan *net.TCPAddr) *net.TCPAddr {
	t.Helper()
	select {
	case a := <-remotes:
		return a
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("no connection arrived")
		return nil
	}
}

// Linux routes all of 127.0.0.0/8 over lo, so these tests need no
// namespace to use 127.0.0.2 and 127.0.0.3.
func TestBindDialsFromBindIP(t *testing.T) {
	addr, remotes := acceptRemote(t, "127.0.0.3:0")
	tr := bindDials(nil, "127.0.0.2") // the dial methods do not use inner
	for _, dial := range []struct {
		name string
		fn   func() (net.Conn, error)
	}{
		{"DialTimeout", func() (net.Conn, error) { return tr.DialTimeout(addr, time.Minute) }},
		{"DialAddressTimeout", func() (net.Conn, error) {
			return tr.DialAddressTimeout(memberlist.Address{Addr: addr, Name: "n3"}, time.Minute)
		}},
	} {
		t.Run(dial.name, func(t *testing.T) {
			c, err := dial.fn()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := nextRemote(t, remotes); !got.IP.Equal(net.IPv4(127, 0, 0, 2)) {
				t.Fatalf("listener saw the stream from %v, want 127.0.0.2", got)
			}
		})
	}
}

func TestBindDialsLeavesWildcardAlone(t *testing.T) {
	inner := &sourceBoundTransport{} // any transport; only its identity matters
	for _, bind := range []string{"", "0.0.0.0", "::"} {
		if got := bindDials(inner, bind); got != inner {
			t.Errorf("bind %q: transport wrapped, want the kernel to pick the source", bind)
		}
	}
	if got, ok := bindDials(inner, "::1").(*sourceBoundTransport); !ok || got == inner || !got.ip.Equal(net.IPv6loopback) {
		t.Errorf("bind ::1: got %#v, want a wrapper dialling from ::1", got)
	}
}

// TestGossipStreamsLeaveFromBindIP checks the wiring in New: a node bound
// to 127.0.0.2 joining a seed on 127.0.0.3 opens its push-pull stream from
// 127.0.0.2.
func TestGossipStreamsLeaveFromBindIP(t *testing.T) {
	seed, remotes := acceptRemote(t, "127.0.0.3:0")
	cfg := LocalConfig()
	cfg.Name = "n2"
	cfg.Dir = t.TempDir()
	cfg.BindAddr = "127.0.0.2"
	cfg.Seeds = []string{seed}
	cfg.Logger = discardLogger() // the seed hangs up: join warnings are expected
	cfg.Meta = Meta{RPC: "127.0.0.2:9000", HTTP: "127.0.0.2:8080", RESP: "127.0.0.2:6379", Proto: 1}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown() })
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := nextRemote(t, remotes); !got.IP.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Fatalf("seed saw the join from %v, want 127.0.0.2", got)
	}
}

// TestGossipJoinAcrossBoundIPs: two members on their own loopback
// addresses join and see each other alive, so binding the source breaks
// neither streams nor packets.
func TestGossipJoinAcrossBoundIPs(t *testing.T) {
	start := func(name, ip string, seeds []string) *Gossip {
		cfg := LocalConfig()
		cfg.Name = name
		cfg.Dir = t.TempDir()
		cfg.BindAddr = ip
		cfg.Seeds = seeds
		cfg.Bootstrap = len(seeds) == 0
		lg, _ := newTestLogger(t, 0)
		cfg.Logger = lg
		cfg.Meta = Meta{RPC: ip + ":9000", HTTP: ip + ":8080", RESP: ip + ":6379", Proto: 1}
		g, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Shutdown() })
		if err := g.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return g
	}
	b := start("n3", "127.0.0.3", nil)
	a := start("n2", "127.0.0.2", []string{b.LocalAddr()})
	select {
	case <-a.Joined():
	case <-time.After(time.Minute):
		t.Fatal("n2 did not join n3")
	}
	testkit.Eventually(t, time.Minute, "n2 and n3 to see each other alive", func() bool { return a.Alive("n3") && b.Alive("n2") })
}
