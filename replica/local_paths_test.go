package replica_test

import (
	"slices"
	"testing"
	"testing/synctest"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
)

// These tests pin the conditions under which a read or write is answered
// by this node's store alone (readLocal, commitLocal): in each case below
// the local store is not enough, and the request must take the general
// path.

// TestLocalReadJointAsksTarget: during a membership change an R=1 read
// through a current replica that is no replica after the change needs one
// of the targets too (joint quorum): it asks one and finds the write the
// reading node missed.
func TestLocalReadJointAsksTarget(t *testing.T) { synctest.Test(t, testLocalReadJointAsksTarget) }

func testLocalReadJointAsksTarget(t *testing.T) {
	s, tg := []string{"n1", "n2", "n3"}, []string{"n1", "n2", "n4"}
	change := replicatest.NewTransitionPlacement(s, tg, 3, 64, 2)
	c := newChangeCluster(t, 4, 3, change)
	key, part := mustKey(t, change, "joint", func(p int) bool {
		return slices.Contains(change.Replicas(p), "n3") && slices.Equal(change.Pending(p), []string{"n4"})
	})
	c.net.Cut("n1", "n3")
	c.mustPut("n1", key, "v", replica.WriteOptions{W: 2})
	c.drain()
	c.net.Heal()
	if got := c.stores["n3"].Get(key); len(got) != 0 {
		t.Fatalf("test setup: n3 holds %v", values(got))
	}
	asked, res := c.askedBy("n3", key, 1)
	if !slices.ContainsFunc(asked, func(n string) bool { return slices.Contains(change.Targets(part), n) }) {
		t.Errorf("R=1 through n3 during the change asked %v, none of the targets %v", asked, change.Targets(part))
	}
	if got := values(res.Siblings); !slices.Equal(got, []string{"v"}) {
		t.Errorf("R=1 through n3 during the change read %v, want [v]", got)
	}
}

// TestLocalReadHedgeZeroRepairs: with ReadHedge 0 an R=1 read through a
// replica asks every replica at once, answers with its own copy, and
// repairs a replica that answered with less.
func TestLocalReadHedgeZeroRepairs(t *testing.T) { synctest.Test(t, testLocalReadHedgeZeroRepairs) }

func testLocalReadHedgeZeroRepairs(t *testing.T) {
	c := newCluster(t, 3, 3, func(cfg *replica.Config) { cfg.ReadHedge = 0 })
	key := c.keyOn("k", "n1")
	stale := c.replicasOf(key)[2]
	c.mustPut("n1", key, "old", replica.WriteOptions{W: replica.QuorumAll})
	c.drain()
	c.net.Cut("n1", stale)
	c.mustPut("n1", key, "new", replica.WriteOptions{W: 2})
	c.drain()
	c.net.Heal()
	if got := values(c.stores[stale].Get(key)); !slices.Equal(got, []string{"old"}) {
		t.Fatalf("test setup: %s holds %v, want [old]", stale, got)
	}
	asked, res := c.askedBy("n1", key, 1)
	if len(asked) != 2 {
		t.Errorf("R=1 with ReadHedge 0 asked %v, want both other replicas", asked)
	}
	if got := values(res.Siblings); !slices.Equal(got, []string{"new"}) {
		t.Errorf("read %v, want [new]", got)
	}
	if got := values(c.stores[stale].Get(key)); !slices.Equal(got, []string{"new"}) {
		t.Errorf("after the read %s holds %v, want [new] (read repair)", stale, got)
	}
}

// TestLocalWriteJointReachesTarget: a write of a key with one replica
// (N=1) while the key moves to another node needs the target's copy too
// (joint quorum): the coordinator sends it and counts both.
func TestLocalWriteJointReachesTarget(t *testing.T) {
	synctest.Test(t, testLocalWriteJointReachesTarget)
}

func testLocalWriteJointReachesTarget(t *testing.T) {
	change := replicatest.NewTransitionPlacement([]string{"n1"}, []string{"n2"}, 1, 64, 2)
	c := newChangeCluster(t, 2, 1, change)
	key := []byte("moving")
	for _, via := range []string{"n1", "n2"} { // n2, pending, forwards to n1
		res := c.mustPut(via, key, via, replica.WriteOptions{})
		if res.Replies != 2 {
			t.Errorf("write via %s during the change: %d replies, want 2 (n1 and n2)", via, res.Replies)
		}
		c.drain()
		if got := c.stores["n2"].Get(key); !got.Equal(res.Siblings) {
			t.Errorf("after the write via %s n2 holds %v, want %v", via, values(got), values(res.Siblings))
		}
	}
	c.net.Cut("n1", "n2")
	if _, err := c.put("n1", key, "cut", replica.WriteOptions{}); err == nil {
		t.Error("a write that cannot reach the key's only target succeeded")
	}
}
