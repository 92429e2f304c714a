package gossip

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/ring"
)

// TestNewStartsNothing: New calls no callback and leaves nothing running
// that would (every goroutine of the bubble is idle and no callback has
// run); Start then reports the ring and the plan; a second Start does
// nothing, Shutdown may be called twice, and Start after Shutdown fails.
func TestNewStartsNothing(t *testing.T) { synctest.Test(t, testNewStartsNothing) }

func testNewStartsNothing(t *testing.T) {
	lingerInBubble(t)
	var mn gossiptest.Network
	tr, err := mn.NewTransport("127.0.0.1:20001")
	if err != nil {
		t.Fatal(err)
	}
	var rings, plans atomic.Int32
	cfg := LocalConfig()
	cfg.Name, cfg.Dir, cfg.Transport, cfg.Bootstrap = "n1", t.TempDir(), tr, true
	cfg.Logger, _ = newTestLogger(t, -4)
	cfg.OnRingChange = func([]string) { rings.Add(1) }
	cfg.OnPlanChange = func(ring.Plan) { plans.Add(1) }
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	if r, p := rings.Load(), plans.Load(); r != 0 || p != 0 {
		t.Fatalf("before Start: %d ring and %d plan callbacks, want none", r, p)
	}
	if got := g.Plan(); got.Epoch != 1 {
		t.Errorf("Plan before Start = %+v, want the bootstrap plan (epoch 1)", got)
	}
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(t.Context()); err != nil {
		t.Errorf("second Start: %v, want nil", err)
	}
	synctest.Wait()
	if r, p := rings.Load(), plans.Load(); r != 1 || p != 1 {
		t.Errorf("after Start: %d ring and %d plan callbacks, want one each", r, p)
	}
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := g.Start(t.Context()); !errors.Is(err, ErrShutdown) {
		t.Errorf("Start after Shutdown: %v, want ErrShutdown", err)
	}
}

// TestShutdownWithoutStart: a Gossip that never started shuts its
// transport down, so the address can be bound again, and persists its map.
func TestShutdownWithoutStart(t *testing.T) {
	var mn gossiptest.Network
	dir := t.TempDir()
	for i := range 2 {
		tr, err := mn.NewTransport("127.0.0.1:20001")
		if err != nil {
			t.Fatalf("bind %d: %v", i, err)
		}
		cfg := LocalConfig()
		cfg.Name, cfg.Dir, cfg.Transport = "n1", dir, tr
		cfg.Logger, _ = newTestLogger(t, -4)
		g, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Shutdown(); err != nil {
			t.Fatalf("shutdown %d: %v", i, err)
		}
		if st := g.Ring()["n1"].Status; st != StatusJoined {
			t.Errorf("own row after New = %v, want joined", st)
		}
	}
}
