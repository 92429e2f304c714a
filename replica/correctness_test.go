package replica_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// TestForgedContextRefused: a context naming a counter no node could have
// minted is a bad request, and it leaves the key writable. Before, a
// counter of 2^64-1 made Mint wrap to 0 and every later write fail.
func TestForgedContextRefused(t *testing.T) { synctest.Test(t, testForgedContextRefused) }

func testForgedContextRefused(t *testing.T) {
	c := newCluster(t, 3, 3)
	key := c.keyOn("forged", "n1")
	c.mustPut("n1", key, "v1", replica.WriteOptions{})
	for _, ctr := range []uint64{math.MaxUint64, vclock.CounterLimit + 1} {
		forged := vclock.Clock{{Actor: "inc-n1", Counter: ctr}}
		_, err := c.put("n1", key, "evil", withCtx(forged, 0))
		if !errors.Is(err, replica.ErrBadRequest) || !errors.Is(err, vclock.ErrBadContext) || !strings.Contains(err.Error(), "beyond what any node can mint") {
			t.Fatalf("counter %d: err = %v, want a bad request naming the counter", ctr, err)
		}
	}
	// The highest plausible counter is accepted and minting above it still
	// works for every later write.
	edge := vclock.Clock{{Actor: "inc-n1", Counter: vclock.CounterLimit}}
	res := c.mustPut("n1", key, "edge", withCtx(edge, 0))
	for i := range 3 {
		res = c.mustPut("n1", key, fmt.Sprint("after", i), withCtx(res.Context(), 0))
	}
	if got := values(c.mustGet("n2", key, replica.QuorumAll).Siblings); !slices.Equal(got, []string{"after2"}) {
		t.Fatalf("after the edge context the key holds %v", got)
	}
}

// TestDeleteWithoutContextRemovesWhatAReadReturns: a replica that missed
// a write coordinates a delete without a context; the delete still removes
// the value, because it reads at R first. Before, its tombstone covered
// only what the coordinator held, and the value lived on elsewhere.
func TestDeleteWithoutContextRemovesWhatAReadReturns(t *testing.T) {
	synctest.Test(t, testDeleteWithoutContextRemovesWhatAReadReturns)
}

func testDeleteWithoutContextRemovesWhatAReadReturns(t *testing.T) {
	c := newCluster(t, 3, 3)
	keys := make([][]byte, 10)
	c.net.Isolate("n3")
	c.live.SetAlive("n3", false)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("k%d", i))
		c.mustPut("n1", keys[i], "v", replica.WriteOptions{W: 2})
	}
	c.drain()
	c.net.Heal()
	c.live.SetAlive("n3", true)
	for _, k := range keys {
		if c.stores["n3"].Get(k) != nil {
			t.Fatalf("n3 holds %s though it was cut off", k)
		}
		if _, err := c.nodes["n3"].Delete(t.Context(), k, replica.WriteOptions{}); err != nil {
			t.Fatalf("delete %s via n3: %v", k, err)
		}
	}
	c.drain()
	for _, k := range keys {
		if got := values(c.mustGet("n1", k, replica.QuorumAll).Siblings); len(got) != 0 {
			t.Errorf("%s after delete via n3: %v, want not found", k, got)
		}
	}
	// A read that misses its quorum fails the delete, and nothing is
	// written.
	c.live.SetAlive("n2", false)
	c.live.SetAlive("n3", false)
	before := c.stores["n1"].Get(keys[0])
	_, err := c.nodes["n1"].Delete(t.Context(), keys[0], replica.WriteOptions{W: 1, R: replica.QuorumAll})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || !strings.Contains(qe.Op, "read before delete") {
		t.Fatalf("delete whose read misses R: %v", err)
	}
	if !c.stores["n1"].Get(keys[0]).Equal(before) {
		t.Error("a delete whose read failed wrote a tombstone")
	}
}

// TestQuorumErrorCounts: a 503 says what answered, what was asked and has
// not answered, and what was never asked. Before, with 2 of 3 replicas
// alive an R=all read said "need 3, got 1".
func TestQuorumErrorCounts(t *testing.T) { synctest.Test(t, testQuorumErrorCounts) }

