package replica_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/replica"
)

// readsServed is how many replica reads each of nodes has served.
func (c *cluster) readsServed(nodes ...string) []uint64 {
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		out[i] = c.nodes[n].Stats().ReadsServed
	}
	return out
}

// askedBy runs a read of key via node at r and returns which of the
// other nodes it asked (their ReadsServed grew) and the result.
func (c *cluster) askedBy(node string, key []byte, r replica.Quorum) ([]string, replica.Result) {
	c.t.Helper()
	before := c.readsServed(c.names...)
	res := c.mustGet(node, key, r)
	c.drain()
	after := c.readsServed(c.names...)
	var asked []string
	for i, n := range c.names {
		if after[i] != before[i] {
			asked = append(asked, n)
		}
	}
	return asked, res
}

func TestReadAsksWhatRNeeds(t *testing.T) {
	// No hedge within the test: on a loaded machine a healthy replica
	// may take longer than the default 5 ms, and a hedge asks one more.
	c := newCluster(t, 4, 3, func(cfg *replica.Config) { cfg.ReadHedge = time.Hour })
	key := c.keyOn("k", "n1")
	reps := c.replicasOf(key)
	c.mustPut("n1", key, "v", replica.WriteOptions{W: replica.QuorumAll})
	c.drain()
	outside := ""
	for _, n := range c.names {
		if !slices.Contains(reps, n) {
			outside = n
		}
	}
	for _, tc := range []struct {
		via  string
		r    replica.Quorum
		want []string
	}{
		{"n1", 1, nil},                                       // the local replica alone
		{"n1", 2, reps[1:2]},                                 // local + the first other
		{"n1", replica.QuorumAll, reps[1:]},                  // R=all asks all
		{reps[2], 2, reps[:1]},                               // the first of the list, not itself
		{outside, 2, slices.Sorted(slices.Values(reps[:2]))}, // no local replica: the first two
	} {
		asked, res := c.askedBy(tc.via, key, tc.r)
		slices.Sort(asked)
		want := slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(asked, want) {
			t.Errorf("R=%v via %s asked %v, want %v", tc.r, tc.via, asked, want)
		}
		if got := values(res.Siblings); !slices.Equal(got, []string{"v"}) {
			t.Errorf("R=%v via %s read %v", tc.r, tc.via, got)
		}
	}
	if h := c.nodes["n1"].Stats().ReadHedges; h != 0 {
		t.Errorf("%d speculative retries without a slow or failed replica", h)
	}
}

func TestReadHedgeZeroAsksAll(t *testing.T) {
	c := newCluster(t, 3, 3, func(cfg *replica.Config) { cfg.ReadHedge = 0 })
	key := c.keyOn("k", "n1")
	reps := c.replicasOf(key)
	c.mustPut("n1", key, "v", replica.WriteOptions{W: replica.QuorumAll})
	c.drain()
	asked, _ := c.askedBy("n1", key, 2)
	slices.Sort(asked)
	if want := slices.Sorted(slices.Values(reps[1:])); !slices.Equal(asked, want) {
		t.Errorf("ReadHedge 0 asked %v, want every other replica %v", asked, want)
	}
}

// TestReadHedgeSlowReplica: a replica asked first that does not answer
// within ReadHedge makes the read ask the next one; the read answers when
// that one does, at the hedge delay (fake time), not at the slow one's.
func TestReadHedgeSlowReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, 3)
		key := c.keyOn("k", "n1")
		reps := c.replicasOf(key)
		c.mustPut("n1", key, "v", replica.WriteOptions{W: replica.QuorumAll})
		c.drain()
		c.net.Delay("n1", reps[1], time.Second)
		start := time.Now()
		res := c.mustGet("n1", key, 2)
		if took := time.Since(start); took != replica.DefaultReadHedge {
			t.Errorf("read took %v, want the hedge delay %v", took, replica.DefaultReadHedge)
		}
		if res.Replies != 2 || !slices.Equal(values(res.Siblings), []string{"v"}) {
			t.Errorf("read: %d replies, %v", res.Replies, values(res.Siblings))
		}
		if h := c.nodes["n1"].Stats().ReadHedges; h != 1 {
			t.Errorf("%d speculative retries, want 1", h)
		}
		c.drain()
		if got := c.readsServed(reps[1:]...); !slices.Equal(got, []uint64{1, 1}) {
			t.Errorf("reads served by %v: %v, want one each", reps[1:], got)
		}
	})
}

