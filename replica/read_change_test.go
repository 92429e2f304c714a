package replica_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
)

// TestReadAcrossCommit (B1): S = {n1, n2, n3} is moving to T = {n1, n2,
// n4}. n1 and n4 have installed the commit (epoch 3: T serves alone), n2
// and n3 still follow the change (epoch 2). n1 writes at W=2 with n2 cut
// off: n1 and n4, two of T, acknowledge. n3, retiring, reads at R=2 and
// hears n2 before n1. R of S alone (n3 and n2, both empty) would answer
// 404 for an acknowledged write; a joint read also needs R of T, which
// overlaps the write's W of T, so it finds the value. Read repair then
// brings n2 and n3 up to date, and a delete through n3, whose read before
// delete is the same joint read, removes the value.
func TestReadAcrossCommit(t *testing.T) { synctest.Test(t, testReadAcrossCommit) }

func testReadAcrossCommit(t *testing.T) {
	s, tg := []string{"n1", "n2", "n3"}, []string{"n1", "n2", "n4"}
	change := replicatest.NewTransitionPlacement(s, tg, 3, 64, 2)
	commit := replicatest.NewTransitionPlacement(tg, nil, 3, 64, 3)
	c := newChangeCluster(t, 4, 3, change)
	c.swap(commit, "n1", "n4")
	key := []byte("b1")
	if p := change.Partition(key); !slices.Equal(change.Pending(p), []string{"n4"}) || !slices.Contains(change.Replicas(p), "n3") {
		t.Fatalf("test setup: replicas %v, pending %v", change.Replicas(p), change.Pending(p))
	}

	c.net.Cut("n1", "n2")
	res := c.mustPut("n1", key, "acked", replica.WriteOptions{W: 2})
	if res.Replies != 2 {
		t.Fatalf("write acknowledged by %d, want 2 (n1 and n4)", res.Replies)
	}
	c.drain()
	c.net.Heal()
	for _, n := range []string{"n2", "n3"} {
		if got := c.stores[n].Get(key); len(got) != 0 {
			t.Fatalf("test setup: %s holds %v", n, values(got))
		}
	}

	c.net.Delay("n3", "n1", time.Second) // n2's empty answer comes first
	got := c.mustGet("n3", key, 2)
	if !slices.Equal(values(got.Siblings), []string{"acked"}) {
		t.Fatalf("R=2 through n3 (epoch 2) = %v, want [acked]: an acknowledged write is lost", values(got.Siblings))
	}
	c.drain()
	for _, n := range []string{"n2", "n3"} {
		if v := values(c.stores[n].Get(key)); !slices.Equal(v, []string{"acked"}) {
			t.Errorf("after read repair %s holds %v, want [acked]", n, v)
		}
	}
	c.net.Heal()

	// The read before a blind delete is the joint read too.
	if _, err := c.nodes["n3"].Delete(t.Context(), key, replica.WriteOptions{W: 2, R: 2}); err != nil {
		t.Fatal(err)
	}
	c.drain()
	if v := values(c.mustGet("n1", key, replica.QuorumAll).Siblings); len(v) != 0 {
		t.Errorf("after the delete through n3 a read through n1 finds %v", v)
	}
}

// TestJointReadUnavailable: the read pre-check applies to each side. With
// n1 and n4 down, n3 reaches R=2 of S (itself and n2) but only n2 of T:
// refused before anything is asked, naming the short side.
func TestJointReadUnavailable(t *testing.T) { synctest.Test(t, testJointReadUnavailable) }

func testJointReadUnavailable(t *testing.T) {
	s, tg := []string{"n1", "n2", "n3"}, []string{"n1", "n2", "n4"}
	change := replicatest.NewTransitionPlacement(s, tg, 3, 64, 2)
	c := newChangeCluster(t, 4, 3, change)
	key := []byte("pre")
	c.live.SetAlive("n1", false)
	c.live.SetAlive("n4", false)
	calls := c.net.Calls()
	_, err := c.nodes["n3"].Get(t.Context(), key, replica.ReadOptions{R: 2})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || !qe.Unavailable || qe.Need != 2 || qe.Reachable != 2 || qe.TargetNeed != 2 || qe.TargetReachable != 1 {
		t.Fatalf("err = %v, want unavailable with the target side short", err)
	}
	if !strings.Contains(err.Error(), "get unavailable") || !strings.Contains(err.Error(), "need 2, only 1 reachable of the replicas after the change") {
		t.Errorf("message %q does not name the short side", err)
	}
	if c.net.Calls() != calls {
		t.Error("an unavailable read sent calls")
	}
	// n4 back: both sides reachable, and the read answers (not found).
	c.live.SetAlive("n4", true)
	if res := c.mustGet("n3", key, 2); len(res.Siblings) != 0 || res.Replies < 3 {
		t.Errorf("read with n1 down: %v from %d replies, want nothing from at least 3 (n3, n2, n4)", values(res.Siblings), res.Replies)
	}
}
