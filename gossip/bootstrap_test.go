package gossip

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/ring"
)

// planRecorder keeps what OnPlanChange reported, and signals each call.
type planRecorder struct {
	mu    sync.Mutex // guards plans
	plans []ring.Plan
	sig   chan struct{} // capacity 1: "a plan was reported"
}

func newPlanRecorder() *planRecorder { return &planRecorder{sig: make(chan struct{}, 1)} }

func (r *planRecorder) record(p ring.Plan) {
	r.mu.Lock()
	r.plans = append(r.plans, p)
	r.mu.Unlock()
	select {
	case r.sig <- struct{}{}:
	default:
	}
}

// all returns every plan reported so far.
func (r *planRecorder) all() []ring.Plan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.plans)
}

// last returns the last plan reported, and whether there was one.
func (r *planRecorder) last() (ring.Plan, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.plans) == 0 {
		return ring.Plan{}, false
	}
	return r.plans[len(r.plans)-1], true
}

// wait blocks until the last reported plan equals want, or fails the test
// after timeout. It wakes on each report, never polls.
func (r *planRecorder) wait(t testing.TB, what string, want ring.Plan, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if p, ok := r.last(); ok && p.Equal(want) {
			return
		}
		select {
		case <-r.sig:
		case <-deadline:
			p, _ := r.last()
			t.Fatalf("%s: OnPlanChange did not report %+v within %v; last %+v", what, want, timeout, p)
		}
	}
}

// soloOpts configures startSolo.
type soloOpts struct {
	bootstrap bool
	addr      string
}

// startSolo starts one node, without seeds and without Start, on an
// in-memory network, with the clock at testNow; it is shut down at the
// end of the test.
func startSolo(t *testing.T, mn *gossiptest.Network, name, dir string, o soloOpts) (*Gossip, *planRecorder) {
	t.Helper()
	tr, err := mn.NewTransport(o.addr)
	if err != nil {
		t.Fatal(err)
	}
	rec := newPlanRecorder()
	cfg := LocalConfig()
	cfg.Name, cfg.Dir, cfg.Transport, cfg.Bootstrap = name, dir, tr, o.bootstrap
	cfg.Now = func() time.Time { return testNow }
	cfg.Logger, _ = newTestLogger(t, -4)
	cfg.OnPlanChange = rec.record
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown() })
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return g, rec
}