func testQuorumErrorCounts(t *testing.T) {
	c := newCluster(t, 3, 3)
	key := c.keyOn("counts", "n1")
	c.mustPut("n1", key, "v", replica.WriteOptions{W: replica.QuorumAll})

	c.live.SetAlive("n3", false)
	calls := c.net.Calls()
	_, err := c.nodes["n1"].Get(t.Context(), key, replica.ReadOptions{R: replica.QuorumAll})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || !qe.Unavailable || qe.Need != 3 || qe.Reachable != 2 || qe.Got != 0 || qe.Failures["n3"] == nil {
		t.Fatalf("R=all with n3 down: %+v", err)
	}
	if !strings.Contains(err.Error(), "need 3, only 2 reachable; nothing was sent") {
		t.Errorf("message %q does not say what was reachable", err)
	}
	if c.net.Calls() != calls {
		t.Error("an unavailable read asked replicas")
	}

	// Liveness says all are up, but n3 is cut off and n2 is slow: the
	// read gives up at n3's failure and names n2 as asked, not answered.
	c.live.SetAlive("n3", true)
	c.net.Cut("n1", "n3")
	c.net.Delay("n1", "n2", time.Minute)
	_, err = c.nodes["n1"].Get(t.Context(), key, replica.ReadOptions{R: replica.QuorumAll})
	if !errors.As(err, &qe) || qe.Unavailable || qe.Got != 1 || !slices.Equal(qe.Pending, []string{"n2"}) || qe.Failures["n3"] == nil {
		t.Fatalf("R=all with n3 cut and n2 slow: %+v", err)
	}
	if !strings.Contains(err.Error(), "need 3, got 1, no answer yet from n2") {
		t.Errorf("message %q does not name the pending replica", err)
	}
	c.net.Heal()
}

// TestUnavailableWriteStoresNothing: a coordinator whose liveness says it
// cannot reach W replicas refuses before writing. Before, it stored the
// write, answered 503, and the write came back as a sibling once the cut
// healed.
func TestUnavailableWriteStoresNothing(t *testing.T) {
	synctest.Test(t, testUnavailableWriteStoresNothing)
}

func testUnavailableWriteStoresNothing(t *testing.T) {
	c := newCluster(t, 3, 3)
	key := c.keyOn("cut", "n1")
	c.net.Isolate("n1")
	c.live.SetAlive("n2", false)
	c.live.SetAlive("n3", false)
	calls := c.net.Calls()
	for i := range 5 {
		_, err := c.put("n1", key, fmt.Sprint("lost", i), replica.WriteOptions{W: 2})
		var qe *replica.QuorumError
		if !errors.As(err, &qe) || !qe.Unavailable || qe.Need != 2 || qe.Reachable != 1 {
			t.Fatalf("write %d cut off: %v", i, err)
		}
	}
	if c.stores["n1"].Len() != 0 || c.net.Calls() != calls {
		t.Fatalf("refused writes stored %d keys and made %d calls", c.stores["n1"].Len(), c.net.Calls()-calls)
	}
	// W=1 is still served by the coordinator alone.
	c.mustPut("n1", key, "ok", replica.WriteOptions{W: 1})
	c.net.Heal()
	c.live.SetAlive("n2", true)
	c.live.SetAlive("n3", true)
	if got := values(c.mustGet("n2", key, replica.QuorumAll).Siblings); !slices.Equal(got, []string{"ok"}) {
		t.Fatalf("after heal the key holds %v, want only the acknowledged write", got)
	}
}

// TestForwardRetriesNextLiveReplica: a forward whose first target cannot
// be reached goes to the next live replica instead of failing.
func TestForwardRetriesNextLiveReplica(t *testing.T) {
	synctest.Test(t, testForwardRetriesNextLiveReplica)
}

func testForwardRetriesNextLiveReplica(t *testing.T) {
	c := newCluster(t, 5, 3)
	key := c.keyOn("retry", "n2") // n2 n3 n4
	c.net.Cut("n1", "n2")         // n1 cannot reach n2; liveness still says up
	res, err := c.put("n1", key, "x", replica.WriteOptions{W: 2})
	if err != nil {
		t.Fatalf("forward with the first replica unreachable: %v", err)
	}
	if d := dotOf(t, res, "x"); d.Actor != "inc-n3" {
		t.Fatalf("dot minted by %s, want the next replica inc-n3", d.Actor)
	}
	// Every replica unreachable: a quorum error that names each.
	c.net.Cut("n1", "n3")
	c.net.Cut("n1", "n4")
	_, err = c.put("n1", key, "y", replica.WriteOptions{W: 2})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || len(qe.Failures) != 3 {
		t.Fatalf("forward with no replica reachable: %v", err)
	}
}

