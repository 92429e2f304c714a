package storage

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// benchWriter produces, for one writer, versions of 100-byte values whose
// context covers the writer's previous version of the key, so every Apply
// changes the key and sets stay at one version (steady state).
type benchWriter struct {
	actor string
	keys  [][]byte
	value []byte
	n     uint64
}

func newBenchWriter(w, keys int) *benchWriter {
	bw := &benchWriter{actor: fmt.Sprintf("writer%02d", w), value: make([]byte, 100)}
	for i := range keys {
		bw.keys = append(bw.keys, fmt.Appendf(nil, "w%02d-key-%07d", w, i))
	}
	return bw
}

func (bw *benchWriter) next() ([]byte, vclock.Siblings) {
	bw.n++
	i := (bw.n - 1) % uint64(len(bw.keys))
	round := (bw.n-1)/uint64(len(bw.keys)) + 1 // this key's counter
	v := vclock.Version{Dot: vclock.Dot{Actor: bw.actor, Counter: round}, Value: bw.value, WallTime: 1}
	if round > 1 {
		v.Context = vclock.Clock{{Actor: bw.actor, Counter: round - 1}}
	}
	return bw.keys[i], vclock.Siblings{v}
}

func benchEngine(b *testing.B, policy FsyncPolicy, onFsync func(time.Duration, int)) *Engine {
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.NodeID = "bench"
	cfg.Fsync = policy
	cfg.Partitions = 64
	cfg.Partitioner = fnvPartitioner(64)
	cfg.SnapshotBytes = -1
	cfg.OnFsync = onFsync
	e, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// BenchmarkApply measures Apply throughput with W concurrent writers under
// each fsync policy, 100-byte values.
func BenchmarkApply(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNone} {
			b.Run(fmt.Sprintf("writers=%d/fsync=%s", writers, policy), func(b *testing.B) {
				var fsyncs atomic.Int64
				e := benchEngine(b, policy, func(time.Duration, int) { fsyncs.Add(1) })
				ws := make([]*benchWriter, writers)
				for w := range ws {
					ws[w] = newBenchWriter(w, 1000)
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				ctx := context.Background()
				b.ReportAllocs()
				b.SetBytes(100)
				b.ResetTimer()
				for _, bw := range ws {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							key, s := bw.next()
							if _, err := e.Apply(ctx, key, s); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
				if n := fsyncs.Load(); n > 0 && policy == FsyncAlways {
					b.ReportMetric(float64(b.N)/float64(n), "applies/fsync")
				}
			})
		}
	}
}

// BenchmarkGet measures parallel reads of 100k keys.
func BenchmarkGet(b *testing.B) {
	e := benchEngine(b, FsyncNone, nil)
	bw := newBenchWriter(0, 100_000)
	for range bw.keys {
		key, s := bw.next()
		if _, err := e.Apply(context.Background(), key, s); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := seq.Add(7919)
		for pb.Next() {
			i += 7919
			if e.Get(bw.keys[i%uint64(len(bw.keys))]) == nil {
				b.Error("missing key")
				return
			}
		}
	})
}

// BenchmarkRecovery measures Open of a directory holding 1,000,000 keys of
// 100-byte values, all in the WAL or all in a snapshot. Run with
// -benchtime=1x; skipped with -short.
func BenchmarkRecovery(b *testing.B) {
	if testing.Short() {
		b.Skip("writes 1M keys")
	}
	const keys = 1_000_000
	for _, source := range []string{"wal", "snapshot"} {
		b.Run(fmt.Sprintf("keys=%d/from=%s", keys, source), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Dir = b.TempDir()
			cfg.NodeID = "bench"
			cfg.Fsync = FsyncNone
			cfg.Partitions = 271
			cfg.Partitioner = fnvPartitioner(271)
			cfg.SnapshotBytes = -1
			e, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			const writers = 8
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					bw := newBenchWriter(w, keys/writers)
					for range bw.keys {
						key, s := bw.next()
						if _, err := e.Apply(context.Background(), key, s); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if source == "snapshot" {
				if err := e.Snapshot(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			st := e.Stats()
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			b.ResetTimer()
			for range b.N {
				e, err := Open(cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := e.Stats().Keys; got != keys {
					b.Fatalf("recovered %d keys, want %d", got, keys)
				}
				e.Close()
				runtime.GC()
				b.StartTimer()
			}
			b.ReportMetric(float64(st.WALBytes)/(1<<20), "wal-MiB")
		})
	}
}
