package replica_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// hinted is a cluster whose nodes keep hints in real hints.Queues on disk
// (fsync none: durability across a process crash is the e2e test's job).
type hinted struct {
	*cluster
	dir    string
	edit   func(*hints.Config)
	mu     sync.Mutex // guards queues
	queues map[string]*hints.Queue
	sinks  map[string]*sink
}

// sink is the coordinator's HintSink: it forwards to the node's current
// queue, so a test can close and reopen the queue as a restart would.
type sink struct{ q atomic.Pointer[hints.Queue] }

func (s *sink) StoreHint(ctx context.Context, target string, key []byte, set vclock.Siblings) error {
	return s.q.Load().StoreHint(ctx, target, key, set)
}

// deliverer adapts Coordinator.Handoff to hints.Deliverer, as node does.
func deliverer(co func() *replica.Coordinator) hints.Deliverer {
	return hints.DelivererFunc(func(ctx context.Context, target string, batch []hints.Hint) error {
		entries := make([]replica.Entry, len(batch))
		for i, h := range batch {
			entries[i] = replica.Entry{Key: h.Key, Siblings: h.Siblings}
		}
		return co().Handoff(ctx, target, entries)
	})
}

func newHinted(t *testing.T, size, n int, edit func(*hints.Config)) *hinted {
	h := &hinted{dir: t.TempDir(), edit: edit, queues: map[string]*hints.Queue{}, sinks: map[string]*sink{}}
	var names []string
	for i := range size {
		names = append(names, fmt.Sprintf("n%d", i+1))
	}
	for _, name := range names {
		h.sinks[name] = &sink{}
	}
	h.cluster = newCluster(t, size, n, func(cfg *replica.Config) {
		cfg.Hints = h.sinks[cfg.Self]
		cfg.Timeout = 5 * time.Second
	})
	for _, name := range names {
		h.openQueue(t, name)
	}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, q := range h.queues {
			_ = q.Close()
		}
	})
	return h
}

