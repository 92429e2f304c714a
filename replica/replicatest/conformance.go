package replicatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// TransportFactory builds one transport per node of handlers, wired so
// that a call to node X is served by handlers[X], and registers its own
// cleanup with t.Cleanup.
type TransportFactory func(t *testing.T, handlers map[string]replica.Handler) map[string]replica.Transport

// TestTransport is the conformance suite for replica.Transport. Every
// implementation (the TCP transport and the in-memory Network) runs it, so
// the fake cannot drift from the real thing. Cases run as ordinary
// subtests, on the real clock: use it for a transport that does real I/O.
// Its deadlines are then generous (a second) wherever a call must reach
// the other side before its deadline passes, so a loaded machine cannot
// decide the outcome.
func TestTransport(t *testing.T, newTransports TransportFactory) {
	suite{f: newTransports, timeout: time.Second}.run(t)
}

// TestTransportInBubble runs the TestTransport suite with every case
// inside a testing/synctest bubble, for transports that do no real I/O
// (the in-memory Network): timers and deadlines are fake time, which moves
// only while every goroutine of the case is blocked, so a short deadline
// cannot be missed because the machine is busy.
func TestTransportInBubble(t *testing.T, newTransports TransportFactory) {
	suite{f: newTransports, bubble: true, timeout: 50 * time.Millisecond}.run(t)
}

// suite is one way of running the conformance cases.
type suite struct {
	f       TransportFactory
	bubble  bool          // run each case in a synctest bubble
	timeout time.Duration // the deadline of a call whose handler never answers
}

func (s suite) run(t *testing.T) {
	s.test(t, "RoundTrip", s.testRoundTrip)
	t.Run("Errors", s.testErrors)
	s.test(t, "Deadline", s.testDeadline)
	s.test(t, "Timeout", s.testTimeout)
	s.test(t, "Canceled", s.testCanceled)
	s.test(t, "Concurrent", s.testConcurrent)
	s.test(t, "UnknownPeer", s.testUnknownPeer)
	s.test(t, "Isolation", s.testIsolation)
	s.test(t, "LargeValue", s.testLargeValue)
}

// test runs fn as subtest name, inside a bubble when the suite says so.
func (s suite) test(t *testing.T, name string, fn func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		if s.bubble {
			synctest.Test(t, fn)
			return
		}
		fn(t)
	})
}

// sampleSet is a canonical two-sibling set.
func sampleSet() vclock.Siblings {
	_, s := vclock.Mint(nil, "inc-a", vclock.Write{Value: []byte("v1"), WallTime: 1})
	_, s2 := vclock.Mint(nil, "inc-b", vclock.Write{Value: []byte("v2"), WallTime: 2})
	return vclock.Merge(s, s2)
}

type seen struct {
	from string
	req  replica.Request
}

// recorder is a handler that records each call and answers with a
// Response built from it.
func recorder(ch chan<- seen) replica.Handler {
	return replica.HandlerFunc(func(ctx context.Context, from string, req replica.Request) (replica.Response, error) {
		ch <- seen{from, req}
		return replica.Response{Siblings: req.Siblings, Context: req.Siblings.Context(), Replies: len(req.Key)}, nil
	})
}

func (s suite) testRoundTrip(t *testing.T) {
	ch := make(chan seen, 8)
	tr := s.f(t, map[string]replica.Handler{"a": recorder(make(chan seen, 8)), "b": recorder(ch)})
	set := sampleSet()
	reqs := []replica.Request{
		{Kind: replica.KindPing},
		{Kind: replica.KindRead, Key: []byte("k1")},
		{Kind: replica.KindStore, Key: []byte("k2"), Siblings: set},
		{Kind: replica.KindStore, Key: []byte("k3"), Siblings: set, HintFor: "c"},
		{Kind: replica.KindForward, Key: []byte("k4"), Write: &replica.ForwardWrite{
			Value: []byte("x"), Context: set.Context(), HasContext: true, W: replica.QuorumAll}},
		{Kind: replica.KindForward, Key: []byte("k5"), Write: &replica.ForwardWrite{Delete: true, W: 2}},
	}
	for _, req := range reqs {
		resp, err := tr["a"].Call(t.Context(), "b", req)
		if err != nil {
			t.Fatalf("%v: %v", req.Kind, err)
		}
		got := <-ch
		if got.from != "a" {
			t.Errorf("%v: handler saw from=%q, want a", req.Kind, got.from)
		}
		if d := cmp.Diff(req, got.req); d != "" {
			t.Errorf("%v: request changed in transit (-sent +got):\n%s", req.Kind, d)
		}
		want := replica.Response{Siblings: req.Siblings, Context: req.Siblings.Context(), Replies: len(req.Key)}
		if d := cmp.Diff(want, resp); d != "" {
			t.Errorf("%v: response changed in transit (-sent +got):\n%s", req.Kind, d)
		}
	}
}

