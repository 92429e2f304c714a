package replica_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// aeParts is the partition count of the test clusters (newClusterWith's
// placement).
const aeParts = 64

// aeCluster is an in-memory cluster whose stores keep hash trees, whose
// coordinators serve anti-entropy calls, and whose nodes each have an
// AntiEntropy driver (not running: tests call Exchange or Run).
type aeCluster struct {
	*cluster
	ae    map[string]*replica.AntiEntropy
	calls *callLog
}

// callLog records the calls anti-entropy drivers make.
type callLog struct {
	mu    sync.Mutex // guards calls
	calls []call
}

type call struct {
	from, to string
	kind     replica.Kind
}

func (l *callLog) add(from, to string, k replica.Kind) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, call{from, to, k})
}

// count returns the calls made from -> to ("" matches any node), of kind
// (0: any).
func (l *callLog) count(from, to string, kind replica.Kind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if (from == "" || c.from == from) && (to == "" || c.to == to) && (kind == 0 || c.kind == kind) {
			n++
		}
	}
	return n
}

// newAECluster builds size nodes with replication factor n; edit may
// change each node's AEConfig.
func newAECluster(t testing.TB, size, n int, edit func(*replica.AEConfig)) *aeCluster {
	t.Helper()
	var names []string
	for i := range size {
		names = append(names, fmt.Sprintf("n%d", i+1))
	}
	// The same partitioning as the cluster's placement (a pure hash).
	part := replicatest.NewPlacement(names, n, aeParts).Partition
	c := &aeCluster{ae: map[string]*replica.AntiEntropy{}, calls: &callLog{}}
	c.cluster = newCluster(t, size, n, func(cfg *replica.Config) {
		st := cfg.Store.(*replicatest.Store)
		st.Partitioner, st.Partitions = part, aeParts
		cfg.Tree, cfg.Partitions, cfg.MaxKeyBytes = st, aeParts, 1024
	})
	for _, name := range names {
		ep := c.net.Transport(name)
		cfg := replica.DefaultAEConfig()
		cfg.Self, cfg.Partitions = name, aeParts
		cfg.Placement = func() replica.Placement { return c.place }
		cfg.Store, cfg.Tree = c.stores[name], c.stores[name]
		cfg.Transport = replica.TransportFunc(func(ctx context.Context, to string, req replica.Request) (replica.Response, error) {
			c.calls.add(name, to, req.Kind)
			return ep.Call(ctx, to, req)
		})
		cfg.Liveness = c.live
		cfg.Logger = testkit.Logger(t)
		if edit != nil {
			edit(&cfg)
		}
		a, err := replica.NewAntiEntropy(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.ae[name] = a
	}
	return c
}

// set mints a set of one value written by actor.
func set(actor, val string) vclock.Siblings {
	_, s := vclock.Mint(nil, actor, vclock.Write{Value: []byte(val)})
	return s
}

// apply merges s into node's store directly, as if a write reached it
// alone.
func (c *aeCluster) apply(t testing.TB, node string, key []byte, s vclock.Siblings) {
	t.Helper()
	if _, err := c.stores[node].Apply(context.Background(), key, s); err != nil {
		t.Fatal(err)
	}
}

// wipe forgets every key node holds, as a replaced disk would.
func (c *aeCluster) wipe(t testing.TB, node string) {
	t.Helper()
	st := c.stores[node]
	for p := range aeParts {
		for _, k := range st.Keys(p) {
			if _, err := st.Update(context.Background(), k, func(vclock.Siblings) (vclock.Siblings, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// exchangeAll exchanges every partition node replicates with each of its
// other replicas, failing the test on an error, and returns the results.
func (c *aeCluster) exchangeAll(t testing.TB, node string) []replica.ExchangeResult {
	t.Helper()
	var out []replica.ExchangeResult
	for p := range aeParts {
		reps := c.place.Replicas(p)
		if !slices.Contains(reps, node) {
			continue
		}
		for _, peer := range reps {
			if peer == node {
				continue
			}
			res, err := c.ae[node].Exchange(context.Background(), p, peer)
			if err != nil {
				t.Fatalf("exchange of %d with %s: %v", p, peer, err)
			}
			out = append(out, res)
		}
	}
	return out
}

// sameEverywhere fails unless every replica of each key in keys holds
// want[key] (nil want: the set on the first replica).
func (c *aeCluster) sameEverywhere(t testing.TB, keys [][]byte, want map[string]vclock.Siblings) {
	t.Helper()
	for _, k := range keys {
		reps := c.replicasOf(k)
		w, ok := want[string(k)]
		if !ok {
			w = c.stores[reps[0]].Get(k)
		}
		for _, r := range reps {
			if got := c.stores[r].Get(k); !got.Equal(w) {
				t.Fatalf("%s on %s: %v, want %v", k, r, got, w)
			}
		}
	}
}

// keysIn returns n keys (prefix-i) of partition p.
func keysIn(t testing.TB, place *replicatest.Placement, prefix string, p, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; len(out) < n; i++ {
		if i > 1_000_000 {
			t.Fatal("not enough keys found")
		}
		k := []byte(fmt.Sprintf("%s-%d", prefix, i))
		if place.Partition(k) == p {
			out = append(out, k)
		}
	}
	return out
}
