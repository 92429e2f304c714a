package replica_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// dropNode is one coordinator over a gated store holding keys in 8
// partitions.
func dropNode(t *testing.T, st *gatedStore) (*replica.Coordinator, *replicatest.Placement) {
	t.Helper()
	pl := replicatest.NewTransitionPlacement([]string{"n1"}, nil, 1, 8, 1)
	st.Partitioner = pl.Partition
	cfg := replica.DefaultConfig()
	cfg.Self, cfg.N, cfg.Store = "n1", 1, st
	cfg.Placement = func() replica.Placement { return pl }
	cfg.Transport = replica.TransportFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
		return replica.Response{}, errors.New("no network in this test")
	})
	co, err := replica.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = co.Close() })
	return co, pl
}

// fill writes count keys and returns how many fell in each partition.
func fill(t *testing.T, co *replica.Coordinator, pl *replicatest.Placement, count int) map[int][][]byte {
	t.Helper()
	parts := map[int][][]byte{}
	for i := range count {
		k := fmt.Appendf(nil, "key-%04d", i)
		if _, err := co.Put(t.Context(), k, []byte("v"), replica.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		parts[pl.Partition(k)] = append(parts[pl.Partition(k)], k)
	}
	return parts
}

// TestDropPartition: dropping pages through the whole partition (several
// pages) and leaves the others alone.
func TestDropPartition(t *testing.T) {
	st := &gatedStore{Store: replicatest.NewStore("inc-n1")}
	co, pl := dropNode(t, st)
	parts := fill(t, co, pl, 10000)
	const p = 3
	if len(parts[p]) <= 1024 { // more than one page
		t.Fatalf("test setup: partition %d has only %d keys", p, len(parts[p]))
	}
	n, err := co.DropPartition(t.Context(), p, func() bool { return true })
	if err != nil || n != len(parts[p]) {
		t.Fatalf("= %d, %v; want %d, nil", n, err, len(parts[p]))
	}
	if keys, _, _ := st.Scan(p, nil, 10, 1<<20); len(keys) != 0 {
		t.Errorf("partition %d still holds %q", p, keys)
	}
	if st.Len() != 10000-len(parts[p]) {
		t.Errorf("store holds %d keys, want %d", st.Len(), 10000-len(parts[p]))
	}
	if n, err := co.DropPartition(t.Context(), p, func() bool { return true }); n != 0 || err != nil {
		t.Errorf("dropping an empty partition: %d, %v", n, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := co.DropPartition(ctx, 4, func() bool { return true }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled drop: err = %v", err)
	}
}

// TestDropRacesStore: the check that the node still must not hold the
// partition runs under the key's lock, so a store that arrives once the
// node holds the partition again survives the drop. Here the drop is
// stopped just before it deletes the second key; the node becomes a
// replica again and a store of that key is applied; the drop then aborts
// and the key keeps the store's data.
func TestDropRacesStore(t *testing.T) {
	st := &gatedStore{Store: replicatest.NewStore("inc-n1")}
	co, pl := dropNode(t, st)
	parts := fill(t, co, pl, 200)
	const p = 5
	keys := parts[p]
	if len(keys) < 3 {
		t.Fatalf("test setup: partition %d has %d keys", p, len(keys))
	}
	var mine atomic.Bool // the node must not hold p
	mine.Store(true)
	_, fresh := vclock.Mint(nil, "inc-n2", vclock.Write{Value: []byte("fresh")})
	st.key = keys[1]
	st.hold = func() {
		mine.Store(false)
		if _, err := co.Handle(context.Background(), "n2", replica.Request{Kind: replica.KindStore, Key: keys[1], Siblings: fresh, Epoch: 2}); err != nil {
			t.Errorf("store during the drop: %v", err)
		}
	}
	n, err := co.DropPartition(t.Context(), p, mine.Load)
	if !errors.Is(err, replica.ErrDropAborted) || n != 1 {
		t.Fatalf("= %d, %v; want 1, ErrDropAborted", n, err)
	}
	if st.Get(keys[0]) != nil {
		t.Error("the first key was not dropped")
	}
	if got := st.Get(keys[1]); !got.Context().Covers(fresh[0].Dot) {
		t.Errorf("the key stored during the drop holds %v", values(got))
	}
	for _, k := range keys[2:] {
		if st.Get(k) == nil {
			t.Errorf("%s dropped after the abort", k)
		}
	}
}

// TestDropConcurrentStores: whatever the interleaving, a store that
// begins after the node holds the partition again is kept.
func TestDropConcurrentStores(t *testing.T) {
	st := &gatedStore{Store: replicatest.NewStore("inc-n1")}
	co, pl := dropNode(t, st)
	parts := fill(t, co, pl, 400)
	const p = 2
	keys := parts[p]
	var mine atomic.Bool
	mine.Store(true)
	stored := make(chan []vclock.Dot, 1)
	go func() {
		var dots []vclock.Dot
		defer func() { stored <- dots }()
		for i, k := range keys {
			if i == len(keys)/2 {
				mine.Store(false)
			}
			if i < len(keys)/2 {
				continue
			}
			_, set := vclock.Mint(nil, "inc-n2", vclock.Write{Value: fmt.Appendf(nil, "fresh-%d", i)})
			if _, err := co.Handle(context.Background(), "n2", replica.Request{Kind: replica.KindStore, Key: k, Siblings: set, Epoch: 2}); err != nil {
				t.Errorf("store: %v", err)
			}
			dots = append(dots, set[0].Dot)
		}
	}()
	_, err := co.DropPartition(t.Context(), p, mine.Load)
	if err != nil && !errors.Is(err, replica.ErrDropAborted) {
		t.Fatal(err)
	}
	dots := <-stored
	for i, d := range dots {
		k := keys[len(keys)/2+i]
		if got := st.Get(k); !got.Context().Covers(d) {
			t.Errorf("%s lost the store made after the node took the partition back", k)
		}
	}
}
