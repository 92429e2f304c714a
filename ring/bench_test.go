package ring

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkLookup measures the request path: key -> partition -> preference
// list (and the fallbacks a coordinator reads when a replica is down),
// through an atomic pointer as a node holds its current ring.
func BenchmarkLookup(b *testing.B) {
	for _, members := range []int{5, 50} {
		for _, keyLen := range []int{16, 64, 1024} {
			b.Run(fmt.Sprintf("members=%d/key=%d", members, keyLen), func(b *testing.B) {
				var cur atomic.Pointer[Ring]
				cur.Store(mustNew(b, DefaultConfig(), names("node-", members)))
				key := make([]byte, keyLen)
				for i := range key {
					key[i] = byte('a' + i%26)
				}
				b.SetBytes(int64(keyLen))
				b.ReportAllocs()
				sink := 0
				for i := 0; b.Loop(); i++ {
					key[0] = byte(i) // a different key each time
					r := cur.Load()
					p, reps := r.Lookup(key)
					sink += p + len(reps) + len(r.Fallbacks(p))
				}
				if sink == 0 {
					b.Fatal("lookups returned nothing")
				}
			})
		}
	}
}

// BenchmarkNew measures building a ring: the cost of a membership change.
func BenchmarkNew(b *testing.B) {
	for _, members := range []int{5, 11, 50} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			ms := names("node-", members)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(DefaultConfig(), ms); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
