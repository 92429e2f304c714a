package replica_test

import (
	"testing"
	"testing/synctest"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// TestMaxEpochSeen: only a store (not a hint), read or forward that
// passed validation tells a node that a newer plan exists. Any other call,
// or a malformed one, carrying a forged huge epoch must not, or the node
// would never drop a partition again (it waits until its plan catches up
// with MaxEpochSeen).
func TestMaxEpochSeen(t *testing.T) { synctest.Test(t, testMaxEpochSeen) }

func testMaxEpochSeen(t *testing.T) {
	pl := replicatest.NewTransitionPlacement([]string{"n1", "n2", "n3"}, nil, 3, 64, 5)
	c := newChangeCluster(t, 3, 3, pl, func(cfg *replica.Config) { cfg.Hints = &countingSink{} })
	key := []byte("seen")
	_, set := vclock.Mint(nil, "inc-x", vclock.Write{Value: []byte("x")})
	const forged = 1 << 40
	call := func(req replica.Request) error {
		_, err := c.nodes["n1"].Handle(t.Context(), "n2", req)
		return err
	}
	for _, tc := range []struct {
		name string
		req  replica.Request
	}{
		{"ping", replica.Request{Kind: replica.KindPing}},
		{"status", replica.Request{Kind: replica.KindStatus}},
		{"transfer", replica.Request{Kind: replica.KindTransfer, Partition: 1}},
		{"handoff", replica.Request{Kind: replica.KindHandoff, Batch: []replica.Entry{{Key: key, Siblings: set}}}},
		{"hint", replica.Request{Kind: replica.KindStore, Key: key, Siblings: set, HintFor: "n2"}},
		{"store without a key", replica.Request{Kind: replica.KindStore, Siblings: set}},
		{"read without a key", replica.Request{Kind: replica.KindRead}},
		{"forward without a write", replica.Request{Kind: replica.KindForward, Key: key}},
		{"forward without a key", replica.Request{Kind: replica.KindForward, Write: &replica.ForwardWrite{Value: []byte("v")}}},
		{"forward with a bad quorum", replica.Request{Kind: replica.KindForward, Key: key, Write: &replica.ForwardWrite{Value: []byte("v"), W: 4}}},
		{"forward with a bad context", replica.Request{Kind: replica.KindForward, Key: key,
			Write: &replica.ForwardWrite{Value: []byte("v"), HasContext: true, Context: vclock.Clock{{Actor: "", Counter: 1}}}}},
		{"unknown kind", replica.Request{Kind: 99, Key: key}},
	} {
		tc.req.Epoch = forged
		_ = call(tc.req) // some succeed, some fail: neither may count
		if got := c.nodes["n1"].MaxEpochSeen(); got != 0 {
			t.Fatalf("after a %s carrying epoch %d: MaxEpochSeen = %d, want 0", tc.name, uint64(forged), got)
		}
	}

	for _, tc := range []struct {
		name string
		req  replica.Request
	}{
		{"store", replica.Request{Kind: replica.KindStore, Key: key, Siblings: set, Epoch: 6}},
		{"read", replica.Request{Kind: replica.KindRead, Key: key, Epoch: 7}},
		{"forward", replica.Request{Kind: replica.KindForward, Key: key, Write: &replica.ForwardWrite{Value: []byte("v"), W: 2}, Epoch: 8}},
	} {
		if err := call(tc.req); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := c.nodes["n1"].MaxEpochSeen(); got != tc.req.Epoch {
			t.Errorf("after a %s at epoch %d: MaxEpochSeen = %d", tc.name, tc.req.Epoch, got)
		}
	}
}
