package gossip

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testLogWriter sends log lines to t.Log, so they show only when a test
// fails. memberlist goroutines may log after a node's test has ended; once
// closed, lines are dropped instead of tripping t.Log's misuse panic.
type testLogWriter struct {
	mu     sync.Mutex // guards t and closed
	t      testing.TB
	closed bool
	lines  []string // every line, for tests that look for a message
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	line := string(bytes.TrimRight(p, "\n"))
	w.lines = append(w.lines, line)
	if !w.closed {
		w.t.Log(line)
	}
	return len(p), nil
}

// contains reports whether some logged line contains all of parts.
func (w *testLogWriter) contains(parts ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// newTestLogger returns a logger writing to t.Log at level, and the writer.
// Register it before anything that logs, so its cleanup runs last.
func newTestLogger(t testing.TB, level slog.Level) (*slog.Logger, *testLogWriter) {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), w
}

// lingerInBubble makes a synctest bubble test wait, in fake time, after all
// its other cleanups (register it first): memberlist's Shutdown does not
// wait for its in-flight probes and streams, whose timers must still fire
// for those goroutines to end, and a bubble only moves its clock while its
// main goroutine is alive.
func lingerInBubble(t *testing.T) {
	t.Cleanup(func() { time.Sleep(time.Minute) })
}
