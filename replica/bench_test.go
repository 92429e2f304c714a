package replica_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
)

// reportQuantiles adds p50 and p99 latency metrics from per-op samples.
func reportQuantiles(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkCluster measures put and get through a 3-node cluster with
// N=3, R=W=2 and 100-byte values, one request at a time (latency) and
// 16 at a time (throughput), over the in-memory network and loopback TCP.
func BenchmarkCluster(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 100)
	const keys = 1000
	for _, tr := range []string{"mem", "tcp"} {
		for _, op := range []string{"put", "get"} {
			for _, conc := range []int{1, 16} {
				b.Run(fmt.Sprintf("transport=%s/op=%s/conc=%d", tr, op, conc), func(b *testing.B) {
					var c *cluster
					if tr == "mem" {
						c = newCluster(b, 3, 3)
					} else {
						c = newTCPCluster(b, 3, 3)
					}
					o := replica.WriteOptions{W: 2}
					key := func(i int) []byte { return fmt.Appendf(nil, "key-%d", i%keys) }
					for i := range keys {
						if _, err := c.nodes[c.names[i%3]].Put(context.Background(), key(i), value, o); err != nil {
							b.Fatal(err)
						}
					}
					c.drain()
					run := func(i int) error {
						co := c.nodes[c.names[i%3]]
						var err error
						if op == "put" {
							_, err = co.Put(context.Background(), key(i), value, o)
						} else {
							_, err = co.Get(context.Background(), key(i), replica.ReadOptions{R: 2})
						}
						return err
					}
					b.ReportAllocs()
					b.SetBytes(int64(len(value)))
					if conc == 1 {
						samples := make([]time.Duration, 0, b.N)
						b.ResetTimer()
						for i := range b.N {
							start := time.Now()
							if err := run(i); err != nil {
								b.Fatal(err)
							}
							samples = append(samples, time.Since(start))
						}
						b.StopTimer()
						reportQuantiles(b, samples)
					} else {
						var next atomic.Int64
						b.SetParallelism(conc)
						b.ResetTimer()
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								if err := run(int(next.Add(1))); err != nil {
									b.Error(err)
									return
								}
							}
						})
						b.StopTimer()
					}
					c.drain()
				})
			}
		}
	}
}

// BenchmarkRPCRoundTrip measures one small call (ping) over loopback TCP,
// one at a time (p50 is the round-trip median) and 16 at a time.
func BenchmarkRPCRoundTrip(b *testing.B) {
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			ping := replica.HandlerFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
				return replica.Response{}, nil
			})
			trs := startTCP(b, map[string]replica.Handler{"a": ping, "b": ping})
			req := replica.Request{Kind: replica.KindPing}
			if _, err := trs["a"].Call(context.Background(), "b", req); err != nil {
				b.Fatal(err) // dial outside the timed loop
			}
			b.ReportAllocs()
			if conc == 1 {
				samples := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					if _, err := trs["a"].Call(context.Background(), "b", req); err != nil {
						b.Fatal(err)
					}
					samples = append(samples, time.Since(start))
				}
				b.StopTimer()
				reportQuantiles(b, samples)
				return
			}
			b.SetParallelism(conc)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := trs["a"].Call(context.Background(), "b", req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGet measures one read at a time through the in-memory network:
// N=3 on three nodes at R=1 (local answer) and R=2, and during a change
// adding a fourth node, where a read must also hear from the replicas after
// the change.
func BenchmarkGet(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 100)
	const keys = 1000
	three, four := []string{"n1", "n2", "n3"}, []string{"n1", "n2", "n3", "n4"}
	for _, tc := range []struct {
		name  string
		size  int
		place *replicatest.Placement
	}{
		{"stable", 3, replicatest.NewTransitionPlacement(three, nil, 3, 64, 1)},
		{"change", 4, replicatest.NewTransitionPlacement(three, four, 3, 64, 2)},
	} {
		for _, r := range []replica.Quorum{1, 2} {
			b.Run(fmt.Sprintf("placement=%s/r=%d", tc.name, r), func(b *testing.B) {
				c := newCluster(b, tc.size, 3)
				c.place = tc.place // before any request: the nodes read it unlocked
				key := func(i int) []byte { return fmt.Appendf(nil, "key-%d", i%keys) }
				for i := range keys {
					if _, err := c.nodes[three[i%3]].Put(context.Background(), key(i), value, replica.WriteOptions{W: replica.QuorumAll}); err != nil {
						b.Fatal(err)
					}
				}
				c.drain()
				b.ReportAllocs()
				b.SetBytes(int64(len(value)))
				b.ResetTimer()
				for i := range b.N {
					if _, err := c.nodes[three[i%3]].Get(context.Background(), key(i), replica.ReadOptions{R: r}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				c.drain()
			})
		}
	}
}
