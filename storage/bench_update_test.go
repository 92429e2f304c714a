package storage

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/vclock"
)

// BenchmarkUpdate measures coordinator-style writes: Update minting a blind
// 100-byte write over the key's current set (steady state, one version per
// key), W concurrent writers over 1000 keys each. Under fsync=none it shows
// the CPU cost of the write path (encoding, index and hash-tree update).
func BenchmarkUpdate(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		for _, policy := range []FsyncPolicy{FsyncAlways, FsyncNone} {
			b.Run(fmt.Sprintf("writers=%d/fsync=%s", writers, policy), func(b *testing.B) {
				e := benchEngine(b, policy, nil)
				value := make([]byte, 100)
				keys := make([][][]byte, writers)
				for w := range keys {
					for i := range 1000 {
						keys[w] = append(keys[w], fmt.Appendf(nil, "w%02d-key-%07d", w, i))
					}
				}
				actor := e.Incarnation()
				var next atomic.Int64
				var wg sync.WaitGroup
				ctx := context.Background()
				b.ReportAllocs()
				b.SetBytes(100)
				b.ResetTimer()
				for w := range writers {
					wg.Go(func() {
						for i := 0; next.Add(1) <= int64(b.N); i++ {
							key := keys[w][i%len(keys[w])]
							_, err := e.Update(ctx, key, func(cur vclock.Siblings) (vclock.Siblings, error) {
								_, s := vclock.Mint(cur, actor, vclock.Write{Blind: true, Value: value, WallTime: int64(i)})
								return s, nil
							})
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}

// BenchmarkIndexMemory loads 1,000,000 keys and reports the heap in use
// per key (runtime.MemStats.HeapInuse after a GC, minus the empty
// engine's). The first cases share one 10-byte value among all keys (the
// index's own cost, 16-byte keys); the last is what one node (N=1, the
// default 2039 partitions) holds after scripts/mem-1m.sh loaded it:
// 10-byte keys, each with its own 100-byte value. Run with -benchtime=1x;
// skipped with -short.
func BenchmarkIndexMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("loads 1M keys")
	}
	const keys = 1_000_000
	for _, c := range []struct {
		parts, value int
		copied       bool
	}{{64, 10, false}, {1024, 10, false}, {2039, 100, true}} {
		name := fmt.Sprintf("keys=%d/partitions=%d", keys, c.parts)
		if c.copied {
			name += fmt.Sprintf("/value=%d", c.value)
		}
		parts := c.parts
		b.Run(name, func(b *testing.B) {
			for range b.N {
				cfg := DefaultConfig()
				cfg.Dir = b.TempDir()
				cfg.NodeID = "bench"
				cfg.Fsync = FsyncNone
				cfg.Partitions = parts
				cfg.Partitioner = fnvPartitioner(parts)
				cfg.SnapshotBytes = -1
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				base := ms.HeapInuse
				e, err := Open(cfg)
				if err != nil {
					b.Fatal(err)
				}
				value := make([]byte, c.value)
				for i := range keys {
					v := vclock.Version{Dot: vclock.Dot{Actor: "coordinator1", Counter: 1}, Value: value, WallTime: 1}
					key := fmt.Appendf(nil, "key-%011d", i)
					if c.copied {
						v.Value = bytes.Clone(value)
						key = fmt.Appendf(key[:0], "user%d", i)
					}
					if _, err := e.Apply(context.Background(), key, vclock.Siblings{v}); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapInuse-base)/keys, "heap-B/key")
				b.ReportMetric(float64(ms.HeapInuse-base)/(1<<20), "heap-MiB")
				runtime.KeepAlive(e)
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
