package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
)

// TestRESPMaxClients: past limits.resp_max_clients a new connection gets
// redis-server's error and is closed, counted; the ones served go on, and
// once one leaves a new one is served again. INFO and CONFIG GET report
// the limit.
func TestRESPMaxClients(t *testing.T) {
	limits := testLimits
	limits.RESPMaxClients = 2
	s, addr := startRESPWith(t, newFakeKV(), limits)
	a, b := dialRESP(t, addr), dialRESP(t, addr)
	for _, c := range []*respClient{a, b} {
		if got := c.do(t, "PING"); got != "PONG" {
			t.Fatalf("PING: %v", got)
		}
	}

	over := dialRESP(t, addr)
	if err := over.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := readReply(over.rd)
	if err != nil || got != respError(respMaxClientsText) {
		t.Fatalf("third connection got %v, %v; want %q", got, err, respMaxClientsText)
	}
	if _, err := over.rd.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("third connection still open after the refusal: %v", err)
	}
	if n := counterValue(t, s.metrics, metricRESPDropped, "reason", respDroppedMaxClients); n != 1 {
		t.Fatalf("%s{reason=%s} = %v, want 1", metricRESPDropped, respDroppedMaxClients, n)
	}

	// The two served are unaffected, and report the limit.
	info, _ := a.do(t, "INFO").([]byte)
	for _, want := range []string{"connected_clients:2\r\n", "maxclients:2\r\n"} {
		if !bytes.Contains(info, []byte(want)) {
			t.Fatalf("INFO lacks %q:\n%s", want, info)
		}
	}
	if got, _ := b.do(t, "CONFIG", "GET", "maxclients").([]any); len(got) != 2 || string(got[1].([]byte)) != "2" {
		t.Fatalf("CONFIG GET maxclients = %v, want [maxclients 2]", got)
	}

	if n := gaugeValue(t, s.metrics, metricRESPConnections); n != 2 {
		t.Fatalf("%s = %v with two served, want 2", metricRESPConnections, n)
	}

	// One leaves; the server notices (EOF) and serves a new one.
	if err := a.conn.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the closed connection untracked", func() bool { return s.connCount() == 1 })
	if n := gaugeValue(t, s.metrics, metricRESPConnections); n != 1 {
		t.Fatalf("%s = %v after one left, want 1", metricRESPConnections, n)
	}
	if got := dialRESP(t, addr).do(t, "PING"); got != "PONG" {
		t.Fatalf("PING on a connection made after one left: %v", got)
	}
}

// gaugeValue reads the gauge name (its first series; the gauges read
// here have no labels, so one).
func gaugeValue(t *testing.T, m *metrics, name string) float64 {
	t.Helper()
	v, ok := series(t, m, name, nil)
	if !ok {
		t.Fatalf("no gauge %s", name)
	}
	return v
}

// TestRESPRepliesBeforePartialCommand: the answers to pipelined commands
// go out before the node waits for the rest of a command that arrived in
// part, as redis-server's do.
func TestRESPRepliesBeforePartialCommand(t *testing.T) {
	_, addr, _ := startRESP(t)
	c := dialRESP(t, addr)
	if err := c.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c.conn, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$4\r\nPI"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []any{"PONG", []byte("hi")} {
		got, err := readReply(c.rd)
		if err != nil {
			t.Fatalf("waiting for %v with a partial command sent after it: %v", want, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("reply %v, want %v", got, want)
		}
	}
	if _, err := io.WriteString(c.conn, "NG\r\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := readReply(c.rd); err != nil || got != "PONG" {
		t.Fatalf("the completed command answered %v, %v; want PONG", got, err)
	}
}

// pipeListener hands out the server ends of net.Pipe connections, so that
// a RESP server runs inside a synctest bubble, on its fake clock.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// dial connects a client to the server behind l.
func (l *pipeListener) dial() *respClient {
	client, server := net.Pipe()
	l.conns <- server
	return &respClient{conn: client, rd: bufio.NewReader(client)}
}

// slowKV is a fakeKV whose reads take d.
type slowKV struct {
	*fakeKV
	d time.Duration
}

func (k slowKV) Get(ctx context.Context, key []byte, r string) (kvResult, error) {
	time.Sleep(k.d)
	return k.fakeKV.Get(ctx, key, r)
}

