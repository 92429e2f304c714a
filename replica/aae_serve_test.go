package replica_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/replica"
)

// TestAAEServeRefusesHostile: the anti-entropy calls refuse bad
// partitions, levels, node and leaf indexes, counts, limits and keys with
// ErrBadRequest (or ErrNotReplica for a partition this node does not
// replicate), over the wire as well as when called directly.
func TestAAEServeRefusesHostile(t *testing.T) {
	c := newAECluster(t, 4, 2, func(*replica.AEConfig) {})
	var mine, notMine int32 = -1, -1
	for p := range int32(aeParts) {
		if slices.Contains(c.place.Replicas(int(p)), "n1") {
			mine = p
		} else {
			notMine = p
		}
	}
	otherKey := keysIn(t, c.place, "x", int(notMine), 1)[0]
	ok := keysIn(t, c.place, "y", int(mine), 1)[0]
	long := keysIn(t, c.place, strings.Repeat("k", 1025), int(mine), 1)[0] // MaxKeyBytes is 1024
	many := func(n int) []uint32 {
		out := make([]uint32, n)
		for i := range out {
			out[i] = uint32(i)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		req  replica.Request
		want error // nil: accepted
	}{
		{"tree root", replica.Request{Kind: replica.KindTree, Partition: mine}, nil},
		{"tree leaves", replica.Request{Kind: replica.KindTree, Partition: mine, AEQuery: &replica.AEQuery{Level: 2, Nodes: []uint32{0, 255}}}, nil},
		{"tree level 3", replica.Request{Kind: replica.KindTree, Partition: mine, AEQuery: &replica.AEQuery{Level: 3}}, replica.ErrBadRequest},
		{"tree level -1", replica.Request{Kind: replica.KindTree, Partition: mine, AEQuery: &replica.AEQuery{Level: -1}}, replica.ErrBadRequest},
		{"tree node 16 at level 1", replica.Request{Kind: replica.KindTree, Partition: mine, AEQuery: &replica.AEQuery{Level: 1, Nodes: []uint32{16}}}, replica.ErrBadRequest},
		{"tree 17 nodes at level 1", replica.Request{Kind: replica.KindTree, Partition: mine, AEQuery: &replica.AEQuery{Level: 1, Nodes: many(17)}}, replica.ErrBadRequest},
		{"tree node twice", replica.Request{Kind: replica.KindTree, Partition: mine, AEQuery: &replica.AEQuery{Level: 2, Nodes: []uint32{3, 3}}}, replica.ErrBadRequest},
		{"tree node 1 at level 0", replica.Request{Kind: replica.KindTree, Partition: mine, AEQuery: &replica.AEQuery{Nodes: []uint32{1}}}, replica.ErrBadRequest},
		{"tree partition -1", replica.Request{Kind: replica.KindTree, Partition: -1}, replica.ErrBadRequest},
		{"tree partition past the ring", replica.Request{Kind: replica.KindTree, Partition: aeParts}, replica.ErrBadRequest},
		{"tree of a partition not here", replica.Request{Kind: replica.KindTree, Partition: notMine}, replica.ErrNotReplica},
		{"keys", replica.Request{Kind: replica.KindKeys, Partition: mine, Limit: replica.MaxDigests, AEQuery: &replica.AEQuery{Nodes: many(256)}}, nil},
		{"keys without leaves", replica.Request{Kind: replica.KindKeys, Partition: mine}, replica.ErrBadRequest},
		{"keys leaf 256", replica.Request{Kind: replica.KindKeys, Partition: mine, AEQuery: &replica.AEQuery{Nodes: []uint32{256}}}, replica.ErrBadRequest},
		{"keys limit -1", replica.Request{Kind: replica.KindKeys, Partition: mine, Limit: -1, AEQuery: &replica.AEQuery{Nodes: []uint32{1}}}, replica.ErrBadRequest},
		{"keys limit too high", replica.Request{Kind: replica.KindKeys, Partition: mine, Limit: replica.MaxDigests + 1, AEQuery: &replica.AEQuery{Nodes: []uint32{1}}}, replica.ErrBadRequest},
		{"keys cursor over two leaves", replica.Request{Kind: replica.KindKeys, Partition: mine, After: []byte("k"), AEQuery: &replica.AEQuery{Nodes: []uint32{1, 2}}}, replica.ErrBadRequest},
		{"keys of a partition not here", replica.Request{Kind: replica.KindKeys, Partition: notMine, AEQuery: &replica.AEQuery{Nodes: []uint32{1}}}, replica.ErrNotReplica},
		{"fetch", replica.Request{Kind: replica.KindFetch, Partition: mine, AEQuery: &replica.AEQuery{Keys: [][]byte{ok}}}, nil},
		{"fetch key of another partition", replica.Request{Kind: replica.KindFetch, Partition: mine, AEQuery: &replica.AEQuery{Keys: [][]byte{ok, otherKey}}}, replica.ErrBadRequest},
		{"fetch key too long", replica.Request{Kind: replica.KindFetch, Partition: mine, AEQuery: &replica.AEQuery{Keys: [][]byte{long}}}, replica.ErrBadRequest},
		{"fetch partition past the ring", replica.Request{Kind: replica.KindFetch, Partition: aeParts + 7, AEQuery: &replica.AEQuery{Keys: [][]byte{ok}}}, replica.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, direct := c.nodes["n1"].Handle(t.Context(), "n2", tc.req)
			_, wire := c.net.Transport("n2").Call(t.Context(), "n1", tc.req)
			for how, err := range map[string]error{"direct": direct, "wire": wire} {
				if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Errorf("%s: %v, want %v", how, err, tc.want)
				}
			}
		})
	}
}

