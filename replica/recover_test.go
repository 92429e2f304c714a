package replica

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
)

// logRecorder is a slog.Handler that keeps every record, for tests that
// check what was logged.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// errors returns the error-level records with message msg, each as its
// attributes by key.
func (r *logRecorder) errors(msg string) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.recs {
		if rec.Level != slog.LevelError || rec.Message != msg {
			continue
		}
		attrs := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

// TestTCPHandlerPanicRecovered: a handler that panics on one call fails
// only that call; the server goes on serving the connection, logs the
// panic at error level with the peer and stack, and counts it.
func TestTCPHandlerPanicRecovered(t *testing.T) {
	rec := &logRecorder{}
	h := HandlerFunc(func(_ context.Context, _ string, req Request) (Response, error) {
		if string(req.Key) == "boom" {
			panic("injected bug")
		}
		return Response{Replies: 1}, nil
	})
	srv, addr := serveOn(t, "srv", "", h, func(c *TCPConfig) { c.Logger = slog.New(rec) })
	var a atomic.Pointer[string]
	a.Store(&addr)
	cli := client(t, &a, nil)

	_, err := cli.Call(t.Context(), "srv", Request{Kind: KindRead, Key: []byte("boom")})
	if !errors.Is(err, ErrInternal) && !errors.Is(err, ErrConnLost) {
		t.Fatalf("call whose handler panicked: err = %v, want ErrInternal or ErrConnLost", err)
	}
	resp, err := cli.Call(t.Context(), "srv", Request{Kind: KindRead, Key: []byte("k")})
	if err != nil || resp.Replies != 1 {
		t.Fatalf("next call: %+v, %v", resp, err)
	}
	if got := srv.Stats().RecoveredPanics; got != 1 {
		t.Fatalf("RecoveredPanics = %d, want 1", got)
	}
	logs := rec.errors("panic recovered")
	if len(logs) != 1 {
		t.Fatalf("%d error lines \"panic recovered\", want 1", len(logs))
	}
	if l := logs[0]; l["peer"] != "cli" || l["listener"] != "rpc" || l["panic"] != "injected bug" || l["stack"] == "" {
		t.Fatalf("panic log attributes: %v", l)
	}
}

// TestRecoverPanic: recoverPanic, deferred, stops a panic, logs it at
// error level with what and the stack, counts it and runs the cleanup;
// without a panic it does nothing.
func TestRecoverPanic(t *testing.T) {
	rec := &logRecorder{}
	var n atomic.Uint64
	cleaned := 0
	func() {
		defer recoverPanic(slog.New(rec), &n, "rpc response reader", func() { cleaned++ }, "peer", "p1")
	}()
	if n.Load() != 0 || cleaned != 0 || len(rec.errors("panic recovered")) != 0 {
		t.Fatalf("no panic: count %d, cleanups %d, logs %d", n.Load(), cleaned, len(rec.errors("panic recovered")))
	}
	func() {
		defer recoverPanic(slog.New(rec), &n, "rpc response reader", func() { cleaned++ }, "peer", "p1")
		panic(errors.New("injected bug"))
	}()
	if n.Load() != 1 || cleaned != 1 {
		t.Fatalf("after a panic: count %d, cleanups %d", n.Load(), cleaned)
	}
	logs := rec.errors("panic recovered")
	if len(logs) != 1 || logs[0]["in"] != "rpc response reader" || logs[0]["peer"] != "p1" || logs[0]["panic"] != "injected bug" || logs[0]["stack"] == "" {
		t.Fatalf("logs: %v", logs)
	}
}
