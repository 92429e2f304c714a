package replica

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// goResult is one done call of TCPTransport.Go.
type goResult struct {
	resp Response
	err  error
}

// goCall starts a Go call and returns the channel its done writes to,
// failing the test if done is called more than once.
func goCall(t *testing.T, tr *TCPTransport, ctx context.Context, req Request) <-chan goResult {
	t.Helper()
	out := make(chan goResult, 2)
	var calls atomic.Int32
	tr.Go(ctx, "srv", req, func(resp Response, err error) {
		if calls.Add(1) > 1 {
			t.Errorf("done called twice (again with %v)", err)
		}
		out <- goResult{resp, err}
	})
	return out
}

func TestTCPGo(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := HandlerFunc(func(ctx context.Context, _ string, req Request) (Response, error) {
		if string(req.Key) == "block" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return Response{Replies: 7}, nil
	})
	srv, addr := serveOn(t, "srv", "", h, nil)
	var a atomic.Pointer[string]
	a.Store(&addr)
	cli := client(t, &a, nil)

	r := <-goCall(t, cli, t.Context(), Request{Kind: KindRead, Key: []byte("k")})
	if r.err != nil || r.resp.Replies != 7 {
		t.Fatalf("answered call: %+v, %v", r.resp, r.err)
	}

	// A canceled ctx ends the call with the ctx error; the answer that
	// never comes is not waited for.
	ctx, cancel := context.WithCancel(t.Context())
	ch := goCall(t, cli, ctx, Request{Kind: KindRead, Key: []byte("block")})
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("canceled call: %v", r.err)
	}

	// An already ended ctx fails at once, nothing sent.
	if r := <-goCall(t, cli, ctx, Request{Kind: KindPing}); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("call with an ended ctx: %v", r.err)
	}

	// A lost connection fails the calls in flight with ErrConnLost.
	ch = goCall(t, cli, t.Context(), Request{Kind: KindRead, Key: []byte("block")})
	_ = srv.Close()
	if r := <-ch; !errors.Is(r.err, ErrConnLost) && !errors.Is(r.err, ErrUnreachable) {
		t.Fatalf("call in flight when the server closed: %v", r.err)
	}
}
