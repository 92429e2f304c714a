package replica_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// soloCoordinator is a one-node, N=1 coordinator over st.
func soloCoordinator(t *testing.T, st replica.Store) *replica.Coordinator {
	t.Helper()
	pl := replicatest.NewPlacement([]string{"n1"}, 1, 4)
	cfg := replica.DefaultConfig()
	cfg.Self, cfg.N, cfg.Store = "n1", 1, st
	cfg.Placement = func() replica.Placement { return pl }
	cfg.Transport = replicatest.NewNetwork(1).Transport("n1")
	co, err := replica.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = co.Close() })
	return co
}

// counterOf returns the counter of the only live version of a write's result.
func counterOf(t *testing.T, r replica.Result) uint64 {
	t.Helper()
	if len(r.Siblings) != 1 {
		t.Fatalf("want one version, got %v", r.Siblings)
	}
	return r.Siblings[0].Dot.Counter
}

// TestReserveCounter: with a store that reserves counters, dots are
// numbered from one counter across keys, so a key the store forgot (a
// collected tombstone) never gets a dot it had before; without one, each
// key counts on its own as before.
func TestReserveCounter(t *testing.T) {
	ctx := context.Background()
	forget := func(st replica.Store, key string) {
		if _, err := st.Update(ctx, []byte(key), func(vclock.Siblings) (vclock.Siblings, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("reserving", func(t *testing.T) {
		st := replicatest.NewCountingStore("inc-n1")
		co := soloCoordinator(t, st)
		var got []uint64
		for _, k := range []string{"a", "b", "a"} {
			r, err := co.Put(ctx, []byte(k), []byte("v"), replica.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, counterOf(t, r))
		}
		if got[0] != 1 || got[1] != 2 || got[2] != 3 {
			t.Fatalf("counters %v, want 1 2 3", got)
		}
		r, err := co.Delete(ctx, []byte("b"), replica.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c := counterOf(t, r); c != 4 {
			t.Fatalf("tombstone counter %d, want 4", c)
		}
		forget(st, "b") // tombstone collected
		r, err = co.Put(ctx, []byte("b"), []byte("again"), replica.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c := counterOf(t, r); c != 5 {
			t.Fatalf("counter after the key was forgotten: %d, want 5", c)
		}
		if n := st.Reserved(); n != 5 {
			t.Fatalf("%d counters reserved, want 5", n)
		}
	})
	t.Run("plain store", func(t *testing.T) {
		st := replicatest.NewStore("inc-n1")
		co := soloCoordinator(t, st)
		for _, k := range []string{"a", "b"} {
			r, err := co.Put(ctx, []byte(k), []byte("v"), replica.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c := counterOf(t, r); c != 1 {
				t.Fatalf("key %s: counter %d, want 1 (per-key counting)", k, c)
			}
		}
	})
}

// TestForgedCounterRefused: a context naming a dot of this node far above
// its counter was forged; the write is refused as a bad request and the
// counter stays where it was, so other keys keep minting small counters.
func TestForgedCounterRefused(t *testing.T) {
	ctx := context.Background()
	st := replicatest.NewCountingStore("inc-n1")
	co := soloCoordinator(t, st)
	if _, err := co.Put(ctx, []byte("a"), []byte("v"), replica.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	forged := vclock.Clock{{Actor: "inc-n1", Counter: 1 << 50}}
	_, err := co.Put(ctx, []byte("k"), []byte("x"), replica.WriteOptions{Context: forged, HasContext: true})
	if !errors.Is(err, replica.ErrBadRequest) {
		t.Fatalf("forged context: err = %v, want ErrBadRequest", err)
	}
	// A context naming what this node did mint is fine.
	r, err := co.Put(ctx, []byte("b"), []byte("v"), replica.WriteOptions{Context: vclock.Clock{{Actor: "inc-n1", Counter: 1}}, HasContext: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := counterOf(t, r); c != 2 {
		t.Fatalf("counter after the forged write: %d, want 2", c)
	}
	// A dot a little above the counter (minted per key by a binary from
	// before the counter, on a key this node no longer held) is taken, and
	// the new dot goes above it.
	r, err = co.Put(ctx, []byte("c"), []byte("v"), replica.WriteOptions{Context: vclock.Clock{{Actor: "inc-n1", Counter: 40}}, HasContext: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := counterOf(t, r); c != 41 {
		t.Fatalf("counter above an old per-key dot: %d, want 41", c)
	}
}