func (s suite) testErrors(t *testing.T) {
	qe := &replica.QuorumError{Op: "put", Need: 2, Got: 1, Failures: map[string]error{
		"c": fmt.Errorf("%w: c is down", replica.ErrReplicaDown)}}
	cases := []struct {
		name   string
		err    error
		is     error
		remote bool
	}{
		{"quorum", qe, replica.ErrQuorum, false},
		{"bad quorum", fmt.Errorf("%w: 7 is outside 1..3", replica.ErrBadQuorum), replica.ErrBadQuorum, true},
		{"bad request", fmt.Errorf("%w: empty key", replica.ErrBadRequest), replica.ErrBadRequest, true},
		{"unknown kind", fmt.Errorf("%w: kind(99)", replica.ErrUnknownKind), replica.ErrUnknownKind, true},
		{"plain", errors.New("disk on fire"), replica.ErrInternal, true},
	}
	for _, tc := range cases {
		s.test(t, tc.name, func(t *testing.T) {
			h := replica.HandlerFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
				return replica.Response{Replies: 9}, tc.err
			})
			tr := s.f(t, map[string]replica.Handler{"a": h, "b": h})
			_, err := tr["a"].Call(t.Context(), "b", replica.Request{Kind: replica.KindPing})
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), strings.TrimPrefix(tc.err.Error(), "replica: ")) {
				t.Errorf("err text %q lost the cause %q", err, tc.err)
			}
			var re *replica.RemoteError
			if tc.remote && (!errors.As(err, &re) || re.Node != "b") {
				t.Errorf("err = %#v, want a RemoteError from b", err)
			}
			var gotQE *replica.QuorumError
			if !tc.remote {
				if !errors.As(err, &gotQE) {
					t.Fatalf("err = %T, want *QuorumError", err)
				}
				if gotQE.Op != "put" || gotQE.Need != 2 || gotQE.Got != 1 || gotQE.Failures["c"] == nil ||
					!strings.Contains(gotQE.Failures["c"].Error(), "c is down") {
					t.Errorf("quorum error details lost: %+v", gotQE)
				}
			}
		})
	}
}

func (s suite) testDeadline(t *testing.T) {
	type dl struct {
		d  time.Time
		ok bool
	}
	ch := make(chan dl, 2)
	h := replica.HandlerFunc(func(ctx context.Context, _ string, _ replica.Request) (replica.Response, error) {
		d, ok := ctx.Deadline()
		ch <- dl{d, ok}
		return replica.Response{}, nil
	})
	tr := s.f(t, map[string]replica.Handler{"a": h, "b": h})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	sent := time.Now()
	if _, err := tr["a"].Call(ctx, "b", replica.Request{Kind: replica.KindPing}); err != nil {
		t.Fatal(err)
	}
	got := <-ch
	transit := time.Since(sent)
	// A transport may pass the deadline as time left (the TCP frame's
	// budget), which the server adds to its own now: the handler's
	// deadline is then late by at most the time the call took, however
	// long that was.
	if !got.ok || got.d.Before(want) || got.d.After(want.Add(transit)) {
		t.Errorf("handler deadline = %v (set %v), want %v plus at most the call's %v", got.d, got.ok, want, transit)
	}
	if _, err := tr["a"].Call(context.WithoutCancel(t.Context()), "b", replica.Request{Kind: replica.KindPing}); err != nil {
		t.Fatal(err)
	}
	if got := <-ch; got.ok {
		t.Errorf("handler has deadline %v, the caller set none", got.d)
	}
}

