package hints

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/ringkv/ringkv/internal/testkit"
)

// A hint stored for a removed node after its re-route finished (sent by a
// coordinator whose ring view still had the node) used to stay pending for
// good: re-routes happened only when the ring changed. The retry timer now
// re-routes it to the key's current replicas.
func TestLateHintForRemovedTargetRerouted(t *testing.T) {
	synctest.Test(t, testLateHintForRemovedTargetRerouted)
}

func testLateHintForRemovedTargetRerouted(t *testing.T) {
	sk := newSink()
	cfg := testConfig(t, t.TempDir())
	cfg.Deliverer = sk
	cfg.Replicas = func([]byte) []string { return []string{"c", "gone"} }
	q := openQueue(t, cfg)
	q.SetAlive("gone", false)
	early := mint(nil, "a", "early")
	if err := q.StoreHint(t.Context(), "gone", []byte("k1"), early); err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := q.RingChanged(t.Context(), []string{"self", "c"}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "first re-route delivered", func() bool { return sk.get("c", "k1").Equal(early) })
	late := mint(nil, "a", "late")
	if err := q.StoreHint(t.Context(), "gone", []byte("k2"), late); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "late hint re-routed", func() bool { return q.PendingFor("gone").Hints == 0 })
	testkit.Eventually(t, settle, "late hint delivered to the current replica", func() bool { return sk.get("c", "k2").Equal(late) })
	if sk.keys("gone") != 0 {
		t.Fatal("delivered to the removed node")
	}
	if st := q.Stats(); st.Rerouted != 2 || st.DroppedRemoved != 0 {
		t.Fatalf("Rerouted = %d, DroppedRemoved = %d; want 2 and 0", st.Rerouted, st.DroppedRemoved)
	}
}

// RingSnapshot counts as gone only names an earlier snapshot listed: a
// target no snapshot has listed (recovered before gossip learned it) keeps
// its hints, a node that left has later hints re-routed on the timer, and
// one listed again keeps its new hints.
func TestRingSnapshotReroutesOnlyNodesThatLeft(t *testing.T) {
	synctest.Test(t, testRingSnapshotReroutesOnlyNodesThatLeft)
}

func testRingSnapshotReroutesOnlyNodesThatLeft(t *testing.T) {
	sk := newSink()
	down := errors.New("connection refused")
	sk.setFail("x", down)
	sk.setFail("b", down)
	cfg := testConfig(t, t.TempDir())
	cfg.Deliverer = sk
	cfg.Replicas = func([]byte) []string { return []string{"c"} }
	q := openQueue(t, cfg)
	store := func(target, key string) {
		t.Helper()
		if err := q.StoreHint(t.Context(), target, []byte(key), mint(nil, "a", key)); err != nil {
			t.Fatal(err)
		}
	}
	store("x", "kx")
	store("b", "kb1")
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// waitTicks lets several retry ticks pass (each starts a round for x).
	waitTicks := func() {
		t.Helper()
		r0 := q.Stats().Rounds
		testkit.Eventually(t, settle, "retry ticks", func() bool { return q.Stats().Rounds >= r0+4 })
	}
	for _, snap := range [][]string{{"self", "b", "c"}, {"self", "b", "c", "d"}} {
		if err := q.RingSnapshot(t.Context(), snap); err != nil {
			t.Fatal(err)
		}
	}
	waitTicks()
	if q.PendingFor("x").Hints != 1 || q.PendingFor("b").Hints != 1 || q.Stats().Rerouted != 0 {
		t.Fatalf("re-routed while every target was a member or unknown: %+v", q.Stats())
	}
	if err := q.RingSnapshot(t.Context(), []string{"self", "c", "d"}); err != nil {
		t.Fatal(err)
	}
	if q.PendingFor("b").Hints != 0 || q.Stats().Rerouted != 1 {
		t.Fatalf("b left the ring: pending %d, rerouted %d", q.PendingFor("b").Hints, q.Stats().Rerouted)
	}
	store("b", "kb2") // late, from a coordinator with an older ring
	testkit.Eventually(t, settle, "late hint re-routed by the timer", func() bool { return q.Stats().Rerouted == 2 })
	if q.PendingFor("x").Hints != 1 {
		t.Fatal("hints of a target no snapshot listed were re-routed")
	}
	// b rejoins: its hints stay its own.
	if err := q.RingSnapshot(t.Context(), []string{"self", "b", "c", "d"}); err != nil {
		t.Fatal(err)
	}
	store("b", "kb3")
	waitTicks()
	if q.PendingFor("b").Hints != 1 || q.Stats().Rerouted != 2 {
		t.Fatalf("rejoined b: pending %d, rerouted %d; want 1 and 2", q.PendingFor("b").Hints, q.Stats().Rerouted)
	}
	testkit.Eventually(t, settle, "re-routed hints delivered", func() bool { return sk.keys("c") == 2 })
}
