package storage

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// mintReserved writes through e as a coordinator numbering its dots from
// ReserveCounter does, and returns the new version.
func mintReserved(t *testing.T, e *Engine, key string, w vclock.Write) vclock.Version {
	t.Helper()
	var v vclock.Version
	_, err := e.Update(t.Context(), []byte(key), func(cur vclock.Siblings) (vclock.Siblings, error) {
		w.Blind = true
		w.MinCounter = e.ReserveCounter(vclock.NextCounter(cur, e.Incarnation(), w))
		var next vclock.Siblings
		v, next = vclock.Mint(cur, e.Incarnation(), w)
		return next, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A tombstone this engine minted can be collected: the next write of the
// key gets a dot above it, so replicas still holding the tombstone keep the
// new write.
func TestCollectedOwnTombstoneNeverReusesDot(t *testing.T) {
	for _, reserved := range []bool{true, false} {
		name := map[bool]string{true: "reserved", false: "plain mint"}[reserved]
		t.Run(name, func(t *testing.T) {
			clk := newFakeClock()
			e := gcEngine(t, t.TempDir(), clk)
			defer e.Close()
			if reserved {
				mintReserved(t, e, "k", vclock.Write{Value: []byte("v1")})
				mintReserved(t, e, "k", vclock.Write{Tombstone: true, WallTime: clk.Now().UnixNano()})
			} else {
				// Minted without the counter (as code before it did):
				// collecting still raises the counter past the key's dots.
				put(t, e, "k", "v1")
				del(t, e, "k", clk.Now())
			}
			elsewhere := e.Get([]byte("k")) // what the other replicas hold
			clk.Advance(48 * time.Hour)
			e.MarkSynced(0, clk.Now())
			if st := collectT(t, e); st.Dropped != 1 || e.Get([]byte("k")) != nil {
				t.Fatalf("own tombstone not collected: %+v", st)
			}
			v := mintReserved(t, e, "k", vclock.Write{Value: []byte("v2")})
			if max := elsewhere.MaxCounter(e.Incarnation()); v.Dot.Counter <= max {
				t.Fatalf("new dot %v does not exceed the collected history's counter %d", v.Dot, max)
			}
			merged := vclock.Merge(elsewhere, e.Get([]byte("k")))
			if live := merged.Live(); len(live) != 1 || string(live[0].Value) != "v2" {
				t.Fatalf("write after GC lost against the old tombstone %v: merged %v", elsewhere, merged)
			}
		})
	}
}

// Pruning a context that held the only trace of one of this engine's
// counters raises the counter past it too.
func TestPrunedContextRaisesCounter(t *testing.T) {
	clk := newFakeClock()
	e := gcEngine(t, t.TempDir(), clk)
	defer e.Close()
	mine := vclock.Siblings{{Dot: vclock.Dot{Actor: e.Incarnation(), Counter: 40}, Value: []byte("a")}}
	_, s := vclock.Mint(mine, "coord", vclock.Write{Value: []byte("b"), Context: mine.Context()})
	applyT(t, e, "k", s)
	if e.counter.Load() != 0 {
		t.Fatalf("counter %d before collect; the test wants it to learn 40 from pruning", e.counter.Load())
	}
	clk.Advance(48 * time.Hour)
	e.MarkSynced(0, clk.Now())
	if st := collectT(t, e); st.Pruned != 1 {
		t.Fatalf("%+v", st)
	}
	if c := e.ReserveCounter(1); c != 41 {
		t.Fatalf("ReserveCounter after pruning (%s,40) = %d, want 41", e.Incarnation(), c)
	}
}

func TestReserveCounter(t *testing.T) {
	e := openT(t, testConfig(t, t.TempDir()))
	defer e.Close()
	if c := e.ReserveCounter(0); c != 1 {
		t.Fatalf("first = %d", c)
	}
	if c := e.ReserveCounter(10); c != 10 {
		t.Fatalf("at least 10 = %d", c)
	}
	if c := e.ReserveCounter(3); c != 11 {
		t.Fatalf("at least 3 after 10 = %d", c)
	}
	const goroutines, each = 8, 500
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			var got []uint64
			for i := range each {
				got = append(got, e.ReserveCounter(uint64(i)))
			}
			mu.Lock()
			defer mu.Unlock()
			for _, c := range got {
				if seen[c] || c <= 11 {
					t.Errorf("counter %d handed out twice or below earlier ones", c)
				}
				seen[c] = true
			}
		})
	}
	wg.Wait()
}

// The counter survives a clean close (in ACTOR) and is renewed with the
// actor after a crash; Open also takes the maximum over the recovered sets.
func TestCounterAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	e := openT(t, cfg)
	actor := e.Incarnation()
	e.ReserveCounter(1000)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, actorFile))
	if err != nil || string(data) != actor+" 1000\n" {
		t.Fatalf("ACTOR holds %q, %v", data, err)
	}
	e = openT(t, cfg)
	if e.Incarnation() != actor {
		t.Fatal("clean close renewed the actor")
	}
	if c := e.ReserveCounter(0); c != 1001 {
		t.Fatalf("after clean reopen ReserveCounter = %d, want 1001", c)
	}
	crash(t, e)

	e = openT(t, cfg)
	if e.Incarnation() == actor {
		t.Fatal("crash kept the actor")
	}
	if c := e.ReserveCounter(0); c != 1 {
		t.Fatalf("after a crash (new actor) ReserveCounter = %d, want 1", c)
	}
	// A set naming the actor at 77, then a clean close with the counter
	// below it and an ACTOR file in the old one-field form: Open takes
	// the set's counter.
	v := vclock.Siblings{{Dot: vclock.Dot{Actor: e.Incarnation(), Counter: 77}, Value: []byte("v")}}
	applyT(t, e, "k", v)
	actor = e.Incarnation()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, actorFile), []byte(actor+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e = openT(t, cfg)
	defer e.Close()
	if e.Incarnation() != actor {
		t.Fatal("one-field ACTOR file not read")
	}
	if c := e.ReserveCounter(0); c != 78 {
		t.Fatalf("ReserveCounter after recovering (actor,77) = %d, want 78", c)
	}
}

// TestForgedCounterIgnored: a set from a peer naming this engine's actor
// far beyond vclock.CounterLimit does not raise the counter, neither when
// Collect forgets it nor at recovery, so a clean close writes an ACTOR file
// the next Open accepts.
func TestForgedCounterIgnored(t *testing.T) {
	clk := newFakeClock()
	dir := t.TempDir()
	e := gcEngine(t, dir, clk)
	forged := vclock.Siblings{{Dot: vclock.Dot{Actor: e.Incarnation(), Counter: 1 << 62}, Tombstone: true}}
	applyT(t, e, "k", forged)
	before := e.Counter()
	clk.Advance(48 * time.Hour)
	e.MarkSynced(0, clk.Now())
	if st := collectT(t, e); st.Dropped != 1 {
		t.Fatalf("collect: %+v, want the forged tombstone dropped", st)
	}
	if got := e.Counter(); got != before {
		t.Fatalf("counter raised from %d to %d by a forged set", before, got)
	}
	applyT(t, e, "j", forged)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = gcEngine(t, dir, clk)
	defer e.Close()
	if got := e.Counter(); got > vclock.CounterLimit {
		t.Fatalf("counter %d after recovering a forged set", got)
	}
}
