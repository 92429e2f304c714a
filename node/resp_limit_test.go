package node

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestRESPOversizedCommandClosesConnection: redcon buffers a command whole
// before the handler sees it, without bound. A client that declares a huge
// bulk argument and keeps sending must be cut off once it passed what any
// valid command needs, not buffered until the node runs out of memory.
func TestRESPOversizedCommandClosesConnection(t *testing.T) {
	_, addr, kv := startRESP(t)
	c := dialRESP(t, addr)
	const declared = 64 << 20
	const sent = 8 << 20 // far above the cap for testLimits, far below declared
	writeErr := make(chan error, 1)
	go func() {
		head := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", declared)
		_, err := c.conn.Write([]byte(head))
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for n := 0; err == nil && n < sent; n += len(chunk) {
			_, err = c.conn.Write(chunk)
		}
		writeErr <- err
	}()
	// The server answers with an error and closes; a reset is fine too
	// (it closed with our bytes unread). What must not happen is silence:
	// the server still reading and buffering when the deadline passes.
	if err := c.conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 512)
	var err error
	for err == nil {
		var n int
		n, err = c.conn.Read(buf)
		got = append(got, buf[:n]...)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("server still reading an oversized command (%d bytes sent) instead of closing the connection", sent)
	}
	if len(got) > 0 && !strings.HasPrefix(string(got), "-ERR Protocol error: command is larger than") {
		t.Fatalf("reply %q, want an error naming the limit", got)
	}
	if werr := <-writeErr; werr == nil {
		t.Fatalf("all %d bytes were accepted", sent)
	}
	if kv.callCount() != 0 {
		t.Fatalf("%d calls reached the backend", kv.callCount())
	}

	// Valid traffic is unaffected: a maximal SET, and many pipelined
	// commands whose total is far above the per-command cap.
	c2 := dialRESP(t, addr)
	if got := c2.do(t, "SET", "k", strings.Repeat("v", testLimits.MaxValueBytes)); got != "OK" {
		t.Fatalf("maximal SET = %v", got)
	}
	var pipe bytes.Buffer
	const cmds = 2000
	for range cmds {
		pipe.WriteString("*2\r\n$4\r\nECHO\r\n$64\r\n" + strings.Repeat("e", 64) + "\r\n")
	}
	if pipe.Len() <= respCommandCap(testLimits) {
		t.Fatalf("pipeline of %d bytes does not exceed the cap %d", pipe.Len(), respCommandCap(testLimits))
	}
	go func() { _, _ = c2.conn.Write(pipe.Bytes()) }()
	for i := range cmds {
		if _, err := readReply(c2.rd); err != nil {
			t.Fatalf("pipelined reply %d: %v", i, err)
		}
	}
}

// deadlineConn records the write deadlines set on it.
type deadlineConn struct {
	scriptConn
	deadlines []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

// TestRESPFlushDeadline checks that every flush runs under a write
// deadline at least half of respWriteTimeout away, and that flushes in
// quick succession do not move it each time. The bubble's clock moves only
// when the test sleeps.
func TestRESPFlushDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nc := &deadlineConn{}
		c := &respConn{nc: nc}
		flush := func(step string) {
			t.Helper()
			c.WriteString("OK")
			if err := c.flush(); err != nil {
				t.Fatal(err)
			}
			if len(nc.deadlines) == 0 {
				t.Fatalf("%s: no write deadline set", step)
			}
			if left := time.Until(nc.deadlines[len(nc.deadlines)-1]); left < respWriteTimeout/2 {
				t.Fatalf("%s: the flush had %v, want at least %v", step, left, respWriteTimeout/2)
			}
		}
		for range 3 {
			flush("quick flushes")
		}
		if len(nc.deadlines) != 1 {
			t.Fatalf("%d deadlines set for 3 flushes at one instant, want 1", len(nc.deadlines))
		}
		time.Sleep(respWriteTimeout / 4)
		flush("a quarter of the timeout later")
		if len(nc.deadlines) != 1 {
			t.Fatalf("deadline moved with %v of it left", respWriteTimeout*3/4)
		}
		time.Sleep(respWriteTimeout / 2)
		flush("three quarters of the timeout later")
		if len(nc.deadlines) != 2 {
			t.Fatalf("%d deadlines set, want 2 once less than half was left", len(nc.deadlines))
		}
		if got := nc.out.String(); got != strings.Repeat("+OK\r\n", 5) {
			t.Errorf("written %q", got)
		}
	})
}
