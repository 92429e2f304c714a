package storage

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// TestContextStaysSmallAcrossCrashes: every unclean restart renews the
// minting actor, so a key written after each one gains a context entry.
// With anti-entropy marking the partition synced every 10 restarts and
// Collect pruning what the sync covers, the key's client context (the
// join of its versions' contexts and dots) stays under 1 KiB after 1,000
// kill -9 restarts; without pruning it grows by an entry per restart.
func TestContextStaysSmallAcrossCrashes(t *testing.T) {
	for _, prune := range []bool{false, true} {
		// The control run only has to show the growth.
		restarts := 100
		if prune && !testing.Short() {
			restarts = 1000
		}
		clk := newFakeClock()
		cfg := testConfig(t, t.TempDir())
		cfg.Partitions = 1
		cfg.Partitioner = func([]byte) int { return 0 }
		cfg.SnapshotBytes = -1
		cfg.Now = clk.Now
		cfg.Logger = slog.New(slog.DiscardHandler)
		e := openT(t, cfg)
		largest := 0
		for i := range restarts {
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
			if prune && i%10 == 9 {
				e.MarkSynced(0, clk.Now())
				if _, err := e.Collect(t.Context(), 0); err != nil {
					t.Fatal(err)
				}
			}
			largest = max(largest, len(vclock.EncodeContext(e.Get([]byte("k")).Context())))
			crash(t, e)
			e = openT(t, cfg)
		}
		s := e.Get([]byte("k"))
		if len(s) != 1 || string(s[0].Value) != "v" {
			t.Fatalf("prune=%v: the key lost its value: %v", prune, s)
		}
		size := len(vclock.EncodeContext(s.Context()))
		t.Logf("prune=%v: after %d kill -9 restarts the key's context is %d bytes (%d actors); largest seen %d bytes",
			prune, restarts, size, len(s.Context()), largest)
		switch {
		case prune && largest >= 1024:
			t.Fatalf("with pruning the context reached %d bytes, want under 1 KiB", largest)
		case !prune && len(s.Context()) < restarts:
			t.Fatalf("without pruning the context holds %d actors after %d restarts; the test no longer shows growth", len(s.Context()), restarts)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