// TestForwardNotRetriedAfterItRan: a forward whose target ran it and then
// lost the connection (it crashed after storing) is not sent to the next
// replica. Retrying there minted a second version of the same write; the
// client's context then named only the second, so the first came back as
// a sibling of the client's next write: an overwritten value alive again
// (found by the chaos kill scenario).
func TestForwardNotRetriedAfterItRan(t *testing.T) {
	synctest.Test(t, testForwardNotRetriedAfterItRan)
}

func testForwardNotRetriedAfterItRan(t *testing.T) {
	c := newCluster(t, 5, 3)
	key := c.keyOn("ran", "n2") // n2 n3 n4
	if slices.Contains(c.replicasOf(key), "n1") {
		t.Fatalf("test setup: n1 is a replica of %q (%v)", key, c.replicasOf(key))
	}
	c.net.BreakAfter("n1", "n2")
	forwards := c.nodes["n1"].Stats().Forwards
	_, err := c.put("n1", key, "x", replica.WriteOptions{W: 2})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || qe.Unavailable || !errors.Is(qe.Failures["n2"], replica.ErrConnLost) {
		t.Fatalf("forward whose answer was lost: %v; want a quorum error, not unavailable, naming n2's lost connection", err)
	}
	if n := c.nodes["n1"].Stats().Forwards - forwards; n != 1 {
		t.Fatalf("forwarded %d times, want 1 (no retry after the target ran it)", n)
	}
	c.net.Heal()
	c.drain()
	read := c.mustGet("n1", key, replica.QuorumAll)
	if got := values(read.Siblings); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("after the lost answer: %v, want the one version n2 stored", got)
	}
	// The next write with the read's context covers it: nothing comes back.
	c.mustPut("n1", key, "y", withCtx(read.Context(), 2))
	c.drain()
	if got := values(c.mustGet("n3", key, replica.QuorumAll).Siblings); !slices.Equal(got, []string{"y"}) {
		t.Fatalf("after a write with the read's context: %v, want [y]", got)
	}

}

// TestSiblingCap: a key cannot grow past MaxSiblings versions through
// client writes; a write with the context of a read resolves them.
func TestSiblingCap(t *testing.T) { synctest.Test(t, testSiblingCap) }

func testSiblingCap(t *testing.T) {
	// Four nodes, N=3, so that a key can have a preference list without n1
	// and a write through n1 is forwarded.
	c := newCluster(t, 4, 3, func(cfg *replica.Config) { cfg.MaxSiblings, cfg.WarnSiblings = 5, 3 })
	key := c.keyOn("cap", "n1")
	for i := range 5 {
		c.mustPut("n1", key, fmt.Sprint("s", i), withCtx(nil, 0))
	}
	_, err := c.put("n1", key, "s5", withCtx(nil, 0))
	if !errors.Is(err, replica.ErrTooManySiblings) || !strings.Contains(err.Error(), "more than 5") {
		t.Fatalf("6th sibling: %v", err)
	}
	// Through a forward the sentinel survives the wire. n1 is not a
	// replica of other: it forwards to n2, which coordinated (and stored
	// locally) all five writes. Were n1 a replica it would check its own
	// copy, which may still lack the third copies of writes acknowledged
	// at W=2.
	other := c.keyOn("cap-fwd", "n2")
	if slices.Contains(c.replicasOf(other), "n1") {
		t.Fatalf("test setup: n1 is a replica of %q (%v)", other, c.replicasOf(other))
	}
	for i := range 5 {
		c.mustPut("n2", other, fmt.Sprint("s", i), withCtx(nil, 0))
	}
	forwards := c.nodes["n1"].Stats().Forwards
	if _, err := c.put("n1", other, "s5", withCtx(nil, 0)); !errors.Is(err, replica.ErrTooManySiblings) {
		t.Fatalf("6th sibling via a forward: %v", err)
	}
	if n := c.nodes["n1"].Stats().Forwards - forwards; n != 1 {
		t.Fatalf("the 6th sibling was forwarded %d times, want 1", n)
	}
	read := c.mustGet("n1", key, replica.QuorumAll)
	if len(read.Siblings) != 5 {
		t.Fatalf("refused write changed the set: %v", values(read.Siblings))
	}
	c.mustPut("n1", key, "resolved", withCtx(read.Context(), 0))
	if got := values(c.mustGet("n2", key, replica.QuorumAll).Siblings); !slices.Equal(got, []string{"resolved"}) {
		t.Fatalf("after resolving: %v", got)
	}
	// A blind write never grows the set, so it is never refused.
	for i := range 5 {
		c.mustPut("n1", other, fmt.Sprint("b", i), replica.WriteOptions{})
	}
}
