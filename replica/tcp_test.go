package replica

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

// serveOn starts a transport for self serving h on addr ("" = any port)
// and returns it with its address.
func serveOn(t *testing.T, self, addr string, h Handler, mod func(*TCPConfig)) (*TCPTransport, string) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultTCPConfig()
	cfg.Self = self
	cfg.Resolve = func(string) (string, bool) { return "", false }
	cfg.DialTimeout = realSocketTimeout
	if mod != nil {
		mod(&cfg)
	}
	tr, err := NewTCPTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tr.Serve(ln, h) }()
	t.Cleanup(func() {
		_ = tr.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return tr, ln.Addr().String()
}

// realSocketTimeout is the DialTimeout of the tests' TCP transports. The
// default second bounds both connecting and writing the hello; on a loaded
// machine a process can go a second without running, which fails the dial
// and then every call during the backoff. No test here is about a slow
// dial, so the bound only has to catch a hang.
const realSocketTimeout = time.Minute

// client returns a transport for "cli" that resolves every node to *addr.
func client(t *testing.T, addr *atomic.Pointer[string], mod func(*TCPConfig)) *TCPTransport {
	t.Helper()
	cfg := DefaultTCPConfig()
	cfg.Self = "cli"
	cfg.Resolve = func(string) (string, bool) { return *addr.Load(), true }
	cfg.DialTimeout = realSocketTimeout
	if mod != nil {
		mod(&cfg)
	}
	tr, err := NewTCPTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

var okHandler = HandlerFunc(func(context.Context, string, Request) (Response, error) { return Response{Replies: 1}, nil })

func TestTCPFrameTooLarge(t *testing.T) {
	var called atomic.Int32
	h := HandlerFunc(func(_ context.Context, _ string, req Request) (Response, error) {
		called.Add(1)
		if string(req.Key) == "big-reply" {
			_, s := vclock.Mint(nil, "x", vclock.Write{Value: make([]byte, 8192)})
			return Response{Siblings: s}, nil
		}
		return Response{}, nil
	})
	small := func(c *TCPConfig) { c.MaxFrameBytes = 4096 }
	_, addr := serveOn(t, "srv", "", h, small)
	var a atomic.Pointer[string]
	a.Store(&addr)
	cli := client(t, &a, small)

	_, s := vclock.Mint(nil, "x", vclock.Write{Value: make([]byte, 8192)})
	_, err := cli.Call(t.Context(), "srv", Request{Kind: KindStore, Key: []byte("k"), Siblings: s})
	if !errors.Is(err, ErrFrameTooLarge) || called.Load() != 0 {
		t.Fatalf("oversized request: err = %v, handler calls %d", err, called.Load())
	}
	_, err = cli.Call(t.Context(), "srv", Request{Kind: KindRead, Key: []byte("big-reply")})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized reply: err = %v", err)
	}
	if _, err := cli.Call(t.Context(), "srv", Request{Kind: KindPing}); err != nil {
		t.Fatalf("connection unusable after refused frames: %v", err)
	}

	// A peer announcing a frame above the limit is disconnected before the
	// server allocates it.
	nc := rawHello(t, addr, ProtocolVersion)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<30)
	if _, err := nc.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc)
}

// rawHello dials addr, sends a hello from "raw" to "srv" with the given
// version byte and, for the current version, reads the server's hello.
func rawHello(t *testing.T, addr string, version byte) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	w := bufio.NewWriter(nc)
	body := helloBody(hello{self: "raw", peer: "srv"})
	body[0] = version
	if err := writeFrame(w, &frame{typ: frameHello, body: body}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if version == ProtocolVersion {
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := readHello(bufio.NewReader(nc))
		if err != nil || h != (hello{self: "srv", peer: "raw"}) {
			t.Fatalf("server hello %+v, %v", h, err)
		}
		_ = nc.SetReadDeadline(time.Time{})
	}
	return nc
}

// expectClosed checks the server hangs up on nc.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := nc.Read(make([]byte, 1))
	if !errors.Is(err, io.EOF) && !strings.Contains(fmt.Sprint(err), "reset") {
		t.Fatalf("read = %v, want the server to close the connection", err)
	}
}

