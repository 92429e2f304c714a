package replica_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// seesWrite reports whether a read result holds the version with dot d or
// a descendant of it (a version whose context covers d).
func seesWrite(res replica.Result, d vclock.Dot) bool {
	return res.Context().Covers(d)
}

// dotOf returns the dot of the version holding val in a write result.
func dotOf(t *testing.T, res replica.Result, val string) vclock.Dot {
	t.Helper()
	for _, v := range res.Siblings {
		if !v.Tombstone && string(v.Value) == val {
			return v.Dot
		}
	}
	t.Fatalf("write result %v lacks %q", values(res.Siblings), val)
	return vclock.Dot{}
}

// TestReadYourWrites: with W+R > N, every read after an acknowledged write
// sees it or a descendant, through any coordinator, while one random node
// at a time is partitioned away.
func TestReadYourWrites(t *testing.T) {
	for _, tc := range []struct{ size, n, r, w int }{
		{3, 3, 2, 2}, {3, 3, 1, 3}, {3, 3, 3, 1}, {5, 3, 2, 2}, {5, 5, 3, 3}, {5, 5, 2, 4},
	} {
		t.Run(fmt.Sprintf("nodes=%d/N=%d/R=%d/W=%d", tc.size, tc.n, tc.r, tc.w), inBubble(func(t *testing.T) {
			seed := rand.Uint64()
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 0))
			c := newCluster(t, tc.size, tc.n)
			keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}
			acked := 0
			for i := range 60 {
				c.net.Heal()
				if rng.IntN(2) == 0 {
					c.net.Isolate(c.names[rng.IntN(tc.size)])
				}
				key := keys[rng.IntN(len(keys))]
				via := c.names[rng.IntN(tc.size)]
				val := fmt.Sprintf("v%d", i)
				o := replica.WriteOptions{W: replica.Quorum(tc.w)}
				if rng.IntN(2) == 0 {
					// Half the writers read first and pass the context.
					if prev, err := c.nodes[via].Get(t.Context(), key, replica.ReadOptions{R: replica.QuorumOne}); err == nil {
						o = withCtx(prev.Context(), replica.Quorum(tc.w))
					}
				}
				res, err := c.put(via, key, val, o)
				if err != nil {
					if !errors.Is(err, replica.ErrQuorum) {
						t.Fatalf("put: %v", err)
					}
					continue // not acknowledged: no promise to check
				}
				acked++
				d := dotOf(t, res, val)
				// Read through every node that can reach a quorum.
				for _, reader := range c.names {
					got, err := c.nodes[reader].Get(t.Context(), key, replica.ReadOptions{R: replica.Quorum(tc.r)})
					if errors.Is(err, replica.ErrQuorum) {
						continue
					}
					if err != nil {
						t.Fatalf("get via %s: %v", reader, err)
					}
					if !seesWrite(got, d) {
						t.Fatalf("read via %s after write %s (dot %v) sees only %v", reader, val, d, values(got.Siblings))
					}
				}
			}
			if acked < 20 {
				t.Errorf("only %d of 60 writes acknowledged; the test proves little", acked)
			}
		}))
	}
}

