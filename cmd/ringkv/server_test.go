package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
)

// signalWriter closes ready when a written chunk contains the ready line.
type signalWriter struct {
	once  sync.Once
	ready chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), readyPrefix) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

// TestServerLogNamesNodeOnce: every log line of "ringkv server" carries
// node=<name> exactly once: the node and its packages add it, the command
// does not add it again, and the lines the command logs itself name it.
func TestServerLogNamesNodeOnce(t *testing.T) {
	t.Setenv("RINGKV_LOG_LEVEL", "debug")
	t.Setenv("RINGKV_NO_SUCH_KEY", "1") // makes the command itself log a warning
	out := &signalWriter{ready: make(chan struct{})}
	errOut := &testkit.Buffer{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"server", "--name", "solo", "--data-dir", t.TempDir(), "--bootstrap",
			"--http", "127.0.0.1:0", "--resp", "127.0.0.1:0", "--rpc", "127.0.0.1:0", "--gossip", "127.0.0.1:0"},
			strings.NewReader(""), out, errOut)
	}()
	select {
	case <-out.ready:
	case code := <-done:
		t.Fatalf("server exited %d before its ready line:\n%s", code, errOut.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("server exited %d:\n%s", code, errOut.String())
		}
	case <-time.After(time.Minute): // a hang guard, not part of the outcome
		t.Fatal("server did not stop within a minute of its context ending")
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("expected several log lines, got:\n%s", errOut.String())
	}
	own := false
	for _, l := range lines {
		if n := strings.Count(" "+l, " node=solo"); n != 1 {
			t.Errorf("node= %d times: %s", n, l)
		}
		own = own || strings.Contains(l, "RINGKV_NO_SUCH_KEY")
	}
	if !own {
		t.Errorf("no warning about RINGKV_NO_SUCH_KEY in:\n%s", errOut.String())
	}
}