func TestTCPProtocolErrors(t *testing.T) {
	_, addr := serveOn(t, "srv", "", okHandler, nil)
	t.Run("version", func(t *testing.T) {
		expectClosed(t, rawHello(t, addr, ProtocolVersion+1))
	})
	t.Run("bad body answered, connection kept", func(t *testing.T) {
		nc := rawHello(t, addr, ProtocolVersion)
		w := bufio.NewWriter(nc)
		r := bufio.NewReader(nc)
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		for id := uint64(1); id <= 2; id++ {
			body := []byte{ProtocolVersion, 0xc1} // 0xc1 is never valid msgpack
			if id == 2 {
				body, _ = MarshalRequest(Request{Kind: KindPing})
			}
			if err := writeFrame(w, &frame{typ: frameRequest, id: id, body: body}); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			f, err := readFrame(r, 1<<20)
			if err != nil || f.id != id {
				t.Fatalf("frame %+v, %v", f, err)
			}
			resp, err := UnmarshalReply("srv", f.body)
			if id == 1 && !errors.Is(err, ErrProtocol) {
				t.Fatalf("garbage body: %v", err)
			}
			if id == 2 && (err != nil || resp.Replies != 1) {
				t.Fatalf("ping after garbage: %+v, %v", resp, err)
			}
		}
	})
	t.Run("response frame from client", func(t *testing.T) {
		nc := rawHello(t, addr, ProtocolVersion)
		w := bufio.NewWriter(nc)
		_ = writeFrame(w, &frame{typ: frameResponse, id: 1, body: []byte{1}})
		_ = w.Flush()
		expectClosed(t, nc)
	})
}

// TestTCPReconnect: a peer that is down fails fast (dial error, then
// backoff), and calls succeed again once it is back.
func TestTCPReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nobody listens there now
	var a atomic.Pointer[string]
	a.Store(&addr)
	cli := client(t, &a, func(c *TCPConfig) {
		c.BackoffMin, c.BackoffMax, c.ConnsPerPeer = 20*time.Millisecond, 100*time.Millisecond, 1
	})
	_, err = cli.Call(t.Context(), "srv", Request{Kind: KindPing})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("peer down: %v", err)
	}
	_, err = cli.Call(t.Context(), "srv", Request{Kind: KindPing})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("second call: %v", err)
	}
	srv, _ := serveOn(t, "srv", addr, okHandler, nil)
	testkit.Eventually(t, socketWait, "a successful call after the peer came back", func() bool { _, err := cli.Call(t.Context(), "srv", Request{Kind: KindPing}); return err == nil })

	// Losing the connection fails the call in flight and the next call
	// redials.
	release := make(chan struct{})
	started := make(chan struct{})
	_ = srv.Close()
	blocking := HandlerFunc(func(ctx context.Context, _ string, _ Request) (Response, error) {
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return Response{}, nil
	})
	srv2, _ := serveOn(t, "srv", addr, blocking, nil)
	testkit.Eventually(t, socketWait, "a call to reach the blocking server", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() { _, err := cli.Call(ctx, "srv", Request{Kind: KindRead, Key: []byte("k")}); errc <- err }()
		select {
		case <-started:
		case err := <-errc:
			t.Logf("retrying: %v", err)
			return false
		}
		_ = srv2.Close()
		err := <-errc
		if !errors.Is(err, ErrConnLost) {
			t.Fatalf("call in flight when the server closed: %v", err)
		}
		return true
	})
	close(release)
	serveOn(t, "srv", addr, okHandler, nil)
	testkit.Eventually(t, socketWait, "a successful call after reconnect", func() bool { _, err := cli.Call(t.Context(), "srv", Request{Kind: KindPing}); return err == nil })
}

// socketWait bounds the real-socket tests' waits, where the event waited
// for (a redial, a server's write deadline) happens on the real clock: far
// above any healthy wait so that a loaded machine cannot decide the
// outcome, and the wait ends as soon as the condition holds.
const socketWait = time.Minute