func (s suite) testTimeout(t *testing.T) {
	handlerDone := make(chan error, 1)
	h := replica.HandlerFunc(func(ctx context.Context, _ string, req replica.Request) (replica.Response, error) {
		if req.Kind == replica.KindPing {
			return replica.Response{}, nil
		}
		select {
		case <-ctx.Done():
			handlerDone <- ctx.Err()
		case <-time.After(time.Minute):
			handlerDone <- errors.New("handler ctx never ended")
		}
		return replica.Response{}, ctx.Err()
	})
	tr := s.f(t, map[string]replica.Handler{"a": h, "b": h})
	// Set up the connection first, so the timed call has only its request
	// to send before its deadline.
	if _, err := tr["a"].Call(t.Context(), "b", replica.Request{Kind: replica.KindPing}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), s.timeout)
	defer cancel()
	_, err := tr["a"].Call(ctx, "b", replica.Request{Kind: replica.KindRead, Key: []byte("k")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	select {
	case err := <-handlerDone:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("handler ctx ended with %v, want the caller's deadline", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("handler never ran: the request was not sent within the call's %v", s.timeout)
	}
	// The transport still works after an abandoned call.
	ok := replica.HandlerFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
		return replica.Response{Replies: 1}, nil
	})
	tr2 := s.f(t, map[string]replica.Handler{"a": ok, "b": ok})
	if resp, err := tr2["a"].Call(t.Context(), "b", replica.Request{Kind: replica.KindPing}); err != nil || resp.Replies != 1 {
		t.Errorf("call after timeout: %+v, %v", resp, err)
	}
}

func (s suite) testCanceled(t *testing.T) {
	called := make(chan seen, 1)
	tr := s.f(t, map[string]replica.Handler{"a": recorder(called), "b": recorder(called)})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := tr["a"].Call(ctx, "b", replica.Request{Kind: replica.KindPing}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	select {
	case s := <-called:
		t.Errorf("handler ran for a call canceled before it started: %+v", s)
	default:
	}
}

func (s suite) testConcurrent(t *testing.T) {
	h := replica.HandlerFunc(func(ctx context.Context, _ string, req replica.Request) (replica.Response, error) {
		// Answer out of order: later keys sleep less.
		time.Sleep(time.Duration(len(req.Key)%5) * time.Millisecond)
		return replica.Response{Replies: len(req.Key), Siblings: req.Siblings}, nil
	})
	tr := s.f(t, map[string]replica.Handler{"a": h, "b": h, "c": h})
	const calls = 200
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := bytes.Repeat([]byte("k"), 1+i%37)
			_, set := vclock.Mint(nil, fmt.Sprintf("inc-%d", i), vclock.Write{Value: []byte(fmt.Sprint(i))})
			from, to := "a", "b"
			if i%3 == 0 {
				from, to = "c", "a"
			}
			resp, err := tr[from].Call(t.Context(), to, replica.Request{Kind: replica.KindStore, Key: key, Siblings: set})
			switch {
			case err != nil:
				errs <- err
			case resp.Replies != len(key) || !resp.Siblings.Equal(set):
				errs <- fmt.Errorf("call %d got the answer to another call: %+v", i, resp)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func (s suite) testUnknownPeer(t *testing.T) {
	ch := make(chan seen, 1)
	tr := s.f(t, map[string]replica.Handler{"a": recorder(ch)})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := tr["a"].Call(ctx, "nobody", replica.Request{Kind: replica.KindPing})
	if !errors.Is(err, replica.ErrUnknownPeer) {
		t.Fatalf("err = %v, want ErrUnknownPeer", err)
	}
}

func (s suite) testIsolation(t *testing.T) {
	key := []byte("shared")
	got := make(chan []byte, 1)
	h := replica.HandlerFunc(func(_ context.Context, _ string, req replica.Request) (replica.Response, error) {
		req.Key[0] = 'X' // the handler owns its request
		got <- req.Key
		return replica.Response{Siblings: sampleSet()}, nil
	})
	tr := s.f(t, map[string]replica.Handler{"a": h, "b": h})
	resp, err := tr["a"].Call(t.Context(), "b", replica.Request{Kind: replica.KindRead, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	<-got
	if string(key) != "shared" {
		t.Errorf("handler's write reached the caller's buffer: %q", key)
	}
	if !resp.Siblings.Equal(sampleSet()) {
		t.Errorf("response = %+v", resp)
	}
}

func (s suite) testLargeValue(t *testing.T) {
	ch := make(chan seen, 1)
	tr := s.f(t, map[string]replica.Handler{"a": recorder(ch), "b": recorder(ch)})
	big := bytes.Repeat([]byte{0xab}, 1<<20)
	_, set := vclock.Mint(nil, "inc-a", vclock.Write{Value: big})
	resp, err := tr["a"].Call(t.Context(), "b", replica.Request{Kind: replica.KindStore, Key: []byte("big"), Siblings: set})
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	if !resp.Siblings.Equal(set) {
		t.Errorf("1 MiB value changed in transit")
	}
}
