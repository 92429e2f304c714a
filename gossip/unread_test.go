package gossip

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestShutdownUnstartedAfterTraffic: a Gossip bound on the network but
// never started shuts down although a peer already sent it a packet and
// opened a stream, which park memberlist's listeners on channels that
// nobody reads until Start.
func TestShutdownUnstartedAfterTraffic(t *testing.T) {
	cfg := LocalConfig()
	cfg.Name, cfg.Dir, cfg.BindAddr, cfg.BindPort = "n1", t.TempDir(), "127.0.0.1", 0
	cfg.Logger, _ = newTestLogger(t, -4)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nt := netTransportOf(t, g)

	udp, err := net.Dial("udp", g.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if _, err := udp.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Dial("tcp", g.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	// Both listeners must be holding what they received before Shutdown,
	// or the test would pass on a transport that could still hang.
	waitParked(t, nt, "udpListen", "tcpListen")

	done := make(chan error, 1)
	go func() { done <- g.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("Shutdown of an unstarted gossip did not return; goroutines:\n%s", allStacks())
	}
	// The stream was closed, not left open: the peer sees the end.
	if err := tcp.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := tcp.Read(make([]byte, 1)); err == nil {
		t.Errorf("stream read %d bytes after Shutdown, want it closed", n)
	}
}

// netTransportOf returns the network transport New bound for g.
func netTransportOf(t *testing.T, g *Gossip) *memberlist.NetTransport {
	t.Helper()
	g.lifeMu.Lock()
	inner := g.inner
	g.lifeMu.Unlock()
	if sb, ok := inner.(*sourceBoundTransport); ok {
		inner = sb.NodeAwareTransport
	}
	nt, ok := inner.(*memberlist.NetTransport)
	if !ok {
		t.Fatalf("transport is %T, want memberlist's network transport", inner)
	}
	return nt
}

// waitParked waits until each listed listener goroutine of nt is blocked
// handing over what it received (a channel send). A goroutine's state is
// only visible in the stacks, so they are read until it shows, within a
// generous deadline.
func waitParked(t *testing.T, nt *memberlist.NetTransport, funcs ...string) {
	t.Helper()
	recv := fmt.Sprintf("(%p", nt)
	deadline := time.Now().Add(time.Minute)
	for {
		missing := funcs[:0:0]
		stacks := allStacks()
		for _, f := range funcs {
			if !parkedIn(stacks, "memberlist.(*NetTransport)."+f+recv) {
				missing = append(missing, f)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("listeners %v never blocked on a channel send; goroutines:\n%s", missing, stacks)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polls a state no event reports
	}
}

// parkedIn reports whether a goroutine blocked on a channel send has call
// (function and receiver) in its stack.
func parkedIn(stacks, call string) bool {
	for _, gr := range strings.Split(stacks, "\n\n") {
		if strings.Contains(gr, "[chan send") && strings.Contains(gr, call) {
			return true
		}
	}
	return false
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestStartFailsAfterTraffic: when memberlist refuses to start on the
// transport New bound, Start closes the transport although a peer's
// packet and stream wait unread in it, and returns the error; a second
// Start returns it again instead of running memberlist on nothing, and
// Shutdown still works.
func TestStartFailsAfterTraffic(t *testing.T) {
	cfg := LocalConfig()
	cfg.Name, cfg.Dir, cfg.BindAddr, cfg.BindPort = "n1", t.TempDir(), "127.0.0.1", 0
	cfg.Logger, _ = newTestLogger(t, -4)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nt := netTransportOf(t, g)
	g.mc.ProtocolVersion = memberlist.ProtocolVersionMax + 1 // Create refuses it
	udp, err := net.Dial("udp", g.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if _, err := udp.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Dial("tcp", g.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	waitParked(t, nt, "udpListen", "tcpListen")

	done := make(chan error, 1)
	go func() { done <- g.Start(t.Context()) }()
	var first error
	select {
	case first = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("Start that memberlist refused did not return; goroutines:\n%s", allStacks())
	}
	if first == nil || !strings.Contains(first.Error(), "protocol version") {
		t.Fatalf("Start = %v, want memberlist's refusal of the protocol version", first)
	}
	if err := g.Start(t.Context()); err == nil || err.Error() != first.Error() {
		t.Errorf("second Start = %v, want the first one's error %v", err, first)
	}
	if err := g.Shutdown(); err != nil {
		t.Errorf("Shutdown after a failed Start: %v", err)
	}
}
