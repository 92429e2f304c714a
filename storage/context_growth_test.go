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
// and its dot stay. (A key written more often than once per grace keeps its
// entries: pruning waits for the key's receipt time to pass the grace.)
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
		_, err := e.Update(context.Background(), []byte("k"), func(cur vclock.Siblings) (vclock.Siblings, error) {
			w := vclock.Write{Blind: true, Value: []byte("v"), WallTime: clk.Now().UnixNano()}
			w.MinCounter = e.ReserveCounter(vclock.NextCounter(cur, e.Incarnation(), w))
			_, next := vclock.Mint(cur, e.Incarnation(), w)
			return next, nil
		})
		if err != nil {
			t.Fatal(err)
		}
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