func TestTCPClosed(t *testing.T) {
	var a atomic.Pointer[string]
	addr := "127.0.0.1:1"
	a.Store(&addr)
	cli := client(t, &a, nil)
	_ = cli.Close()
	if _, err := cli.Call(t.Context(), "x", Request{Kind: KindPing}); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after close: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Serve(ln, okHandler); err != nil {
		t.Fatalf("serve after close: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("listener still open after Serve on a closed transport")
	}
}

// TestTCPCallDeadlineWithStalledPeer: a peer that accepted the connection
// but stopped reading (hung process, full socket buffers) must not hold a
// call past its deadline: the frame write is bounded by the call's ctx.
func TestTCPCallDeadlineWithStalledPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		// Answer the hello, then never read again: the peer is stalled.
		_, _ = readHello(bufio.NewReader(nc))
		w := bufio.NewWriter(nc)
		_ = writeFrame(w, &frame{typ: frameHello, body: helloBody(hello{self: "srv", peer: "cli"})})
		_ = w.Flush()
		accepted <- nc
	}()
	t.Cleanup(func() {
		select {
		case nc := <-accepted:
			_ = nc.Close()
		default:
		}
	})
	addr := ln.Addr().String()
	var a atomic.Pointer[string]
	a.Store(&addr)
	cli := client(t, &a, nil)

	// Far more than loopback socket buffers hold, so the write blocks.
	_, s := vclock.Mint(nil, "x", vclock.Write{Value: make([]byte, 32<<20)})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := cli.Call(ctx, "srv", Request{Kind: KindStore, Key: []byte("k"), Siblings: s})
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call to a stalled peer: %v, want a deadline error", err)
		}
	case <-time.After(time.Minute):
		// Close unblocks the stuck write so the goroutine ends.
		_ = cli.Close()
		t.Fatal("call to a stalled peer still blocked long after its 200ms deadline")
	}
}

// TestReadFrameAllocatesAsBytesArrive: a length prefix is only a claim. A
// peer (before or after its hello) that announces a frame just under the
// limit and then sends almost nothing must not make the reader allocate
// the announced size, or a few idle connections pin gigabytes.
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	const announced = 60 << 20
	in := make([]byte, 4+100)
	binary.BigEndian.PutUint32(in, announced)
	in[4] = frameHello
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := readFrame(bufio.NewReader(bytes.NewReader(in)), 64<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("truncated frame: %v, want ErrProtocol", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Fatalf("reading 100 bytes of a frame announced as %d allocated %d bytes", announced, got)
	}

	// A whole frame larger than one read chunk still arrives intact.
	body := make([]byte, 300<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeFrame(w, &frame{typ: frameResponse, id: 9, body: body}); err != nil {
		t.Fatal(err)
	}
	_ = w.Flush()
	f, err := readFrame(bufio.NewReader(&buf), 64<<20)
	if err != nil || f.id != 9 || !bytes.Equal(f.body, body) {
		t.Fatalf("large frame: id %d, %d body bytes, equal %v, err %v", f.id, len(f.body), bytes.Equal(f.body, body), err)
	}
}

// TestTCPServeStalledClient: a caller that stops reading its answers
// (hung process) must not pin the server's call goroutines and their
// replies forever: the answer's write is bounded by the call's budget, and
// the connection is dropped when it runs out. On a loaded machine the
// reply may be ready only after its deadline; it is then dropped unsent
// and the connection kept (frame_writer.go). Either way the call ends and
// its bytes are released, which is what is checked.
func TestTCPServeStalledClient(t *testing.T) {
	called := make(chan struct{}, 1)
	_, s := vclock.Mint(nil, "x", vclock.Write{Value: make([]byte, 32<<20)})
	big := HandlerFunc(func(context.Context, string, Request) (Response, error) {
		called <- struct{}{}
		return Response{Siblings: s}, nil
	})
	srv, addr := serveOn(t, "srv", "", big, nil)
	nc := rawHello(t, addr, ProtocolVersion)
	w := bufio.NewWriter(nc)
	body, _ := MarshalRequest(Request{Kind: KindRead, Key: []byte("k")})
	if err := writeFrame(w, &frame{typ: frameRequest, id: 1, budget: int64(200 * time.Millisecond), body: body}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// nc is never read from.
	select {
	case <-called:
	case <-time.After(time.Minute):
		t.Fatal("the call never reached the handler")
	}
	testkit.Eventually(t, socketWait, "the server to drop the call of a caller that stopped reading", func() error {
		if n := srv.Stats().BufferedBytes; n != 0 {
			return fmt.Errorf("it still holds %d bytes, long after the call's 200ms budget", n)
		}
		return nil
	})
}
