package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
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
	if n := counterValue(t, s.metrics, metricRESPClosed, "reason", respClosedMaxClients); n != 1 {
		t.Fatalf("%s{reason=%s} = %v, want 1", metricRESPClosed, respClosedMaxClients, n)
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

	// One leaves; the server notices (EOF) and serves a new one.
	if err := a.conn.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the closed connection to be untracked", func() bool { return s.connCount() == 1 })
	if got := dialRESP(t, addr).do(t, "PING"); got != "PONG" {
		t.Fatalf("PING on a connection made after one left: %v", got)
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline: the server's reaction to a closed socket has no event a test
// can wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
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

// TestRESPIdleTimeout, on a fake clock: a connection on which no whole
// command arrives within limits.resp_idle_timeout of the previous answer
// (or of connecting) is closed and counted; one that keeps sending
// commands, each within the timeout, is kept however long it lives; and
// a command that trickles in slower than the timeout is cut off.
func TestRESPIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 10 * time.Second
		limits := testLimits
		limits.RESPIdleTimeout = idle
		s := newRESPServer(newFakeKV(), func() respInfo { return respInfo{} }, newMetrics(metricSources{}), limits, testkit.Logger(t))
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

		busy := ln.dial()
		for range 5 { // 5 x 9 s: longer than the timeout, each gap within it
			if got := busy.do(t, "PING"); got != "PONG" {
				t.Fatalf("PING: %v", got)
			}
			time.Sleep(idle - time.Second)
		}
		quiet, slow, fresh := ln.dial(), ln.dial(), ln.dial()
		if got := quiet.do(t, "PING"); got != "PONG" {
			t.Fatalf("PING: %v", got)
		}
		// Half a command, then nothing.
		if _, err := io.WriteString(slow.conn, "*1\r\n$4\r\nPI"); err != nil {
			t.Fatal(err)
		}
		if got := busy.do(t, "PING"); got != "PONG" {
			t.Fatalf("PING on the busy connection: %v", got)
		}
		time.Sleep(idle - time.Second)
		synctest.Wait()
		if n := counterValue(t, s.metrics, metricRESPClosed, "reason", respClosedIdle); n != 0 {
			t.Fatalf("%v connections closed as idle %v after their last command, want none yet", n, idle-time.Second)
		}
		if got := busy.do(t, "PING"); got != "PONG" {
			t.Fatalf("PING on the busy connection: %v", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		for name, c := range map[string]*respClient{"quiet": quiet, "slow": slow, "fresh": fresh} {
			if _, err := c.rd.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("%s connection not closed after %v idle: %v", name, idle+time.Second, err)
			}
		}
		if got := busy.do(t, "PING"); got != "PONG" {
			t.Fatalf("PING on the busy connection: %v", got)
		}
		if n := counterValue(t, s.metrics, metricRESPClosed, "reason", respClosedIdle); n != 3 {
			t.Errorf("%s{reason=%s} = %v, want 3", metricRESPClosed, respClosedIdle, n)
		}
	})
}
