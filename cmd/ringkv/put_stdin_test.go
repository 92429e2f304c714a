package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// zeros is an endless reader of zero bytes, so the test need not hold the
// oversized input in memory.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestPutStdinTooLargeIsRefused: "put KEY -" reads stdin with a cap. A
// longer input must be refused, not cut at the cap and stored as if it were
// the whole value (a node whose limits.max_value_bytes is above the cap
// would accept the truncated value).
func TestPutStdinTooLargeIsRefused(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	node := srv.Listener.Addr().String()

	var stdout, stderr bytes.Buffer
	in := io.LimitReader(zeros{}, maxStdinBytes+1)
	code := run(context.Background(), []string{"put", "--node", node, "k", "-"}, in, &stdout, &stderr)
	if code == 0 {
		t.Fatalf("put of %d bytes from stdin succeeded: %q", maxStdinBytes+1, stdout.String())
	}
	if !strings.Contains(stderr.String(), "stdin") {
		t.Fatalf("error %q should say the stdin value is too large", stderr.String())
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests sent for a refused value", n)
	}

	// Exactly the cap still goes through.
	stdout.Reset()
	stderr.Reset()
	in = io.LimitReader(zeros{}, maxStdinBytes)
	if code := run(context.Background(), []string{"put", "--node", node, "k", "-"}, in, &stdout, &stderr); code != 0 {
		t.Fatalf("put of exactly %d bytes: exit %d, %s", maxStdinBytes, code, stderr.String())
	}
}
