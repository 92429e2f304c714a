package hints

import (
	"fmt"
	"testing"
	"time"

	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// BenchmarkStoreHint: concurrent StoreHint calls on distinct keys of one
// target, per fsync policy (group commit shares fsyncs under always).
func BenchmarkStoreHint(b *testing.B) {
	for _, fs := range []storage.FsyncPolicy{storage.FsyncNone, storage.FsyncAlways} {
		b.Run("fsync="+string(fs), func(b *testing.B) {
			cfg := testConfig(b, b.TempDir())
			cfg.Fsync = fs
			cfg.SegmentBytes = 64 << 20
			q := openQueue(b, cfg)
			s := mint(nil, "a", string(make([]byte, 100)))
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					k := fmt.Appendf(nil, "k-%p-%d", &i, i)
					if err := q.StoreHint(b.Context(), "t", k, s); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkDeliverRound: one delivery round of 10,000 pending hints to an
// in-memory target, unthrottled, per fsync policy (each acknowledged batch
// waits for its forget records); reports hints/s.
func BenchmarkDeliverRound(b *testing.B) {
	for _, fs := range []storage.FsyncPolicy{storage.FsyncNone, storage.FsyncAlways} {
		b.Run("fsync="+string(fs), func(b *testing.B) { benchmarkDeliverRound(b, fs) })
	}
}

func benchmarkDeliverRound(b *testing.B, fs storage.FsyncPolicy) {
	for range b.N {
		b.StopTimer()
		cfg := testConfig(b, b.TempDir())
		cfg.Fsync = fs
		sk := newSink()
		cfg.Deliverer = sk
		cfg.DeliveryRate = 1 << 30
		q, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		var s vclock.Siblings = mint(nil, "a", "value")
		for i := range 10000 {
			if err := q.StoreHint(b.Context(), "t", fmt.Appendf(nil, "k%d", i), s); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		q.deliverRound(b.Context(), q.targets["t"])
		b.ReportMetric(10000/time.Since(start).Seconds(), "hints/s")
		b.StopTimer()
		if q.PendingFor("t").Hints != 0 {
			b.Fatal("round left hints pending")
		}
		_ = q.Close()
	}
}
