package chaos

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// runUntil runs w until it recorded n operations or the deadline passed.
func runUntil(t *testing.T, w *Workload, n int64, deadline time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for w.Counts().Ops < n {
		select {
		case <-done:
			t.Fatalf("workload stopped after %d of %d ops", w.Counts().Ops, n)
		case <-tick.C:
		}
	}
	cancel()
	<-done
}

func TestWorkloadCorrectStorePasses(t *testing.T) {
	for _, mode := range []string{ModeContext, ModeReadFirst} {
		t.Run(mode, func(t *testing.T) {
			fake := newFakeNode()
			addrs := []string{fake.start(t), fake.start(t)} // two nodes, one store
			var h History
			w, err := NewWorkload(WorkloadConfig{Nodes: func() []string { return addrs }, Keys: 3, Mode: mode, Seed: 7}, &h)
			if err != nil {
				t.Fatal(err)
			}
			runUntil(t, w, 1500, 20*time.Second)
			if err := w.Err(); err != nil {
				t.Fatal(err)
			}
			ops := h.Ops()
			c := w.Counts()
			if c.Ops != int64(len(ops)) || c.Failed != 0 || c.Unknown > 8 /* cut off at the end */ || c.Reads+c.Writes != c.Ops || c.Writes == 0 || c.Reads == 0 {
				t.Fatalf("counts %+v for %d recorded ops", c, len(ops))
			}
			finals := FinalReads(t.Context(), nil, addrs, w.Keys())
			r := Check(ops, finals, CheckConfig{StrictReads: true})
			if r.Failed() || r.StaleReadsWeak+r.StaleReadsUnderFaults > 0 || r.FinalErrors > 0 || r.Keys != len(w.Keys()) {
				var b strings.Builder
				r.WriteText(&b)
				t.Fatalf("a correct store fails the check:\n%s", b.String())
			}
			if r.SiblingsSeen == 0 {
				t.Errorf("8 clients on 3 shared keys never saw siblings in %d ops", r.Ops)
			}
			blind := 0
			for _, op := range ops {
				if op.Kind == Write && (op.Blind != (op.Client == -1) || (!op.Blind && len(op.Known) == 0)) {
					t.Fatalf("write %+v: only seeding writes without a context", op)
				}
				if op.Blind {
					blind++
				}
			}
			if blind != len(w.Keys()) {
				t.Errorf("%d blind writes, want one per key (%d)", blind, len(w.Keys()))
			}
		})
	}
}

func TestWorkloadLostWriteCaught(t *testing.T) {
	fake := newFakeNode()
	var h History
	w, err := NewWorkload(WorkloadConfig{Nodes: func() []string { return []string{fake.start(t)} }, Keys: 1, OwnKeys: 1, Clients: 4, Seed: 3}, &h)
	if err != nil {
		t.Fatal(err)
	}
	lossy := w.Keys()[0]
	// From its 30th write on, the shared key acknowledges writes it drops.
	fake.lose = func(key string, n int) bool { return key == lossy && n >= 30 }
	runUntil(t, w, 400, 20*time.Second)
	finals := FinalReads(t.Context(), nil, []string{fake.start(t)}, w.Keys())
	r := Check(h.Ops(), finals, CheckConfig{StrictReads: true})
	if !r.Failed() || r.Lost == 0 || r.StaleReads == 0 {
		t.Fatalf("dropped writes not caught: lost %d, stale reads %d", r.Lost, r.StaleReads)
	}
	for _, v := range r.Violations {
		if v.Key != lossy {
			t.Errorf("violation on a key that lost nothing: %+v", v)
		}
	}
}

