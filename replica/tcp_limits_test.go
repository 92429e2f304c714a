package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
)

// TestTCPHelloForAnotherNode: a connection whose hello says it meant to
// reach another node is refused and counted; the server still names
// itself first so the caller can tell whom it reached.
func TestTCPHelloForAnotherNode(t *testing.T) {
	var called atomic.Int32
	h := HandlerFunc(func(context.Context, string, Request) (Response, error) { called.Add(1); return Response{}, nil })
	srv, addr := serveOn(t, "srv", "", h, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	w := bufio.NewWriter(nc)
	_ = writeFrame(w, &frame{typ: frameHello, body: helloBody(hello{self: "raw", peer: "n9"})})
	body, _ := MarshalRequest(Request{Kind: KindPing})
	_ = writeFrame(w, &frame{typ: frameRequest, id: 1, body: body})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	got, err := readHello(br)
	if err != nil || got != (hello{self: "srv", peer: "raw"}) {
		t.Fatalf("server hello = %+v, %v; want it to name itself", got, err)
	}
	if _, err := readFrame(br, 1<<20); err == nil {
		t.Fatal("server answered a call on a connection meant for another node")
	}
	if n := srv.Stats().WrongPeer; n != 1 {
		t.Fatalf("WrongPeer = %d, want 1", n)
	}
	if called.Load() != 0 {
		t.Fatal("handler ran for a connection meant for another node")
	}
}

// TestTCPAnsweredByWrongNode: a call to n2 whose address leads to n3 (a
// stale gossip address, a loopback address on another host) must fail,
// not count as n2's answer.
func TestTCPAnsweredByWrongNode(t *testing.T) {
	var called atomic.Int32
	h := HandlerFunc(func(context.Context, string, Request) (Response, error) {
		called.Add(1)
		return Response{Replies: 1}, nil
	})
	n3, addr := serveOn(t, "n3", "", h, nil)
	var a atomic.Pointer[string]
	a.Store(&addr)
	cli := client(t, &a, nil)
	_, err := cli.Call(t.Context(), "n2", Request{Kind: KindStore, Key: []byte("k")})
	if !errors.Is(err, ErrWrongPeer) {
		t.Fatalf("call to n2 answered by n3: err = %v, want ErrWrongPeer", err)
	}
	if called.Load() != 0 {
		t.Fatal("n3 ran a call meant for n2")
	}
	if c, s := cli.Stats().WrongPeer, n3.Stats().WrongPeer; c != 1 || s != 1 {
		t.Fatalf("WrongPeer: client %d, server %d; want 1 and 1", c, s)
	}
	// The right name gets through.
	if resp, err := cli.Call(t.Context(), "n3", Request{Kind: KindPing}); err != nil || resp.Replies != 1 {
		t.Fatalf("call to n3: %+v, %v", resp, err)
	}
}

// TestTCPIdleConnectionClosed: after the hello, a connection on which no
// frame starts within IdleTimeout is closed (thousands of idle
// connections were held for good).
func TestTCPIdleConnectionClosed(t *testing.T) {
	_, addr := serveOn(t, "srv", "", okHandler, func(c *TCPConfig) { c.IdleTimeout = 100 * time.Millisecond })
	expectClosed(t, rawHello(t, addr, ProtocolVersion))
}

// TestTCPStalledFrameClosed: a peer that starts a frame and stops midway is
// disconnected after FrameTimeout, freeing what the frame holds.
func TestTCPStalledFrameClosed(t *testing.T) {
	srv, addr := serveOn(t, "srv", "", okHandler, func(c *TCPConfig) { c.FrameTimeout = 200 * time.Millisecond })
	nc := rawHello(t, addr, ProtocolVersion)
	var hdr [4 + 10]byte
	binary.BigEndian.PutUint32(hdr[:], 1000)
	hdr[4] = frameRequest
	if _, err := nc.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc)
	testkit.Eventually(t, socketWait, "a closed connection's frame to be released", func() error {
		if n := srv.Stats().BufferedBytes; n != 0 {
			return fmt.Errorf("it still holds %d bytes", n)
		}
		return nil
	})
}

// TestTCPFrameBudget: peers that each send all but the last byte of a
// large frame hold at most MaxBufferedBytes between them; the others wait
// without being read. Once they go, calls run again.
func TestTCPFrameBudget(t *testing.T) {
	const frameLen = 60 << 10
	srv, addr := serveOn(t, "srv", "", okHandler, func(c *TCPConfig) {
		c.MaxFrameBytes = 64 << 10
		c.MaxBufferedBytes = 128 << 10
	})
	var conns []net.Conn
	for range 4 {
		nc := rawHello(t, addr, ProtocolVersion)
		conns = append(conns, nc)
		go func() {
			// All but the last byte; the write may block once the server
			// stops reading, until the connection is closed.
			b := make([]byte, 4+frameLen-1)
			binary.BigEndian.PutUint32(b, frameLen)
			b[4] = frameRequest
			_, _ = nc.Write(b)
		}()
	}
	testkit.Eventually(t, socketWait, fmt.Sprintf("two frames held (%d bytes) and two waiting", 2*frameLen), func() error {
		if s := srv.Stats(); s.BufferedBytes != 2*frameLen || s.WaitingFrames != 2 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
	for _, nc := range conns {
		_ = nc.Close()
	}
	var a atomic.Pointer[string]
	a.Store(&addr)
	cli := client(t, &a, nil)
	if _, err := cli.Call(t.Context(), "srv", Request{Kind: KindPing}); err != nil {
		t.Fatalf("call after the greedy peers left: %v", err)
	}
	testkit.Eventually(t, socketWait, "the budget returned", func() error {
		if s := srv.Stats(); s.BufferedBytes != 0 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
}

// TestTCPClientRetiresIdleConnection: a pooled connection unused for half
// of IdleTimeout is replaced before a call uses it, so calls never race
// the server's idle close.
func TestTCPClientRetiresIdleConnection(t *testing.T) {
	var accepted atomic.Int32
	_, addr := serveOn(t, "srv", "", HandlerFunc(func(context.Context, string, Request) (Response, error) { return Response{}, nil }), nil)
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxyLn.Close() })
	go func() {
		for {
			in, err := proxyLn.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			out, err := net.Dial("tcp", addr)
			if err != nil {
				_ = in.Close()
				continue
			}
			go func() { _, _ = bufio.NewReader(in).WriteTo(out); _ = out.Close() }()
			go func() { _, _ = bufio.NewReader(out).WriteTo(in); _ = in.Close() }()
		}
	}()
	paddr := proxyLn.Addr().String()
	var a atomic.Pointer[string]
	a.Store(&paddr)
	cli := client(t, &a, func(c *TCPConfig) { c.ConnsPerPeer = 1 })
	for range 2 {
		if _, err := cli.Call(t.Context(), "srv", Request{Kind: KindPing}); err != nil {
			t.Fatal(err)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections for two calls, want 1", n)
	}
	// Make the pooled connection look idle for an hour.
	cli.mu.Lock()
	p := cli.peers["srv"]
	cli.mu.Unlock()
	p.mu.Lock()
	p.conns[0].lastSend.Store(time.Now().Add(-time.Hour).UnixNano())
	p.mu.Unlock()
	if _, err := cli.Call(t.Context(), "srv", Request{Kind: KindPing}); err != nil {
		t.Fatalf("call after the connection idled: %v", err)
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want the idle one replaced by a second", n)
	}
}
