package replica_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// BenchmarkAAEExchange measures one exchange of a partition of 10,000
// keys (100-byte values) between two nodes over the in-memory network
// (every call encoded and decoded), unpaced: in sync, and with 1% of the
// keys (100) overwritten on the peer before each exchange, which pulls
// them and so repairs 100 keys.
func BenchmarkAAEExchange(b *testing.B) {
	const keys = 10_000
	for _, diff := range []int{0, 1} {
		b.Run(fmt.Sprintf("keys=%d/differ=%d%%", keys, diff), func(b *testing.B) {
			c := newAECluster(b, 2, 2, func(cfg *replica.AEConfig) {
				cfg.RateBytes = math.Inf(1)
				cfg.Logger = slog.New(slog.DiscardHandler)
			})
			const p = 7
			ks := keysIn(b, c.place, "bench", p, keys)
			val := string(make([]byte, 100))
			for _, k := range ks {
				s := set("inc-n1", val)
				c.apply(b, "n1", k, s)
				c.apply(b, "n2", k, s)
			}
			ctx := context.Background()
			n := keys * diff / 100
			var calls, repaired int
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if n > 0 {
					b.StopTimer()
					for j := range n {
						k := ks[(i*n+j)%keys]
						_, err := c.stores["n2"].Update(ctx, k, func(cur vclock.Siblings) (vclock.Siblings, error) {
							_, m := vclock.Mint(cur, "inc-n2", vclock.Write{Value: []byte(val), Blind: true})
							return m, nil
						})
						if err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
				res, err := c.ae["n1"].Exchange(ctx, p, "n2")
				if err != nil {
					b.Fatal(err)
				}
				if res.InSync != (n == 0) || res.KeysPulled != n {
					b.Fatalf("exchange %d: %+v, want %d keys pulled", i, res, n)
				}
				calls += res.Calls
				repaired += res.KeysRepaired
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			b.ReportMetric(float64(repaired)/float64(b.N), "keys/op")
		})
	}
}
