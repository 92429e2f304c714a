// Package testkit holds the helpers that tests of several packages share:
// a logger that writes to the test's output, a buffer safe for concurrent
// writers, and Eventually, the one way tests wait for a condition. Only
// tests import it.
package testkit

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Logger returns a debug-level text logger that writes to t.Output(), so
// that logs show only when t fails (or with -v). Lines written after t
// ended (a goroutine that outlives its test by a moment, as memberlist's
// probes do) are dropped instead of panicking.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	w    io.Writer
	mu   sync.Mutex // guards done, and orders writes before the test's end
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write(p)
}

// Buffer is a bytes.Buffer safe for concurrent use: a log sink or a
// child process's output that the test reads while others write.
type Buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns what was written so far as lines, without the final
// newline.
func (s *Buffer) Lines() []string {
	return strings.Split(strings.TrimSpace(s.String()), "\n")
}