// openQueue opens (or reopens) name's queue over its directory and starts
// delivery.
func (h *hinted) openQueue(t *testing.T, name string) *hints.Queue {
	t.Helper()
	cfg := hints.DefaultConfig()
	cfg.Dir = filepath.Join(h.dir, name, "hints")
	cfg.Fsync = storage.FsyncNone
	cfg.RetryInterval = 50 * time.Millisecond
	cfg.DeliveryRate = 200_000
	cfg.Logger = testkit.Logger(t).With("node", name)
	cfg.Deliverer = deliverer(func() *replica.Coordinator { return h.nodes[name] })
	cfg.Replicas = func(key []byte) []string { return h.replicasOf(key) }
	if h.edit != nil {
		h.edit(&cfg)
	}
	q, err := hints.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range h.names {
		if !h.live.Alive(n) {
			q.SetAlive(n, false)
		}
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.queues[name] = q
	h.mu.Unlock()
	h.sinks[name].q.Store(q)
	return q
}

func (h *hinted) queue(name string) *hints.Queue {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.queues[name]
}

// down stops a node: gossip reports it dead and the network cuts it off.
func (h *hinted) down(node string) {
	h.live.SetAlive(node, false)
	h.net.Isolate(node)
	for _, n := range h.names {
		h.queue(n).SetAlive(node, false)
	}
}

// up brings every node back.
func (h *hinted) up(nodes ...string) {
	h.net.Heal()
	for _, node := range nodes {
		h.live.SetAlive(node, true)
		for _, n := range h.names {
			h.queue(n).SetAlive(node, true)
		}
	}
}

// pendingFor sums the hints every node holds for target.
func (h *hinted) pendingFor(target string) (hints, logBytes int64) {
	for _, n := range h.names {
		p := h.queue(n).PendingFor(target)
		hints += int64(p.Hints)
		logBytes += p.LogBytes
	}
	return hints, logBytes
}

// settle bounds the hint tests' waits (testkit.Eventually in the test's
// synctest bubble), in fake time: it counts retry rounds, not how fast a
// loaded machine runs them.
const settle = 30 * time.Second

// TestHintedHandoffOneDown: N=3, W=2, one replica down: 10,000 writes all
// succeed; when it comes back its store holds every one of them and every
// fallback's hint log for it is empty.
func TestHintedHandoffOneDown(t *testing.T) { synctest.Test(t, testHintedHandoffOneDown) }

func testHintedHandoffOneDown(t *testing.T) {
	h := newHinted(t, 4, 3, nil)
	h.down("n2")
	const writes, keys, workers = 10000, 2500, 8
	var mu sync.Mutex
	final := map[string]vclock.Siblings{} // key -> coordinator's set after its last write
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range workers {
		wg.Go(func() {
			via := []string{"n1", "n3", "n4"}[w%3]
			for i := w; i < writes; i += workers {
				// Each key is written by one worker, so its last result is its
				// final set.
				k := fmt.Sprintf("key-%d", i%keys)
				res, err := h.put(via, []byte(k), fmt.Sprint(i), replica.WriteOptions{W: 2})
				if err != nil {
					failed.Add(1)
					t.Errorf("write %d: %v", i, err)
					return
				}
				mu.Lock()
				final[k] = vclock.Merge(final[k], res.Siblings)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	h.drain()
	onN2 := 0
	for k := range final {
		if slices.Contains(h.replicasOf([]byte(k)), "n2") {
			onN2++
		}
	}
	pending, _ := h.pendingFor("n2")
	t.Logf("%d of %d keys have n2 as a replica; %d pending hints for it", onN2, keys, pending)
	if pending != int64(onN2) || h.stores["n2"].Len() != 0 {
		t.Fatalf("pending hints %d, want %d (n2 holds %d keys)", pending, onN2, h.stores["n2"].Len())
	}
	// A stand-in restarts while holding hints: they are replayed from disk.
	for _, n := range []string{"n1", "n3", "n4"} {
		if err := h.queue(n).Close(); err != nil {
			t.Fatal(err)
		}
		h.openQueue(t, n)
	}
	if p, _ := h.pendingFor("n2"); p != pending {
		t.Fatalf("after stand-in restart %d pending, want %d", p, pending)
	}

	start := time.Now()
	h.up("n2")
	testkit.Eventually(t, settle, "hints for n2 delivered and logs reclaimed", func() bool {
		p, b := h.pendingFor("n2")
		return p == 0 && b == 0
	})
	t.Logf("handoff of %d hints took %v", pending, time.Since(start))
	for k, s := range final {
		if !slices.Contains(h.replicasOf([]byte(k)), "n2") {
			continue
		}
		if got := h.stores["n2"].Get([]byte(k)); !got.Equal(s) {
			t.Fatalf("%s on n2: %v, want %v", k, values(got), values(s))
		}
	}
}

// TestSloppyQuorumTwoDown: N=3, W=2 with two replicas down: writes succeed
// through two stand-ins under sloppy quorum and fail under strict quorum.
func TestSloppyQuorumTwoDown(t *testing.T) { synctest.Test(t, testSloppyQuorumTwoDown) }

func testSloppyQuorumTwoDown(t *testing.T) {
	h := newHinted(t, 5, 3, nil)
	key := h.keyOn("two", "n1")    // n1 n2 n3; fallbacks n4 n5
	fwdKey := h.keyOn("fwd", "n2") // n2 n3 n4; coordinated by n4
	h.down("n2")
	h.down("n3")

	res, err := h.put("n1", key, "sloppy", replica.WriteOptions{W: 2})
	if err != nil || res.Replies < 2 || res.Hinted < 1 {
		t.Fatalf("sloppy W=2 with two down: %+v, %v", res, err)
	}
	res2, err := h.put("n5", fwdKey, "sloppy-fwd", replica.WriteOptions{W: 2})
	if err != nil || res2.Replies < 2 {
		t.Fatalf("forwarded sloppy W=2 with two down: %+v, %v", res2, err)
	}
	if d := dotOf(t, res2, "sloppy-fwd"); d.Actor != "inc-n4" {
		t.Fatalf("dot minted by %s, want the live primary inc-n4", d.Actor)
	}
	h.drain()
	// Each down replica got its own stand-in.
	if a, b := h.queue("n4").PendingFor("n2").Hints+h.queue("n4").PendingFor("n3").Hints,
		h.queue("n5").PendingFor("n2").Hints+h.queue("n5").PendingFor("n3").Hints; a < 1 || b < 1 {
		t.Fatalf("stand-ins n4 and n5 hold %d and %d hints", a, b)
	}

	// Strict quorum: liveness already says one of the key's replicas is
	// up, so the write is refused before anything is stored or hinted.
	hintsBefore := h.queue("n4").PendingFor("n2").Hints + h.queue("n4").PendingFor("n3").Hints +
		h.queue("n5").PendingFor("n2").Hints + h.queue("n5").PendingFor("n3").Hints
	_, err = h.put("n1", key, "strict", replica.WriteOptions{W: 2, Strict: true})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || qe.Need != 2 || qe.Got != 0 || !qe.Unavailable || qe.Reachable != 1 {
		t.Fatalf("strict W=2 with two down: %v", err)
	}
	_, err = h.put("n5", fwdKey, "strict-fwd", replica.WriteOptions{W: 2, Strict: true})
	if !errors.As(err, &qe) || !qe.Unavailable {
		t.Fatalf("forwarded strict W=2 with two down: %v", err)
	}
	h.drain()
	if after := h.queue("n4").PendingFor("n2").Hints + h.queue("n4").PendingFor("n3").Hints +
		h.queue("n5").PendingFor("n2").Hints + h.queue("n5").PendingFor("n3").Hints; after != hintsBefore {
		t.Fatalf("refused strict writes left hints: %d before, %d after", hintsBefore, after)
	}
	// The sloppy writes' hints reach the replicas once they are back; the
	// refused strict writes were stored nowhere.
	h.up("n2", "n3")
	testkit.Eventually(t, settle, "delivery", func() bool {
		a, _ := h.pendingFor("n2")
		b, _ := h.pendingFor("n3")
		return a+b == 0
	})
	for _, n := range []string{"n1", "n2", "n3"} {
		if got := values(h.stores[n].Get(key)); !slices.Equal(got, []string{"sloppy"}) {
			t.Errorf("%s holds %v for key, want [sloppy]", n, got)
		}
	}
	for _, n := range []string{"n2", "n3", "n4"} {
		if got := values(h.stores[n].Get(fwdKey)); !slices.Equal(got, []string{"sloppy-fwd"}) {
			t.Errorf("%s holds %v for fwdKey, want [sloppy-fwd]", n, got)
		}
	}
	if h.stores["n5"].Get(key) != nil {
		t.Error("stand-in n5 stored the key in its own data")
	}
}

// TestStandInNeverMints: two writes sent through a stand-in with the same
// context are coordinated by a live primary and get two distinct dots;
// the stand-in mints nothing and keeps both in its hint.
func TestStandInNeverMints(t *testing.T) { synctest.Test(t, testStandInNeverMints) }

func testStandInNeverMints(t *testing.T) {
	h := newHinted(t, 4, 3, nil)
	key := h.keyOn("mint", "n1") // n1 n2 n3; fallback n4
	h.mustPut("n1", key, "base", replica.WriteOptions{W: replica.QuorumAll})
	base := h.mustGet("n1", key, replica.QuorumAll)
	h.down("n1")
	a := h.mustPut("n4", key, "a", withCtx(base.Context(), 2))
	b := h.mustPut("n4", key, "b", withCtx(base.Context(), 2))
	da, db := dotOf(t, a, "a"), dotOf(t, b, "b")
	if da == db {
		t.Fatalf("two writes through stand-in n4 share dot %v", da)
	}
	for _, d := range []vclock.Dot{da, db} {
		if d.Actor == "inc-n4" || d.Actor == "inc-n1" {
			t.Fatalf("dot %v minted by a stand-in or a down node", d)
		}
	}
	if s := h.nodes["n4"].Stats(); s.Forwards != 2 {
		t.Fatalf("n4 forwarded %d writes, want 2", s.Forwards)
	}
	h.drain()
	if h.stores["n4"].Get(key) != nil {
		t.Fatal("stand-in n4 stored the key in its own data")
	}
	if p := h.queue("n4").PendingFor("n1"); p.Hints != 1 {
		t.Fatalf("n4 holds %+v for n1", p)
	}
	h.up("n1")
	testkit.Eventually(t, settle, "delivery to n1", func() bool { p, _ := h.pendingFor("n1"); return p == 0 })
	if got := sorted(values(h.stores["n1"].Get(key))); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("n1 holds %v, want siblings [a b]", got)
	}
}

// TestHintLimitsDoNotCount: a stand-in that drops a hint (byte cap here;
// the window works the same way) does not count toward W, and stores
// nothing.
func TestHintLimitsDoNotCount(t *testing.T) { synctest.Test(t, testHintLimitsDoNotCount) }

func testHintLimitsDoNotCount(t *testing.T) {
	h := newHinted(t, 5, 3, func(c *hints.Config) { c.MaxBytesPerTarget = 1 })
	key := h.keyOn("cap", "n1")
	h.down("n2")
	h.down("n3")
	_, err := h.put("n1", key, "v", replica.WriteOptions{W: 2})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || qe.Got != 1 {
		t.Fatalf("W=2 with every stand-in refusing: %v", err)
	}
	h.drain()
	var dropped uint64
	for _, n := range []string{"n4", "n5"} {
		st := h.queue(n).Stats()
		dropped += st.DroppedCap
		if st.PendingHints != 0 || st.Stored != 0 {
			t.Fatalf("%s stored hints past the cap: %+v", n, st)
		}
	}
	if dropped < 2 {
		t.Fatalf("dropped %d hints, want at least 2", dropped)
	}
}

// TestHandoffIdempotent: the same handoff batch delivered twice leaves the
// target as after once.
func TestHandoffIdempotent(t *testing.T) { synctest.Test(t, testHandoffIdempotent) }

func testHandoffIdempotent(t *testing.T) {
	c := newCluster(t, 3, 3)
	var batch []replica.Entry
	for i := range 20 {
		_, s := vclock.Mint(nil, "inc-x", vclock.Write{Blind: true, Value: fmt.Appendf(nil, "v%d", i), WallTime: 1})
		_, s = vclock.Mint(s, "inc-y", vclock.Write{Value: []byte("sib"), WallTime: 2})
		batch = append(batch, replica.Entry{Key: fmt.Appendf(nil, "k%d", i), Siblings: s})
	}
	if err := c.nodes["n1"].Handoff(t.Context(), "n2", batch); err != nil {
		t.Fatal(err)
	}
	once := map[string]vclock.Siblings{}
	for _, e := range batch {
		once[string(e.Key)] = c.stores["n2"].Get(e.Key)
		if !once[string(e.Key)].Equal(e.Siblings) {
			t.Fatalf("%s: stored %v, want %v", e.Key, once[string(e.Key)], e.Siblings)
		}
	}
	if err := c.nodes["n1"].Handoff(t.Context(), "n2", batch); err != nil {
		t.Fatal(err)
	}
	for _, e := range batch {
		if got := c.stores["n2"].Get(e.Key); !got.Equal(once[string(e.Key)]) {
			t.Fatalf("%s changed on redelivery", e.Key)
		}
	}
	if s := c.nodes["n2"].Stats(); s.HandoffsServed != 2 {
		t.Fatalf("n2 served %d handoffs", s.HandoffsServed)
	}
	// A batch with a bad entry is refused as a bad request.
	bad := []replica.Entry{{Key: nil, Siblings: batch[0].Siblings}}
	if err := c.nodes["n1"].Handoff(t.Context(), "n2", bad); !errors.Is(err, replica.ErrBadRequest) {
		t.Fatalf("bad batch: %v", err)
	}
}

// TestRemovedTargetReroute: hints for a node removed from the ring go to
// each key's new replicas.
func TestRemovedTargetReroute(t *testing.T) { synctest.Test(t, testRemovedTargetReroute) }

func testRemovedTargetReroute(t *testing.T) {
	h := newHinted(t, 4, 3, nil)
	h.down("n2")
	var keys [][]byte
	for i := range 200 {
		k := fmt.Appendf(nil, "rr-%d", i)
		if slices.Contains(h.replicasOf(k), "n2") {
			keys = append(keys, k)
			h.mustPut("n1", k, string(k), replica.WriteOptions{W: 2})
		}
	}
	h.drain()
	// n2 is removed for good: the ring now has n1, n3, n4 (every key on
	// all three).
	h.place = replicatest.NewPlacement([]string{"n1", "n3", "n4"}, 3, 64)
	for _, n := range []string{"n1", "n3", "n4"} {
		if err := h.queue(n).RingChanged(t.Context(), []string{"n1", "n3", "n4"}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, settle, "rerouted hints delivered", func() bool {
		for _, n := range []string{"n1", "n3", "n4"} {
			if h.queue(n).Stats().PendingHints != 0 {
				return false
			}
		}
		return true
	})
	rerouted := uint64(0)
	for _, n := range []string{"n1", "n3", "n4"} {
		rerouted += h.queue(n).Stats().Rerouted
	}
	if rerouted == 0 {
		t.Fatal("nothing rerouted")
	}
	for _, k := range keys {
		for _, n := range []string{"n1", "n3", "n4"} {
			if got := values(h.stores[n].Get(k)); !slices.Equal(got, []string{string(k)}) {
				t.Fatalf("%s on %s: %v", k, n, got)
			}
		}
	}
}