// TestReadHedgeFailedReplica: a failure among the replicas asked first
// asks the others at once, without waiting for the hedge delay.
func TestReadHedgeFailedReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, 3)
		key := c.keyOn("k", "n1")
		reps := c.replicasOf(key)
		c.mustPut("n1", key, "v", replica.WriteOptions{W: replica.QuorumAll})
		c.drain()
		c.net.Cut("n1", reps[1])
		start := time.Now()
		res := c.mustGet("n1", key, 2)
		if took := time.Since(start); took != 0 {
			t.Errorf("read took %v of fake time, want 0 (no waiting for the hedge)", took)
		}
		if res.Replies != 2 {
			t.Errorf("read: %d replies, want 2", res.Replies)
		}
		if h := c.nodes["n1"].Stats().ReadHedges; h != 1 {
			t.Errorf("%d speculative retries, want 1", h)
		}
	})
}

// TestReadQuorumErrorNamesFailures: when the replicas asked first and
// then the rest fail, the error names each of them.
func TestReadQuorumErrorNamesFailures(t *testing.T) {
	c := newCluster(t, 3, 3)
	key := c.keyOn("k", "n1")
	reps := c.replicasOf(key)
	c.net.Cut("n1", reps[1])
	c.net.Cut("n1", reps[2])
	_, err := c.nodes["n1"].Get(context.Background(), key, replica.ReadOptions{R: 2})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("read with both other replicas cut: %v", err)
	}
	if qe.Need != 2 || qe.Got != 1 || qe.Unavailable {
		t.Errorf("need %d, got %d, unavailable %v; want 2, 1, false", qe.Need, qe.Got, qe.Unavailable)
	}
	for _, n := range reps[1:] {
		if !errors.Is(qe.Failures[n], replica.ErrUnreachable) {
			t.Errorf("failure of %s: %v, want ErrUnreachable", n, qe.Failures[n])
		}
	}
}

// TestLocalReadKeepsSemantics checks the read that the local replica alone
// answers (R=1 here, ReadHedge on): it returns the store's whole set,
// tombstones and siblings included, with its context, asks nobody, and
// counts a replica known down as a failed replica call, as a read that
// asks replicas does.
func TestLocalReadKeepsSemantics(t *testing.T) {
	c := newCluster(t, 3, 3)
	key := c.keyOn("k", "n1")
	reps := c.replicasOf(key)
	first := c.mustPut("n1", key, "a", replica.WriteOptions{W: replica.QuorumAll})
	// Two writes with the first's context: concurrent siblings b and c.
	c.mustPut("n1", key, "b", withCtx(first.Context(), replica.QuorumAll))
	c.mustPut("n1", key, "c", withCtx(first.Context(), replica.QuorumAll))
	other := c.keyOn("t", "n1")
	w := c.mustPut("n1", other, "x", replica.WriteOptions{W: replica.QuorumAll})
	if _, err := c.nodes["n1"].Delete(context.Background(), other, withCtx(w.Context(), replica.QuorumAll)); err != nil {
		t.Fatal(err)
	}
	c.drain()
	c.live.SetAlive(reps[2], false)
	for _, k := range [][]byte{key, other} {
		want := c.stores["n1"].Get(k)
		before := c.nodes["n1"].Stats().ReplicaFailures
		asked, res := c.askedBy("n1", k, 1)
		if asked != nil {
			t.Errorf("key %q: asked %v, want nobody", k, asked)
		}
		if !res.Siblings.Equal(want) || len(want) == 0 {
			t.Errorf("key %q: read %v, want the store's %v", k, res.Siblings, want)
		}
		if !res.Context().Equal(want.Context()) || res.Replies != 1 {
			t.Errorf("key %q: context %v, replies %d; want %v, 1", k, res.Context(), res.Replies, want.Context())
		}
		if got := c.nodes["n1"].Stats().ReplicaFailures - before; got != 1 {
			t.Errorf("key %q: %d replica failures counted, want 1 (one replica down)", k, got)
		}
	}
	if got := values(c.mustGet("n1", key, 1).Siblings); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("read %v, want the siblings b and c", got)
	}
}
