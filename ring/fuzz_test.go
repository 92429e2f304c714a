package ring

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// FuzzNew feeds New arbitrary configs and member names: it must return a
// ring or a package error, never panic (the library panics when it cannot
// place partitions), and a ring it returns must satisfy the basic contract.
func FuzzNew(f *testing.F) {
	f.Add(271, 3, 1.0, 40, "a,b,c")
	f.Add(7, 3, 1.0, 1, "a,b,c,d,e,f,g")
	f.Add(2, 16, 1.0, 1, "x,y")
	f.Add(2039, 3, 1.1, 400, "node-1,node-2,node-3,node-4,node-5")
	f.Add(271, 3, 0.5, 40, "a,,b")
	f.Fuzz(func(t *testing.T, partitions, n int, load float64, vnodes int, list string) {
		// Keep each run cheap: the fuzzer explores names and edge values,
		// not table sizes.
		if partitions > 3000 || vnodes > 500 || len(list) > 400 {
			return
		}
		var members []string
		if list != "" {
			members = strings.Split(list, ",")
		}
		cfg := Config{Partitions: partitions, ReplicationFactor: n, Load: load, VirtualNodes: vnodes}
		r, err := New(cfg, members)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ring: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			if errors.Is(err, ErrNoRoom) {
				t.Fatalf("valid input reached the library's no-room case: %v", err)
			}
			return
		}
		if r.Len() != len(members) {
			t.Fatalf("ring has %d members, given %d", r.Len(), len(members))
		}
		for p := range min(partitions, 50) {
			if len(r.Replicas(p))+len(r.Fallbacks(p)) != len(members) {
				t.Fatalf("partition %d: %d replicas + %d fallbacks for %d members", p, len(r.Replicas(p)), len(r.Fallbacks(p)), len(members))
			}
		}
	})
}

// TestConcurrentSwap runs lookups while another goroutine swaps rings, as a
// node does on membership changes; the race detector checks that a Ring
// needs no lock.
func TestConcurrentSwap(t *testing.T) {
	cfg := smallConfig()
	rings := []*Ring{
		mustNew(t, cfg, names("n", 3)),
		mustNew(t, cfg, names("n", 4)),
		mustNew(t, cfg, names("n", 5)),
	}
	var cur atomic.Pointer[Ring]
	cur.Store(rings[0])
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			key := []byte{byte(g), 0}
			for i := range 2000 {
				key[1] = byte(i)
				r := cur.Load()
				p, reps := r.Lookup(key)
				if len(reps) != 3 || reps[0] != r.Owner(p) {
					t.Errorf("lookup on a swapped ring: %v", reps)
					return
				}
			}
		})
	}
	for i := range 200 {
		cur.Store(rings[i%len(rings)])
	}
	wg.Wait()
}
