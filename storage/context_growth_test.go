package storage

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// TestContextPrunedAfterCrashes: every unclean restart renews the minting
// actor, so a key written after each one gains a context entry: after
// 1,000 kill -9 restarts its context names 1,000 actors (about 23 KB).
// The test runs 300 unless RINGKV_CRASH_RESTARTS says otherwise.
// Once the key has been left alone for the grace and anti-entropy has
// marked its partition synced, Collect prunes the entries of actors with no
// version in the set and the context is back under 1 KiB, while the value
// and its dot stay. (A key written more often than once per grace is
// TestHotKeyContextStaysSmall's.)
func TestContextPrunedAfterCrashes(t *testing.T) {
	// Each reopen replays a set as large as the context, so the run is
	// quadratic: 300 by default, RINGKV_CRASH_RESTARTS=1000 for the figure
	// in docs/anti-entropy.md (about 2.5 min under -race).
	restarts := 300
	if testing.Short() {
		restarts = 100
	}
	if v, err := strconv.Atoi(os.Getenv("RINGKV_CRASH_RESTARTS")); err == nil && v > 0 {
		restarts = v
	}
	clk := newFakeClock()
	cfg := testConfig(t, t.TempDir())
	cfg.Partitions = 1
	cfg.Partitioner = func([]byte) int { return 0 }
	cfg.SnapshotBytes = -1
	cfg.TombstoneGC = time.Hour
	cfg.Now = clk.Now
	cfg.Logger = slog.New(slog.DiscardHandler)
	e := openT(t, cfg)
	for range restarts {
		coordinate(t, e, "k", "v", clk)
		clk.Advance(time.Second)
		crash(t, e)
		e = openT(t, cfg)
	}
	defer e.Close()
	before := e.Get([]byte("k"))
	grown := len(vclock.EncodeContext(before.Context()))
	if len(before.Context()) != restarts {
		t.Fatalf("after %d restarts the context names %d actors; the test no longer shows the growth", restarts, len(before.Context()))
	}
	clk.Advance(time.Hour + time.Second)
	e.MarkSynced(0, clk.Now())
	if st, err := e.Collect(t.Context(), 0); err != nil || st.Pruned != 1 {
		t.Fatalf("collect: %+v, %v; want the key pruned", st, err)
	}
	after := e.Get([]byte("k"))
	size := len(vclock.EncodeContext(after.Context()))
	t.Logf("after %d kill -9 restarts the key's context was %d bytes (%d actors); pruned: %d bytes (%d actors)",
		restarts, grown, len(before.Context()), size, len(after.Context()))
	if size >= 1024 {
		t.Fatalf("pruned context is %d bytes, want under 1 KiB", size)
	}
	if len(after) != 1 || after[0].Dot != before[0].Dot || string(after[0].Value) != "v" {
		t.Fatalf("pruning changed the versions: %v -> %v", before, after)
	}
}

// coordinate writes value blind to key through e, minting as a
// coordinator does.
func coordinate(t *testing.T, e *Engine, key, value string, clk *fakeClock) {
	t.Helper()
	_, err := e.Update(context.Background(), []byte(key), func(cur vclock.Siblings) (vclock.Siblings, error) {
		w := vclock.Write{Blind: true, Value: []byte(value), WallTime: clk.Now().UnixNano()}
		w.MinCounter = e.ReserveCounter(vclock.NextCounter(cur, e.Incarnation(), w))
		_, next := vclock.Mint(cur, e.Incarnation(), w)
		return next, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHotKeyContextStaysSmall: a key written after every one of 1,000
// kill -9 restarts, one second apart, is never left alone for the grace
// (10 s here), so the cold-key rule never prunes it. Anti-entropy marks the
// partition synced and Collect runs after every fifth restart; the
// candidates Collect notes survive the crashes (WAL and snapshots), and the
// key's context stays under 1 KiB throughout while every write's value is
// kept.
func TestHotKeyContextStaysSmall(t *testing.T) {
	restarts := 1000
	if testing.Short() {
		restarts = 200
	}
	if v, err := strconv.Atoi(os.Getenv("RINGKV_CRASH_RESTARTS")); err == nil && v > 0 {
		restarts = v
	}
	clk := newFakeClock()
	cfg := testConfig(t, t.TempDir())
	cfg.Partitions = 1
	cfg.Partitioner = func([]byte) int { return 0 }
	cfg.SnapshotBytes = -1
	cfg.TombstoneGC = 10 * time.Second
	cfg.Now = clk.Now
	cfg.Logger = slog.New(slog.DiscardHandler)
	e := openT(t, cfg)
	largest, pruned := 0, 0
	for i := range restarts {
		value := "v" + strconv.Itoa(i)
		coordinate(t, e, "k", value, clk)
		if i%5 == 4 {
			e.MarkSynced(0, clk.Now())
			st, err := e.Collect(t.Context(), 0)
			if err != nil {
				t.Fatal(err)
			}
			pruned += st.Pruned
		}
		if i%50 == 49 { // candidates must survive snapshots too
			if err := e.Snapshot(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(time.Second)
		crash(t, e)
		e = openT(t, cfg)
		got := e.Get([]byte("k"))
		if len(got) != 1 || string(got[0].Value) != value {
			t.Fatalf("restart %d: key holds %v, want the value %q", i, got, value)
		}
		largest = max(largest, len(vclock.EncodeContext(got.Context())))
	}
	defer e.Close()
	t.Logf("%d kill -9 restarts, one write each: largest context %d bytes; %d prunes", restarts, largest, pruned)
	if largest >= 1024 {
		t.Fatalf("the context reached %d bytes, want under 1 KiB", largest)
	}
	if pruned == 0 {
		t.Fatal("never pruned")
	}
}