// TestSiblingsResolveDeleteResurrect: concurrent writes with one context
// become siblings; the merged context resolves them; a delete reads as not
// found; a write with the delete's context brings the key back.
func TestSiblingsResolveDeleteResurrect(t *testing.T) {
	for _, size := range []int{3, 5} {
		for _, sameCoordinator := range []bool{true, false} {
			t.Run(fmt.Sprintf("nodes=%d/same_coordinator=%v", size, sameCoordinator), inBubble(func(t *testing.T) {
				c := newCluster(t, size, 3)
				key := c.keyOn("sib", "n2")
				reps := c.replicasOf(key)
				first, second := reps[0], reps[1]
				if sameCoordinator {
					second = first
				}
				base := c.mustPut(first, key, "v0", replica.WriteOptions{})
				c.mustPut(first, key, "alice", withCtx(base.Context(), 0))
				c.mustPut(second, key, "bob", withCtx(base.Context(), 0))
				got := c.mustGet(c.names[size-1], key, 0)
				if d := cmp.Diff([]string{"alice", "bob"}, sorted(values(got.Siblings))); d != "" {
					t.Fatalf("siblings (-want +got):\n%s", d)
				}
				res := c.mustPut(c.names[0], key, "merged", withCtx(got.Context(), 0))
				got = c.mustGet(c.names[size-1], key, replica.QuorumAll)
				if d := cmp.Diff([]string{"merged"}, values(got.Siblings)); d != "" {
					t.Fatalf("after resolving (-want +got):\n%s", d)
				}
				del, err := c.nodes[c.names[1]].Delete(t.Context(), key, withCtx(res.Context(), 0))
				if err != nil {
					t.Fatal(err)
				}
				got = c.mustGet(c.names[2], key, 0)
				if len(got.Siblings.Live()) != 0 || len(got.Siblings) != 1 || !got.Siblings[0].Tombstone {
					t.Fatalf("after delete: %+v, want one tombstone and no live sibling", got.Siblings)
				}
				c.mustPut(c.names[0], key, "again", withCtx(del.Context(), 0))
				got = c.mustGet(c.names[size-1], key, 0)
				if d := cmp.Diff([]string{"again"}, values(got.Siblings)); d != "" || len(got.Siblings) != 1 {
					t.Fatalf("after resurrect (-want +got):\n%s (set %+v)", d, got.Siblings)
				}
			}))
		}
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestPartitionedReplica: with one replica cut off, W=2 and R=2 succeed,
// W=3 fails naming it; after healing, a read repairs it.
func TestPartitionedReplica(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", size), inBubble(func(t *testing.T) {
			c := newCluster(t, size, 3)
			key := c.keyOn("part", "n1")
			reps := c.replicasOf(key)
			lost := reps[2]
			c.net.Isolate(lost)
			w2 := c.mustPut(reps[0], key, "one", replica.WriteOptions{W: 2})
			if w2.Replies < 2 {
				t.Errorf("W=2 answered with %d replies", w2.Replies)
			}
			if got := c.mustGet(reps[1], key, 2); !slices.Equal(values(got.Siblings), []string{"one"}) {
				t.Fatalf("R=2 read: %v", values(got.Siblings))
			}
			_, err := c.put(reps[0], key, "two", withCtx(w2.Context(), 3))
			var qe *replica.QuorumError
			if !errors.As(err, &qe) || !errors.Is(err, replica.ErrQuorum) {
				t.Fatalf("W=3 with %s cut off: err = %v, want a QuorumError", lost, err)
			}
			// The coordinator answers as soon as the quorum is out of reach,
			// so the other replica's ack may or may not have arrived yet.
			if qe.Need != 3 || qe.Got < 1 || qe.Got > 2 || qe.Failures[lost] == nil || len(qe.Failures) != 1 {
				t.Errorf("quorum error = %+v, want need 3, got 1 or 2, failure of %s only", qe, lost)
			}
			if !strings.Contains(err.Error(), lost) || !errors.Is(qe.Failures[lost], replica.ErrUnreachable) {
				t.Errorf("error %q does not name %s and its cause", err, lost)
			}
			c.drain()
			if got := c.stores[lost].Get(key); got != nil {
				t.Fatalf("partitioned replica has %v", got)
			}
			// Heal and read: the read repairs the replica that missed both writes.
			c.net.Heal()
			before := c.nodes[reps[1]].Stats().ReadRepairs
			got := c.mustGet(reps[1], key, replica.QuorumAll)
			if !slices.Equal(values(got.Siblings), []string{"two"}) {
				t.Fatalf("read after heal: %v", values(got.Siblings))
			}
			c.drain()
			if local := c.stores[lost].Get(key); !local.Equal(got.Siblings) {
				t.Fatalf("after read repair %s holds %v, want %v", lost, local, got.Siblings)
			}
			if n := c.nodes[reps[1]].Stats().ReadRepairs - before; n != 1 {
				t.Errorf("read repairs = %d, want 1", n)
			}
		}))
	}
}

// TestDownReplicaSkipped: a replica liveness reports down is not called
// and is named as the failure.
func TestDownReplicaSkipped(t *testing.T) { synctest.Test(t, testDownReplicaSkipped) }

func testDownReplicaSkipped(t *testing.T) {
	c := newCluster(t, 3, 3)
	key := c.keyOn("down", "n1")
	c.live.SetAlive("n3", false)
	calls := c.net.Calls()
	c.mustPut("n1", key, "x", replica.WriteOptions{W: 2})
	c.drain()
	if got := c.net.Calls() - calls; got != 1 {
		t.Errorf("%d calls, want 1 (n2 only)", got)
	}
	_, err := c.put("n1", key, "y", replica.WriteOptions{W: replica.QuorumAll})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || !errors.Is(qe.Failures["n3"], replica.ErrReplicaDown) {
		t.Fatalf("err = %v, want n3 down", err)
	}
	if _, err := c.nodes["n1"].Get(t.Context(), key, replica.ReadOptions{R: 3}); !errors.Is(err, replica.ErrQuorum) {
		t.Fatalf("R=3 with n3 down: err = %v", err)
	}
}

// TestSlowReplica: a replica delayed far beyond the request deadline does
// not hold up an R=1 read or a W=1 write: they answer from the fast
// replicas (had they waited, they would fail at the deadline).
func TestSlowReplica(t *testing.T) { synctest.Test(t, testSlowReplica) }