// TestAAEServeWithoutTree: a coordinator without a Tree refuses every
// anti-entropy call with ErrNoTree and says why.
func TestAAEServeWithoutTree(t *testing.T) {
	c := newCluster(t, 2, 2)
	for _, k := range []replica.Kind{replica.KindTree, replica.KindKeys, replica.KindFetch} {
		_, err := c.net.Transport("n2").Call(t.Context(), "n1", replica.Request{Kind: k, AEQuery: &replica.AEQuery{Nodes: []uint32{1}, Keys: [][]byte{[]byte("k")}}})
		if !errors.Is(err, replica.ErrNoTree) || !strings.Contains(err.Error(), "no tree") {
			t.Errorf("%v without a tree: %v", k, err)
		}
	}
}

// TestAAEFetchCutShort: a fetch answer stops after the entry that reaches
// the batch size and says so; the keys after it were not looked up.
func TestAAEFetchCutShort(t *testing.T) {
	c := newAECluster(t, 2, 2, nil)
	c.nodes["n1"].Close()
	// A coordinator with a small batch size over n1's store.
	cfg := replica.DefaultConfig()
	cfg.Self, cfg.N, cfg.Store, cfg.Tree, cfg.Partitions = "n1", 2, c.stores["n1"], c.stores["n1"], aeParts
	cfg.Placement = func() replica.Placement { return c.place }
	cfg.Transport = c.net.Transport("n1")
	cfg.TransferBatchBytes = 100
	co, err := replica.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	keys := keysIn(t, c.place, "f", 3, 5)
	for _, k := range keys[1:] {
		c.apply(t, "n1", k, set("inc-n1", strings.Repeat("v", 60)))
	}
	resp, err := co.Handle(t.Context(), "n2", replica.Request{Kind: replica.KindFetch, Partition: 3, AEQuery: &replica.AEQuery{Keys: keys}})
	if err != nil {
		t.Fatal(err)
	}
	// keys[0] is absent; keys[1] alone is under 100 bytes, keys[2] reaches it.
	if len(resp.Batch) != 2 || !bytes.Equal(resp.Batch[1].Key, keys[2]) || !resp.More {
		t.Fatalf("answer of %d entries, more %v; want keys 1 and 2, more", len(resp.Batch), resp.More)
	}
}