// TestRESPIdleTimeout, on a fake clock: a connection on which no whole
// command arrives within limits.resp_idle_timeout of the previous answer
// (or of connecting) is closed and counted; one that keeps sending
// commands, each within the timeout, is kept however long it lives, and
// so is one whose command runs longer than the timeout; a command that
// trickles in, a byte at a time, slower than the timeout is cut off.
func TestRESPIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 10 * time.Second
		limits := testLimits
		limits.RESPIdleTimeout = idle
		s := newRESPServer(slowKV{newFakeKV(), 3 * idle}, func() respInfo { return respInfo{} }, newMetrics(metricSources{}), limits, testkit.Logger(t))
		ln := newPipeListener()
		served := make(chan error, 1)
		go func() { served <- s.serve(ln) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := s.shutdown(ctx); err != nil {
				t.Error(err)
			}
			if err := <-served; err != nil {
				t.Error(err)
			}
		})
		dropped := func() float64 {
			t.Helper()
			synctest.Wait()
			return counterValue(t, s.metrics, metricRESPDropped, "reason", respDroppedIdle)
		}

		busy := ln.dial()
		for range 5 { // 5 x 9 s: longer than the timeout, each gap within it
			if got := busy.do(t, "PING"); got != "PONG" {
				t.Fatalf("PING: %v", got)
			}
			time.Sleep(idle - time.Second)
		}
		if got, _ := busy.do(t, "CONFIG", "GET", "timeout").([]any); len(got) != 2 || string(got[1].([]byte)) != "10" {
			t.Fatalf("CONFIG GET timeout = %v, want [timeout 10]", got)
		}
		// A read that takes three timeouts: answered, and the connection kept.
		// (Not busy.do: its 10 s deadline is shorter than the read.)
		if err := busy.conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(busy.conn, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"); err != nil {
			t.Fatal(err)
		}
		if got, err := readReply(busy.rd); err != nil || got != (nilReply{}) {
			t.Fatalf("slow GET: %v, %v", got, err)
		}
		if n := dropped(); n != 0 {
			t.Fatalf("%v connections closed as idle, want none yet", n)
		}

		quiet, slow, fresh, trickle := ln.dial(), ln.dial(), ln.dial(), ln.dial()
		if got := quiet.do(t, "PING"); got != "PONG" {
			t.Fatalf("PING: %v", got)
		}
		// Half a command, then nothing.
		if _, err := io.WriteString(slow.conn, "*1\r\n$4\r\nPI"); err != nil {
			t.Fatal(err)
		}
		// One command, a byte every 2 s: it would take 28 s.
		trickled := make(chan error, 1)
		go func() {
			var err error
			for _, b := range []byte("*1\r\n$4\r\nPING\r\n") {
				if _, err = trickle.conn.Write([]byte{b}); err != nil {
					break
				}
				time.Sleep(2 * time.Second)
			}
			trickled <- err
		}()
		time.Sleep(idle - time.Second)
		if n := dropped(); n != 0 {
			t.Fatalf("%v connections closed as idle %v after their last command, want none yet", n, idle-time.Second)
		}
		if got := busy.do(t, "PING"); got != "PONG" {
			t.Fatalf("PING on the busy connection: %v", got)
		}
		time.Sleep(2 * time.Second)
		if n := dropped(); n != 4 {
			t.Errorf("%s{reason=%s} = %v, want 4", metricRESPDropped, respDroppedIdle, n)
		}
		for name, c := range map[string]*respClient{"quiet": quiet, "slow": slow, "fresh": fresh, "trickle": trickle} {
			if _, err := c.rd.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("%s connection not closed after %v: %v", name, idle+time.Second, err)
			}
		}
		if err := <-trickled; err == nil {
			t.Error("the whole trickled command was taken, over more than the timeout")
		}
		if got := busy.do(t, "PING"); got != "PONG" {
			t.Fatalf("PING on the busy connection: %v", got)
		}
	})
}

// TestFitMaxClients: the RESP cap is lowered to what the open-file limit
// leaves for clients, never raised, and 0 (no cap) or an unknown limit
// leave it as configured.
func TestFitMaxClients(t *testing.T) {
	for _, tc := range []struct {
		configured  int
		limit       uint64
		known       bool
		want        int
		wantReduced bool
	}{
		{10000, 1 << 20, true, 10000, false},
		{10000, 1024, true, 1024 - respReservedFiles, true},
		{500, 1024, true, 500, false},
		{10000, 100, true, 1, true},
		{0, 1024, true, 0, false},
		{10000, 1024, false, 10000, false},
		{10000, 1<<63 - 1, true, 10000, false},  // RLIM_INFINITY as an int64
		{10000, ^uint64(0), true, 10000, false}, // RLIM_INFINITY as a uint64
		{1, 10, true, 1, false},
		{10000, respReservedFiles + 1, true, 1, true},
	} {
		got, reduced := fitMaxClients(tc.configured, tc.limit, tc.known)
		if got != tc.want || reduced != tc.wantReduced {
			t.Errorf("fitMaxClients(%d, %d, %v) = %d, %v; want %d, %v", tc.configured, tc.limit, tc.known, got, reduced, tc.want, tc.wantReduced)
		}
	}
}

