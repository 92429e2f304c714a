package hints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

func TestPace(t *testing.T) {
	for _, tc := range []struct {
		n, rate int
		elapsed time.Duration
		want    time.Duration
	}{
		{100, 1000, 0, 100 * time.Millisecond},
		{100, 1000, 30 * time.Millisecond, 70 * time.Millisecond},
		{100, 1000, time.Second, 0},
		{1, 5000, 0, 200 * time.Microsecond},
		{0, 1000, 0, 0},
		{10, 0, 0, 0},
	} {
		t.Run(fmt.Sprintf("n=%d/rate=%d/elapsed=%v", tc.n, tc.rate, tc.elapsed), func(t *testing.T) {
			if got := pace(tc.n, tc.rate, tc.elapsed); got != tc.want {
				t.Fatalf("pace = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStartNeedsDeliverer(t *testing.T) {
	q := openQueue(t, testConfig(t, t.TempDir()))
	if err := q.Start(t.Context()); err == nil {
		t.Fatal("Start without a Deliverer succeeded")
	}
}

// Hints wait while the target is down, go out when it comes back, and the
// log is reclaimed once everything is acknowledged.
func TestDeliverWhenAlive(t *testing.T) { synctest.Test(t, testDeliverWhenAlive) }

func testDeliverWhenAlive(t *testing.T) {
	sk := newSink()
	cfg := testConfig(t, t.TempDir())
	cfg.Deliverer = sk
	cfg.BatchSize = 64
	q := openQueue(t, cfg)
	q.SetAlive("b", false)
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]vclock.Siblings{}
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i%300)
		want[k] = mint(want[k], "a", fmt.Sprint(i))
		if err := q.StoreHint(t.Context(), "b", []byte(k), want[k]); err != nil {
			t.Fatal(err)
		}
	}
	// Several retry intervals pass while b is down (and every round they
	// started has finished): nothing is sent.
	time.Sleep(5 * cfg.RetryInterval)
	synctest.Wait()
	if n := sk.keys("b"); n != 0 {
		t.Fatalf("%d keys delivered to a down target", n)
	}
	q.SetAlive("b", true)
	testkit.Eventually(t, settle, "delivery", func() bool { return q.PendingFor("b").Hints == 0 })
	for k, s := range want {
		if got := sk.get("b", k); !got.Equal(s) {
			t.Fatalf("%s: target holds %v, want %v", k, got, s)
		}
	}
	testkit.Eventually(t, settle, "log reclaimed", func() bool { return q.PendingFor("b").LogBytes == 0 })
	st := q.Stats()
	if st.Delivered != 300 || st.Stored != 1000 || st.PendingHints != 0 || st.DeliveryLagTotal <= 0 {
		t.Fatalf("stats = %+v", st)
	}
	if len(q.targets["b"].wal.Segments()) != 1 {
		t.Fatalf("segments left: %v", q.targets["b"].wal.Segments())
	}
}

// A failing target keeps its hints; the timer retries until it accepts.
func TestDeliverRetriesAfterFailure(t *testing.T) { synctest.Test(t, testDeliverRetriesAfterFailure) }

func testDeliverRetriesAfterFailure(t *testing.T) {
	sk := newSink()
	sk.setFail("b", errors.New("connection refused"))
	cfg := testConfig(t, t.TempDir())
	cfg.Deliverer = sk
	q := openQueue(t, cfg)
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := mint(nil, "a", "v")
	if err := q.StoreHint(t.Context(), "b", []byte("k"), s); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "failed attempts", func() bool { return q.Stats().DeliveryFailures >= 2 })
	if q.PendingFor("b").Hints != 1 {
		t.Fatal("hint lost after a failed delivery")
	}
	sk.setFail("b", nil)
	testkit.Eventually(t, settle, "delivery after recovery", func() bool { return q.PendingFor("b").Hints == 0 })
	if !sk.get("b", "k").Equal(s) {
		t.Fatal("target does not hold the hint")
	}
}

// Delivering the same batch twice leaves the target as once: the
// receiver merges. Hints recovered after a crash that were in fact
// delivered are sent again, which is therefore harmless.
func TestRedeliveryIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	q, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]vclock.Siblings{}
	for i := range 50 {
		k := fmt.Sprintf("k%d", i%20)
		want[k] = mint(want[k], fmt.Sprintf("actor%d", i%3), fmt.Sprint(i))
		if err := q.StoreHint(t.Context(), "b", []byte(k), want[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	sk := newSink()
	var snap map[string]vclock.Siblings
	for round := range 2 {
		// Reopen over the same log each time: the second run re-sends what
		// the first delivered, as after a crash before reclaiming.
		cfg.Deliverer = sk
		q, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		keys := q.targets["b"].pendingKeys()
		batch, _ := q.targets["b"].batch(keys, 1000, 1<<30, noCutoff)
		if err := sk.Deliver(t.Context(), "b", batch); err != nil {
			t.Fatal(err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			snap = map[string]vclock.Siblings{}
			for k := range want {
				snap[k] = sk.get("b", k)
			}
			continue
		}
		for k, s := range want {
			if got := sk.get("b", k); !got.Equal(snap[k]) || !got.Equal(s) {
				t.Fatalf("%s changed on redelivery: %v -> %v (want %v)", k, snap[k], got, s)
			}
		}
	}
}

// A key hinted again while its batch is in flight stays pending with the
// newer set and goes out in a later round.
func TestAckKeepsNewerSet(t *testing.T) {
	q := openQueue(t, testConfig(t, t.TempDir()))
	s1 := mint(nil, "a", "1")
	if err := q.StoreHint(t.Context(), "b", []byte("k"), s1); err != nil {
		t.Fatal(err)
	}
	tg := q.targets["b"]
	batch, _ := tg.batch(tg.pendingKeys(), 10, 1<<20, noCutoff)
	s2 := mint(s1, "a", "2")
	if err := q.StoreHint(t.Context(), "b", []byte("k"), s2); err != nil {
		t.Fatal(err)
	}
	if err := q.ack(t.Context(), tg, batch, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := tg.index["k"].sibs; !got.Equal(s2) {
		t.Fatalf("pending %v, want the newer %v", got, s2)
	}
	if q.Stats().Delivered != 0 {
		t.Fatal("counted a superseded batch as delivered")
	}
}

// Several targets deliver in parallel; batches respect BatchSize.
func TestDeliverSeveralTargets(t *testing.T) { synctest.Test(t, testDeliverSeveralTargets) }

func testDeliverSeveralTargets(t *testing.T) {
	sk := newSink()
	cfg := testConfig(t, t.TempDir())
	cfg.Deliverer = sk
	cfg.BatchSize = 10
	q := openQueue(t, cfg)
	targets := []string{"b", "c", "d"}
	for _, tg := range targets {
		for i := range 95 {
			if err := q.StoreHint(t.Context(), tg, fmt.Appendf(nil, "k%d", i), mint(nil, "a", tg)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "delivery", func() bool { return q.Stats().PendingHints == 0 })
	for _, tg := range targets {
		if n := sk.keys(tg); n != 95 {
			t.Fatalf("%s got %d keys", tg, n)
		}
	}
	sk.mu.Lock()
	batches := sk.batches
	sk.mu.Unlock()
	if batches < 3*10 {
		t.Fatalf("%d batches for 3x95 hints with BatchSize 10", batches)
	}
}

// A target removed from the ring has its hints re-hinted to each key's
// current replicas, which then receive them; its log is deleted.
func TestRingChangedReroutes(t *testing.T) { synctest.Test(t, testRingChangedReroutes) }

func testRingChangedReroutes(t *testing.T) {
	sk := newSink()
	cfg := testConfig(t, t.TempDir())
	cfg.Deliverer = sk
	cfg.Replicas = func(key []byte) []string {
		if key[len(key)-1]%2 == 0 {
			return []string{"c", "d"}
		}
		return []string{"d", "gone", "e"}
	}
	q := openQueue(t, cfg)
	q.SetAlive("gone", false)
	want := map[string]vclock.Siblings{}
	for i := range 40 {
		k := fmt.Sprintf("k%d", i)
		want[k] = mint(nil, "a", k)
		if err := q.StoreHint(t.Context(), "gone", []byte(k), want[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := q.RingChanged(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if q.PendingFor("gone").Hints != 40 {
		t.Fatal("an empty member list rerouted hints")
	}
	if err := q.RingChanged(t.Context(), []string{"self", "c", "d", "e"}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "rerouted delivery", func() bool { return q.Stats().PendingHints == 0 })
	for k, s := range want {
		reps := cfg.Replicas([]byte(k))
		for _, r := range reps {
			if r == "gone" {
				continue
			}
			if got := sk.get(r, k); !got.Equal(s) {
				t.Fatalf("%s on %s: %v, want %v", k, r, got, s)
			}
		}
	}
	if sk.keys("gone") != 0 {
		t.Fatal("delivered to the removed node")
	}
	if st := q.Stats(); st.Rerouted != 40 || st.DroppedRemoved != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if slices.ContainsFunc(q.Pending(), func(ts TargetStats) bool { return ts.Target == "gone" }) {
		t.Fatal("removed target still listed")
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "gone")); !os.IsNotExist(err) {
		t.Fatalf("removed target's log directory: %v", err)
	}
}

// Many hints to few keys make the log grow; compaction rewrites it to one
// record per key, and a reopen still finds every pending set.
func TestCompaction(t *testing.T) { synctest.Test(t, testCompaction) }

func testCompaction(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SegmentBytes = 4096
	cfg.Deliverer = newSink()
	q, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	q.SetAlive("b", false) // keep the hints pending
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]vclock.Siblings{}
	for i := range 2000 {
		k := fmt.Sprintf("k%d", i%5)
		want[k] = mint(want[k], "a", fmt.Sprint(i))
		if err := q.StoreHint(t.Context(), "b", []byte(k), want[k]); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, settle, "compaction", func() bool {
		p := q.PendingFor("b")
		return p.LogBytes <= q.compactAt(p.Bytes)
	})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2 := openQueue(t, cfg)
	for k, s := range want {
		if got := q2.targets["b"].index[k].sibs; !got.Equal(s) {
			t.Fatalf("%s after compaction and reopen: %v, want %v", k, got, s)
		}
	}
}

// A hint stored for a target while that target is being re-routed (a
// coordinator whose ring still lists it) must not share the log directory
// that the re-route then deletes: StoreHint either refuses it, or the hint
// survives a reopen.
func TestStoreHintDuringReroute(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Fsync = storage.FsyncAlways
	var q *Queue
	var lateErr error
	late := mint(nil, "a", "late")
	calls := 0
	cfg.Replicas = func(key []byte) []string {
		calls++
		if calls == 1 {
			// Runs inside the re-route, after "gone" left the index and
			// before its directory is deleted.
			lateErr = q.StoreHint(context.Background(), "gone", []byte("late"), late)
		}
		return []string{"c"}
	}
	var err error
	if q, err = Open(cfg); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		k := fmt.Sprintf("k%d", i)
		if err := q.StoreHint(t.Context(), "gone", []byte(k), mint(nil, "a", k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Remove(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Fatal("re-route never asked for replicas")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2 := openQueue(t, cfg)
	if lateErr == nil {
		tg := q2.targets["gone"]
		if tg == nil || !tg.index["late"].sibs.Equal(late) {
			t.Fatal("StoreHint acknowledged a hint during the re-route, and it is gone after reopen")
		}
	}
	if got := q2.PendingFor("c").Hints; got != 3 {
		t.Fatalf("c has %d re-routed hints after reopen, want 3", got)
	}
}