func testSlowReplica(t *testing.T) {
	c := newCluster(t, 5, 3)
	key := c.keyOn("slow", "n1")
	reps := c.replicasOf(key) // n1 n2 n3
	c.mustPut(reps[0], key, "before", replica.WriteOptions{W: replica.QuorumAll})
	slow := reps[1:]
	for _, s := range slow {
		c.net.Delay("", s, time.Hour)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	res, err := c.nodes[reps[0]].Put(ctx, key, []byte("fast"), replica.WriteOptions{W: 1})
	if err != nil || res.Replies != 1 {
		t.Fatalf("W=1 with slow replicas: %+v, %v", res, err)
	}
	// In the bubble only waiting moves the clock: an answer from the fast
	// replicas takes no time at all.
	if d := time.Since(start); d != 0 {
		t.Fatalf("W=1 write with two replicas delayed 1h waited %v", d)
	}
	// Read through a node that is not a replica, so every answer crosses
	// the network: n1 is fast, n2 and n3 are stalled.
	reader := "n5"
	if slices.Contains(reps, reader) {
		t.Fatalf("test setup: %s is a replica of %v", reader, reps)
	}
	start = time.Now()
	got, err := c.nodes[reader].Get(ctx, key, replica.ReadOptions{R: 1})
	if err != nil || !slices.Equal(values(got.Siblings), []string{"fast"}) || got.Replies != 1 {
		t.Fatalf("R=1 read with slow replicas: %+v, %v", got, err)
	}
	if d := time.Since(start); d != 0 {
		t.Fatalf("R=1 read with two replicas delayed 1h waited %v", d)
	}
	if ctx.Err() != nil {
		t.Fatal("requests only finished at the deadline")
	}
	cancel()
}

// TestPartialHistory: a client that reads from a replica holding only part
// of a key's history and writes with that context loses nothing: versions
// the context does not cover survive as siblings.
func TestPartialHistory(t *testing.T) { synctest.Test(t, testPartialHistory) }

func testPartialHistory(t *testing.T) {
	c := newCluster(t, 3, 3)
	key := c.keyOn("hist", "n1")
	// Two concurrent writes through n1; n3 misses the second.
	c.mustPut("n1", key, "v1", withCtx(nil, replica.QuorumAll))
	c.net.Isolate("n3")
	c.mustPut("n1", key, "v2", withCtx(nil, 2))
	c.drain()
	// The client talks to n3 alone: R=1 sees v1 only, and writes over it.
	c.net.Heal()
	c.net.Partition("n3", "n1")
	c.net.Partition("n3", "n2")
	r := c.mustGet("n3", key, 1)
	if !slices.Equal(values(r.Siblings), []string{"v1"}) {
		t.Fatalf("n3 holds %v, want the partial history [v1]", values(r.Siblings))
	}
	c.mustPut("n3", key, "v3", withCtx(r.Context(), 1))
	c.drain()
	c.net.Heal()
	got := c.mustGet("n2", key, replica.QuorumAll)
	if d := cmp.Diff([]string{"v2", "v3"}, sorted(values(got.Siblings))); d != "" {
		t.Fatalf("after heal (-want +got):\n%s", d)
	}
	c.drain()
	for _, n := range c.names {
		if s := c.stores[n].Get(key); !s.Equal(got.Siblings) {
			t.Errorf("%s holds %v after read repair, want %v", n, values(s), values(got.Siblings))
		}
	}
}

// TestForward: a node outside the preference list forwards a write to the
// first live replica, which mints the dot; a down first replica is skipped.
func TestForward(t *testing.T) { synctest.Test(t, testForward) }

func testForward(t *testing.T) {
	c := newCluster(t, 5, 3)
	key := c.keyOn("fwd", "n2") // n2 n3 n4
	res := c.mustPut("n1", key, "x", replica.WriteOptions{})
	if d := dotOf(t, res, "x"); d.Actor != "inc-n2" {
		t.Errorf("dot %v minted by %s, want inc-n2", d, d.Actor)
	}
	if s := c.nodes["n1"].Stats(); s.Forwards != 1 || s.Puts != 1 {
		t.Errorf("n1 stats %+v", s)
	}
	if s := c.nodes["n2"].Stats(); s.ForwardsServed != 1 {
		t.Errorf("n2 stats %+v", s)
	}
	if c.stores["n1"].Len() != 0 {
		t.Error("the forwarding node stored the key")
	}
	c.live.SetAlive("n2", false)
	del, err := c.nodes["n5"].Delete(t.Context(), key, withCtx(res.Context(), 2))
	if err != nil {
		t.Fatal(err)
	}
	if del.Siblings[0].Dot.Actor != "inc-n3" || !del.Siblings[0].Tombstone {
		t.Errorf("delete with n2 down: %+v, want a tombstone minted by n3", del.Siblings)
	}
	// Quorum errors come back through the forward intact.
	c.net.Isolate("n4")
	_, err = c.put("n1", key, "y", replica.WriteOptions{W: replica.QuorumAll})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || qe.Need != 3 || (qe.Failures["n4"] == nil && qe.Failures["n2"] == nil) {
		t.Fatalf("forwarded W=all: %v", err)
	}
	// All replicas unreachable for forwarding: a quorum error naming them.
	c.net.Heal()
	c.live.SetAlive("n3", false)
	c.live.SetAlive("n4", false)
	_, err = c.put("n1", key, "z", replica.WriteOptions{W: 1})
	if !errors.As(err, &qe) || len(qe.Failures) != 3 {
		t.Fatalf("forward with every replica down: %v", err)
	}
}

// TestQuorumValidation: an R or W outside 1..N fails before anything is
// sent; a cluster smaller than N serves with the replicas it has.
func TestQuorumValidation(t *testing.T) { synctest.Test(t, testQuorumValidation) }

func testQuorumValidation(t *testing.T) {
	c := newCluster(t, 3, 3)
	key := []byte("k")
	calls := c.net.Calls()
	for _, q := range []replica.Quorum{4, -7, 100} {
		if _, err := c.put("n1", key, "x", replica.WriteOptions{W: q}); !errors.Is(err, replica.ErrBadQuorum) {
			t.Errorf("W=%d: err = %v", q, err)
		}
		if _, err := c.nodes["n1"].Get(t.Context(), key, replica.ReadOptions{R: q}); !errors.Is(err, replica.ErrBadQuorum) {
			t.Errorf("R=%d: err = %v", q, err)
		}
	}
	if c.net.Calls() != calls {
		t.Error("invalid quorum sent calls")
	}
	for _, n := range c.names {
		if c.stores[n].Len() != 0 {
			t.Errorf("invalid quorum wrote to %s", n)
		}
	}
	if _, err := c.put("n1", nil, "x", replica.WriteOptions{}); !errors.Is(err, replica.ErrBadRequest) {
		t.Errorf("empty key: %v", err)
	}
	bad := vclock.Clock{{Actor: "b", Counter: 1}, {Actor: "a", Counter: 1}}
	if _, err := c.put("n1", key, "x", withCtx(bad, 0)); !errors.Is(err, replica.ErrBadRequest) || !errors.Is(err, vclock.ErrBadContext) {
		t.Errorf("malformed context: %v", err)
	}
	// A context from versions this cluster never saw is normal.
	foreign := vclock.Clock{{Actor: "inc-elsewhere", Counter: 42}, {Actor: "inc-n1", Counter: 7}}
	res := c.mustPut("n1", key, "x", withCtx(foreign, 0))
	if d := dotOf(t, res, "x"); d.Counter <= 7 {
		t.Errorf("dot %v minted inside the client's context", d)
	}

	small := newCluster(t, 2, 3) // two nodes, N=3
	for _, q := range []replica.Quorum{replica.QuorumAll, 3, replica.QuorumMajority} {
		r, err := small.put("n1", key, "x", replica.WriteOptions{W: q})
		if err != nil || r.Replies != 2 {
			t.Errorf("2-node cluster W=%v: %+v, %v", q, r, err)
		}
	}
	if _, err := small.put("n1", key, "x", replica.WriteOptions{W: 4}); !errors.Is(err, replica.ErrBadQuorum) {
		t.Errorf("W=4 > N: %v", err)
	}
}

// TestLocalStoreFailure: a coordinator whose disk fails answers with a
// quorum error naming itself and sends nothing.
func TestLocalStoreFailure(t *testing.T) { synctest.Test(t, testLocalStoreFailure) }

func testLocalStoreFailure(t *testing.T) {
	c := newCluster(t, 3, 3)
	key := c.keyOn("disk", "n1")
	c.stores["n1"].FailWith(errors.New("disk full"))
	calls := c.net.Calls()
	_, err := c.put("n1", key, "x", replica.WriteOptions{W: 1})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || qe.Failures["n1"] == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
	if c.net.Calls() != calls {
		t.Error("a write that failed locally was sent to other replicas")
	}
}

// TestReadYourWritesTCP runs a short write/read sequence over loopback TCP.
func TestReadYourWritesTCP(t *testing.T) {
	c := newTCPCluster(t, 3, 3)
	key := []byte("tcp-key")
	var ctx vclock.Clock
	for i := range 20 {
		via := c.names[i%3]
		res := c.mustPut(via, key, fmt.Sprint(i), withCtx(ctx, 0))
		got := c.mustGet(c.names[(i+1)%3], key, 0)
		if !slices.Equal(values(got.Siblings), []string{fmt.Sprint(i)}) {
			t.Fatalf("read %d: %v", i, values(got.Siblings))
		}
		ctx = res.Context()
	}
}