// TestRESPRefusalsBounded: past respMaxRefusing refusals under way, a
// connection over the cap is closed without an answer (no goroutine is
// started for it); below, it gets redis-server's answer.
func TestRESPRefusalsBounded(t *testing.T) {
	limits := testLimits
	limits.RESPMaxClients = 1
	s, addr := startRESPWith(t, newFakeKV(), limits)
	if got := dialRESP(t, addr).do(t, "PING"); got != "PONG" {
		t.Fatalf("PING: %v", got)
	}
	// As if that many were being answered: placeholders, never written to.
	s.mu.Lock()
	for range respMaxRefusing {
		held, _ := net.Pipe()
		s.refusals[held] = struct{}{}
	}
	s.mu.Unlock()
	silent := dialRESP(t, addr)
	if err := silent.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(silent.rd); err != nil || len(b) != 0 {
		t.Fatalf("refused past the bound: read %q, %v; want nothing and EOF", b, err)
	}
	s.mu.Lock()
	clear(s.refusals)
	s.mu.Unlock()
	answered := dialRESP(t, addr)
	if err := answered.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := readReply(answered.rd); err != nil || got != respError(respMaxClientsText) {
		t.Fatalf("refused below the bound: %v, %v; want %q", got, err, respMaxClientsText)
	}
	if n := counterValue(t, s.metrics, metricRESPDropped, "reason", respDroppedMaxClients); n != 2 {
		t.Fatalf("%s{reason=%s} = %v, want 2", metricRESPDropped, respDroppedMaxClients, n)
	}
}

// TestRESPMaxClientsTLS: over TLS, a connection past the cap completes
// its handshake and gets redis-server's answer too.
func TestRESPMaxClientsTLS(t *testing.T) {
	dir := makeCerts(t, "n1")
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limits := testLimits
	limits.RESPMaxClients = 1
	s := newRESPServer(newFakeKV(), func() respInfo { return respInfo{} }, newMetrics(metricSources{}), limits, testkit.Logger(t))
	serveRESPOn(t, s, tls.NewListener(raw, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}))
	dial := func() *respClient {
		t.Helper()
		c, err := tls.Dial("tcp", raw.Addr().String(), &tls.Config{RootCAs: caPool(t, dir), ServerName: "n1", MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return &respClient{conn: c, rd: bufio.NewReader(c)}
	}
	if got := dial().do(t, "PING"); got != "PONG" {
		t.Fatalf("PING over TLS: %v", got)
	}
	over := dial()
	if err := over.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := readReply(over.rd); err != nil || got != respError(respMaxClientsText) {
		t.Fatalf("past the cap over TLS: %v, %v; want %q", got, err, respMaxClientsText)
	}
}

// TestRESPShutdownClosesRefusals: closing the connections closes those
// being refused too, so that a refusal held up by a client that does not
// read (or, over TLS, does not finish its handshake) ends with shutdown
// rather than at respHandshakeTimeout. net.Pipe has no buffer: the refusal
// blocks in its write until the client reads.
func TestRESPShutdownClosesRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newRESPServer(newFakeKV(), func() respInfo { return respInfo{} }, newMetrics(metricSources{}), testLimits, testkit.Logger(t))
		srv, cli := net.Pipe()
		defer cli.Close()
		start := time.Now()
		s.refuse(&respConn{nc: srv, addr: "pipe"})
		synctest.Wait() // the refusal waits in its write
		s.closeConns()
		synctest.Wait() // and ends
		s.mu.Lock()
		left := len(s.refusals)
		s.mu.Unlock()
		if left != 0 {
			t.Fatalf("%d refusals still under way after closeConns", left)
		}
		if waited := time.Since(start); waited >= respHandshakeTimeout {
			t.Fatalf("the refusal ended after %v, at its own deadline, not with closeConns", waited)
		}
		if _, err := cli.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
			t.Fatalf("client read after closeConns: %v, want EOF", err)
		}
	})
}