// TestFinalReads: a node that refuses connections makes FinalReads move
// on to the next; a done ctx or no node leaves the key's Err set.
func TestFinalReads(t *testing.T) {
	fake := newFakeNode()
	good := fake.start(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	var h History
	w, err := NewWorkload(WorkloadConfig{Nodes: func() []string { return []string{good} }, Keys: 2, OwnKeys: 1, Clients: 1}, &h)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, w, 20, 10*time.Second)
	keys := append(w.Keys(), "never-written")
	got := FinalReads(t.Context(), nil, []string{deadAddr, good}, keys)
	for i, f := range got {
		if f.Key != keys[i] || f.Err != "" {
			t.Fatalf("final read %d = %+v, want key %q read", i, f, keys[i])
		}
		if (len(f.Values) == 0) != (f.Key == "never-written") {
			t.Errorf("final read %+v", f)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got = FinalReads(ctx, nil, []string{deadAddr}, keys[:1])
	if len(got) != 1 || got[0].Err == "" {
		t.Fatalf("final read with ctx done = %+v, want an error", got)
	}
	if got = FinalReads(t.Context(), nil, nil, keys[:1]); got[0].Err == "" {
		t.Fatalf("final read without nodes = %+v", got)
	}
}

func TestWorkloadOutcomes(t *testing.T) {
	w, err := NewWorkload(WorkloadConfig{Nodes: func() []string { return nil }}, &History{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ans  answer
		read bool
		want Outcome
	}{
		{"204", answer{status: 204}, false, OK},
		{"300", answer{status: 300}, false, OK},
		{"404 read", answer{status: 404}, true, OK},
		{"404 write", answer{status: 404}, false, Failed},
		{"409", answer{status: 409, body: []byte(`{"error":"too many siblings"}`)}, false, Failed},
		{"503 unavailable", answer{status: 503, body: []byte(`{"error":"x","got":0,"unavailable":true}`)}, false, Failed},
		{"503 quorum", answer{status: 503, body: []byte(`{"error":"x","need":2,"got":1}`)}, false, Unknown},
		{"503 not json", answer{status: 503, body: []byte(`not joined yet`)}, false, Unknown},
		{"500", answer{status: 500}, false, Unknown},
		{"transport", answer{err: errors.New("connection reset")}, false, Unknown},
	}
	for _, tc := range cases {
		if got, why := w.classify(tc.ans, tc.read); got != tc.want {
			t.Errorf("%s: %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
	if w.Err() != nil || w.Counts().BadRequests != 0 {
		t.Fatalf("no 400 yet: %v %+v", w.Err(), w.Counts())
	}
	if got, _ := w.classify(answer{status: 400, body: []byte(`{"error":"parameter w"}`)}, false); got != Failed {
		t.Errorf("400: %v", got)
	}
	if w.Err() == nil || !strings.Contains(w.Err().Error(), "parameter w") || w.Counts().BadRequests != 1 {
		t.Errorf("a 400 must show: %v %+v", w.Err(), w.Counts())
	}
}

func TestWorkloadTimeoutIsUnknown(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices the client went away only once the body
		// was read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first: no handler outlives the test
	addr := strings.TrimPrefix(srv.URL, "http://")
	var h History
	w, err := NewWorkload(WorkloadConfig{Nodes: func() []string { return []string{addr} }, Clients: 1, Keys: 1, OwnKeys: 1,
		Timeout: 50 * time.Millisecond}, &h)
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{id: 0, tag: "c0", rng: rand.New(rand.NewPCG(1, 1)),
		state: map[string]*keyState{w.Keys()[0]: {ctx: "kZKmazNqOXgyCA", known: []string{"x"}}}}
	if got := w.write(t.Context(), cl, w.Keys()[0], false); got != Unknown {
		t.Fatalf("timed out write: %v", got)
	}
	op := h.Ops()[0]
	if op.Outcome != Unknown || op.Err == "" || op.End.Sub(op.Start) < 50*time.Millisecond || len(op.Known) != 1 {
		t.Fatalf("recorded %+v", op)
	}
}

func TestNewWorkloadChecks(t *testing.T) {
	nodes := func() []string { return nil }
	bad := map[string]WorkloadConfig{
		"no nodes":      {},
		"clients":       {Nodes: nodes, Clients: -1},
		"too many keys": {Nodes: nodes, Keys: maxKeys + 1},
		"r":             {Nodes: nodes, R: "most"},
		"w":             {Nodes: nodes, W: "0"},
		"mode":          {Nodes: nodes, Mode: "blind"},
		"ratio":         {Nodes: nodes, ReadRatio: 1},
		"timeout":       {Nodes: nodes, Timeout: -time.Second},
		"prefix":        {Nodes: nodes, Prefix: strings.Repeat("p", maxKeyBytes)},
	}
	for name, cfg := range bad {
		if _, err := NewWorkload(cfg, &History{}); err == nil {
			t.Errorf("%s: NewWorkload accepted %+v", name, cfg)
		}
	}
	if _, err := NewWorkload(WorkloadConfig{Nodes: nodes}, nil); err == nil {
		t.Error("NewWorkload accepted a nil History")
	}
	w, err := NewWorkload(WorkloadConfig{Nodes: nodes, R: " ALL ", W: "2"}, &History{})
	if err != nil {
		t.Fatal(err)
	}
	if w.cfg.R != "all" || w.cfg.W != "2" || w.cfg.Clients != 8 || len(w.Keys()) != 20+8*4 || w.cfg.Mode != ModeContext {
		t.Errorf("defaults: %+v, %d keys", w.cfg, len(w.Keys()))
	}
	if !strings.HasPrefix(w.Keys()[0], "chaos-") {
		t.Errorf("default prefix: %q", w.Keys()[0])
	}
}
