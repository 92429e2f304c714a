package storage

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// dirBytes is the total size of the files under dir.
func dirBytes(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkDeleteHeavyDisk writes 100,000 keys (100-byte values) and
// deletes them all, both minted by this engine's actor as a coordinator
// does, lets the grace pass on a fake clock, marks every partition synced
// and collects, snapshots twice and reports the data directory's size.
// Run with -benchtime=1x; skipped with -short.
func BenchmarkDeleteHeavyDisk(b *testing.B) {
	if testing.Short() {
		b.Skip("writes 100k keys")
	}
	const keys = 100_000
	for range b.N {
		clk := newFakeClock()
		cfg := DefaultConfig()
		cfg.Dir = b.TempDir()
		cfg.NodeID = "bench"
		cfg.Fsync = FsyncNone
		cfg.Partitions = 64
		cfg.Partitioner = fnvPartitioner(64)
		cfg.SnapshotBytes = -1
		cfg.Now = clk.Now
		e, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		value := make([]byte, 100)
		write := func(key []byte, tomb bool) {
			_, err := e.Update(ctx, key, func(cur vclock.Siblings) (vclock.Siblings, error) {
				w := vclock.Write{Blind: true, Value: value, Tombstone: tomb, WallTime: clk.Now().UnixNano()}
				w.MinCounter = e.ReserveCounter(vclock.NextCounter(cur, e.Incarnation(), w))
				_, s := vclock.Mint(cur, e.Incarnation(), w)
				return s, nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		for i := range keys {
			write(fmt.Appendf(nil, "key-%07d", i), false)
		}
		for i := range keys {
			write(fmt.Appendf(nil, "key-%07d", i), true)
		}
		clk.Advance(cfg.TombstoneGC + time.Hour)
		dropped := 0
		for p := range cfg.Partitions {
			e.MarkSynced(p, clk.Now())
			st, err := e.Collect(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			dropped += st.Dropped
		}
		for range 2 {
			if err := e.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(dirBytes(b, cfg.Dir)), "dir-bytes")
		b.ReportMetric(float64(e.Stats().Keys), "keys-left")
		b.ReportMetric(float64(dropped), "dropped")
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