// writeStateFile writes a state file body as given.
func writeStateFile(t *testing.T, dir string, body any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBootstrapPlan: the plan a node starts with (TRANSFER.md section 4),
// reported once by OnPlanChange at startup and persisted.
func TestBootstrapPlan(t *testing.T) {
	now := versionAt(testNow)
	// A data directory from before plans: a format-1 map with three ring
	// members, one node that left and one removed.
	oldMap := map[string]any{"format": 1, "node": "n1", "members": Map{
		"n1": {StatusJoined, 5, "127.0.0.1:21001", ""},
		"n2": {StatusJoined, 6, "127.0.0.1:21002", ""},
		"n3": {StatusLeaving, 7, "127.0.0.1:21003", ""},
		"n4": {StatusLeft, 8, "127.0.0.1:21004", ""},
		"n5": {StatusRemoved, 9, "127.0.0.1:21005", ""},
	}}
	known := ring.Plan{Epoch: 4, Version: now - 1, Members: []string{"n2", "n9"}}
	tests := []struct {
		name      string
		file      any // state file body; nil: no file
		bootstrap bool
		want      ring.Plan
	}{
		{"fresh with bootstrap: epoch 1 of itself", nil, true, ring.NewPlan([]string{"n1"}, now)},
		{"fresh without bootstrap: no plan", nil, false, ring.Plan{}},
		{"old map: its ring members at version 0", oldMap, false, ring.NewPlan([]string{"n1", "n2", "n3"}, 0)},
		{"old map with bootstrap: still its ring members", oldMap, true, ring.NewPlan([]string{"n1", "n2", "n3"}, 0)},
		{"persisted plan is kept", map[string]any{"format": 2, "node": "n1", "members": Map{}, "plan": known}, true, known},
		// Written by this build before it learnt a plan: its own row is
		// not the cluster's ring (a plan [n1] at version 0 would beat an
		// upgraded cluster's [a, b] at version 0), so it waits.
		{"map of this build without a plan waits", map[string]any{"format": 2, "node": "n1", "members": Map{
			"n1": {StatusJoined, 5, "127.0.0.1:21001", ""},
		}}, false, ring.Plan{}},
		{"with bootstrap, a map of only itself bootstraps", map[string]any{"format": 2, "node": "n1", "members": Map{
			"n1": {StatusJoined, 5, "127.0.0.1:21001", ""},
		}}, true, ring.NewPlan([]string{"n1"}, now)},
		// It has seen peers: they have the cluster's plan, and a new
		// cluster of itself alone would beat an epoch-1 plan made earlier.
		{"with bootstrap, a map with peers waits", map[string]any{"format": 2, "node": "n1", "members": Map{
			"n1": {StatusJoined, 5, "127.0.0.1:21001", ""},
			"n2": {StatusLeft, 6, "127.0.0.1:21002", ""},
		}}, true, ring.Plan{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file != nil {
				writeStateFile(t, dir, tc.file)
			}
			var mn gossiptest.Network
			g, rec := startSolo(t, &mn, "n1", dir, soloOpts{bootstrap: tc.bootstrap, addr: "127.0.0.1:21001"})
			if diff := cmp.Diff(tc.want, g.Plan()); diff != "" {
				t.Fatalf("Plan() (-want +got):\n%s", diff)
			}
			rec.wait(t, "startup", tc.want, 30*time.Second)
			if _, p, err := loadState(vfs.OSFS{}, dir, "n1"); err != nil || !p.Equal(tc.want) {
				t.Errorf("persisted plan = %+v, %v; want %+v", p, err, tc.want)
			}
			if err := g.Shutdown(); err != nil {
				t.Fatal(err)
			}
			if n := len(rec.all()); n != 1 {
				t.Errorf("OnPlanChange called %d times for an unchanged plan, want once at startup", n)
			}
		})
	}
}

// TestProposeAlone: on a node without peers, Propose installs a greater
// plan, persists it and reports it; a lower or equal plan, or one that is
// invalid, changes nothing.
func TestProposeAlone(t *testing.T) {
	now := versionAt(testNow)
	dir := t.TempDir()
	var mn gossiptest.Network
	g, rec := startSolo(t, &mn, "n1", dir, soloOpts{bootstrap: true})
	first := ring.NewPlan([]string{"n1"}, now)
	rec.wait(t, "startup", first, 30*time.Second)

	next := first.MoveTo([]string{"n1", "n2"}, now)
	if err := g.Propose(t.Context(), next); err != nil {
		t.Fatalf("Propose(next) = %v", err)
	}
	if !g.Plan().Equal(next) {
		t.Fatalf("Plan() = %+v after Propose, want %+v", g.Plan(), next)
	}
	if _, p, err := loadState(vfs.OSFS{}, dir, "n1"); err != nil || !p.Equal(next) {
		t.Errorf("Propose returned before persisting: file holds %+v, %v", p, err)
	}
	rec.wait(t, "after Propose", next, 30*time.Second)
	if e := g.Stats().PlanEpoch; e != next.Epoch {
		t.Errorf("Stats().PlanEpoch = %d, want %d", e, next.Epoch)
	}

	// Lower and equal plans lost to the newer one: no error, no effect.
	lower := ring.Plan{Epoch: next.Epoch, Version: next.Version - 1, Members: next.Members, Target: next.Target}
	for _, p := range []ring.Plan{first, next, lower} {
		if err := g.Propose(t.Context(), p); err != nil {
			t.Errorf("Propose(older %+v) = %v, want nil", p, err)
		}
	}
	bad := []ring.Plan{
		{Epoch: next.Epoch + 1, Version: now, Members: []string{"n2", "n1"}},
		{Epoch: next.Epoch + 1, Version: now + maxVersionLead + 1, Members: []string{"n1"}},
		{Epoch: next.Epoch + 1, Version: now, Members: []string{"bad/name"}},
	}
	for _, p := range bad {
		if err := g.Propose(t.Context(), p); !errors.Is(err, ring.ErrBadPlan) {
			t.Errorf("Propose(%+v) = %v, want ring.ErrBadPlan", p, err)
		}
	}
	if !g.Plan().Equal(next) {
		t.Errorf("Plan() = %+v after lower and bad proposals, want %+v", g.Plan(), next)
	}

	// The caller's slices are not kept: changing them afterwards changes
	// nothing.
	mine := next.Commit(now + 1)
	want := ring.Plan{Epoch: mine.Epoch, Version: mine.Version, Members: slices.Clone(mine.Members)}
	if err := g.Propose(t.Context(), mine); err != nil {
		t.Fatal(err)
	}
	mine.Members[0] = "zz"
	if !g.Plan().Equal(want) {
		t.Errorf("Plan() shares the proposer's slice: %+v", g.Plan())
	}

	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, p, err := loadState(vfs.OSFS{}, dir, "n1"); err != nil || !p.Equal(want) {
		t.Errorf("plan after shutdown %+v, %v; want %+v", p, err, want)
	}
	if err := g.Propose(t.Context(), want.Commit(now+2)); !errors.Is(err, ErrShutdown) {
		t.Errorf("Propose after Shutdown = %v, want ErrShutdown", err)
	}
	for i, p := range rec.all() {
		if i > 0 && p.Compare(rec.all()[i-1]) <= 0 {
			t.Errorf("OnPlanChange reported %+v after %+v", p, rec.all()[i-1])
		}
	}
}

// TestStartLeave: StartLeave marks this node leaving (still a ring
// member), persists it, and a restart keeps it leaving; Leave then marks
// it left, and a restart after that joins again.
func TestStartLeave(t *testing.T) {
	dir := t.TempDir()
	var mn gossiptest.Network
	g, _ := startSolo(t, &mn, "n1", dir, soloOpts{addr: "127.0.0.1:21001"})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := g.StartLeave(ctx); err != nil {
		t.Fatalf("StartLeave = %v", err)
	}
	if st := g.Ring()["n1"].Status; st != StatusLeaving {
		t.Fatalf("status after StartLeave = %s", st)
	}
	if m, _, _ := loadState(vfs.OSFS{}, dir, "n1"); m["n1"].Status != StatusLeaving {
		t.Errorf("StartLeave not persisted: %+v", m["n1"])
	}
	if got := g.RingMembers(); !slices.Equal(got, []string{"n1"}) {
		t.Errorf("a leaving node must stay a ring member: %v", got)
	}
	version := g.Ring()["n1"].Version
	if err := g.StartLeave(ctx); err != nil || g.Ring()["n1"].Version != version {
		t.Errorf("a second StartLeave = %v, version %d -> %d; want a no-op", err, version, g.Ring()["n1"].Version)
	}
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// A crash or restart while leaving does not cancel the leave.
	g, _ = startSolo(t, &mn, "n1", dir, soloOpts{addr: "127.0.0.1:21001"})
	if e := g.Ring()["n1"]; e.Status != StatusLeaving || e.Version != version {
		t.Errorf("after a restart while leaving the row is %+v, want leaving at version %d", e, version)
	}
	if err := g.Leave(ctx); err != nil {
		t.Fatalf("Leave = %v", err)
	}
	if st := g.Ring()["n1"].Status; st != StatusLeft {
		t.Fatalf("status after Leave = %s", st)
	}
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// A node that left and is started again joins.
	g, _ = startSolo(t, &mn, "n1", dir, soloOpts{addr: "127.0.0.1:21001"})
	if st := g.Ring()["n1"].Status; st != StatusJoined {
		t.Errorf("a node started after leaving is %s, want joined", st)
	}
}

// TestMergeRemoteKeepsOwnLeaving: before the first push-pull, a leave or
// removal from before this start is overruled, but a leaving row is not
// (a leave survives restarts); a newer address is re-stamped with the
// status kept.
func TestMergeRemoteKeepsOwnLeaving(t *testing.T) {
	g := newMergeGossip()
	g.mergeRemote(Map{"self": {StatusLeaving, 5, g.addr, ""}}, false)
	if got := g.ring["self"]; got != (Entry{StatusLeaving, 5, g.addr, ""}) {
		t.Errorf("own leaving row from a peer became %+v", got)
	}
	g.mergeRemote(Map{"self": {StatusLeaving, 7, "127.0.0.1:6999", ""}}, false)
	if got := g.ring["self"]; got != (Entry{StatusLeaving, 8, g.addr, ""}) {
		t.Errorf("own leaving row with an old address became %+v, want re-stamped leaving", got)
	}
}
