package hints

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

// warnings records the "expired hints dropped" warnings a queue logs (and
// passes every line on to the test log).
type warnings struct {
	slog.Handler
	mu    *sync.Mutex // guards hints
	hints *[]int64    // the hints attribute of each warning, in order
}

func newWarnings(t testing.TB) warnings {
	return warnings{Handler: testkit.Logger(t).Handler(), mu: &sync.Mutex{}, hints: new([]int64)}
}

func (w warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && r.Message == "expired hints dropped" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "hints" {
				w.mu.Lock()
				*w.hints = append(*w.hints, a.Value.Int64())
				w.mu.Unlock()
			}
			return true
		})
	}
	return w.Handler.Handle(ctx, r)
}

func (w warnings) WithAttrs(as []slog.Attr) slog.Handler {
	return warnings{Handler: w.Handler.WithAttrs(as), mu: w.mu, hints: w.hints}
}

func (w warnings) WithGroup(name string) slog.Handler {
	return warnings{Handler: w.Handler.WithGroup(name), mu: w.mu, hints: w.hints}
}

func (w warnings) get() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(*w.hints)
}

// expiryConfig is testConfig with a 10h grace, a fake clock and a
// recorder of expiry warnings.
func expiryConfig(t testing.TB, dir string, clk *fakeClock, w warnings) Config {
	cfg := testConfig(t, dir)
	cfg.Window = time.Hour
	cfg.Grace = 10 * time.Hour
	cfg.Clock = clk
	cfg.Logger = slog.New(w)
	return cfg
}

func store(t testing.TB, q *Queue, target, key string, s vclock.Siblings) {
	t.Helper()
	if err := q.StoreHint(t.Context(), target, []byte(key), s); err != nil {
		t.Fatalf("StoreHint %s/%s: %v", target, key, err)
	}
}

// A target that is up: the round drops the hint older than the grace
// instead of sending it, and delivers the younger one.
func TestExpiryUpTarget(t *testing.T) { synctest.Test(t, testExpiryUpTarget) }

func testExpiryUpTarget(t *testing.T) {
	clk := newFakeClock(time.Unix(1_700_000_000, 0))
	w := newWarnings(t)
	sk := newSink()
	cfg := expiryConfig(t, t.TempDir(), clk, w)
	cfg.Deliverer = sk
	q := openQueue(t, cfg)
	store(t, q, "b", "old", mint(nil, "a", "old"))
	clk.Advance(6 * time.Hour)
	store(t, q, "b", "young", mint(nil, "a", "young"))
	clk.Advance(4*time.Hour + time.Second)
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "nothing pending", func() bool { return q.PendingFor("b").Hints == 0 })
	if sk.get("b", "old") != nil {
		t.Fatal("an expired hint was delivered")
	}
	if sk.get("b", "young") == nil {
		t.Fatal("the hint inside the grace was not delivered")
	}
	if st := q.Stats(); st.DroppedExpired != 1 || st.Delivered != 1 {
		t.Fatalf("DroppedExpired %d Delivered %d, want 1 and 1", st.DroppedExpired, st.Delivered)
	}
	if got := w.get(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("expiry warnings %v, want one with 1 hint", got)
	}
}

// A target liveness reports down gets no rounds; the retry tick drops its
// expired hints anyway, and reclaims its log.
func TestExpiryDownTarget(t *testing.T) { synctest.Test(t, testExpiryDownTarget) }

func testExpiryDownTarget(t *testing.T) {
	clk := newFakeClock(time.Unix(1_700_000_000, 0))
	w := newWarnings(t)
	sk := newSink()
	cfg := expiryConfig(t, t.TempDir(), clk, w)
	cfg.Deliverer = sk
	q := openQueue(t, cfg)
	q.SetAlive("b", false)
	store(t, q, "b", "k1", mint(nil, "a", "1"))
	store(t, q, "b", "k2", mint(nil, "a", "2"))
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	time.Sleep(5 * cfg.RetryInterval) // a few ticks inside the grace drop nothing
	synctest.Wait()
	if p := q.PendingFor("b"); p.Hints != 2 || q.Stats().DroppedExpired != 0 {
		t.Fatalf("inside the grace: pending %d, dropped %d", p.Hints, q.Stats().DroppedExpired)
	}
	clk.Advance(10 * time.Hour)
	testkit.Eventually(t, settle, "expired hints dropped", func() bool { return q.Stats().DroppedExpired == 2 })
	p := q.PendingFor("b")
	if p.Hints != 0 || p.Bytes != 0 || p.LogBytes != 0 {
		t.Fatalf("after expiry: %+v, want nothing pending and an empty log", p)
	}
	if sk.keys("b") != 0 {
		t.Fatal("a hint reached a target reported down")
	}
	if got := w.get(); !slices.Equal(got, []int64{2}) {
		t.Fatalf("expiry warnings %v, want one with 2 hints", got)
	}
}

// Open drops what expired while the node was down, with durable forget
// records: a later open, even with a clock for which they would not have
// expired, does not bring them back.
func TestExpiredNotReplayedAfterReopen(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	clk := newFakeClock(start)
	dir := t.TempDir()
	w := newWarnings(t)
	q, err := Open(expiryConfig(t, dir, clk, w))
	if err != nil {
		t.Fatal(err)
	}
	store(t, q, "b", "k1", mint(nil, "a", "1"))
	store(t, q, "b", "k2", mint(nil, "a", "2"))
	store(t, q, "c", "k3", mint(nil, "a", "3"))
	clk.Advance(9 * time.Hour)
	store(t, q, "c", "k4", mint(nil, "a", "4"))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	q2 := openQueue(t, expiryConfig(t, dir, clk, w))
	if st := q2.Stats(); st.DroppedExpired != 3 || st.PendingHints != 1 {
		t.Fatalf("after reopen past the grace: %+v, want 3 dropped and 1 pending", st)
	}
	if p := q2.PendingFor("b"); p.LogBytes != 0 {
		t.Fatalf("b's log holds %d bytes with nothing pending", p.LogBytes)
	}
	if got := w.get(); !slices.Equal(got, []int64{3}) {
		t.Fatalf("expiry warnings %v, want one with 3 hints", got)
	}
	// Killed now, and reopened with the clock back at the start.
	q3 := openQueue(t, expiryConfig(t, crashCopy(t, dir), newFakeClock(start), newWarnings(t)))
	if keys := q3.targets["c"].pendingKeys(); len(keys) != 1 || keys[0] != "k4" || q3.PendingFor("b").Hints != 0 {
		t.Fatalf("expired hints replayed: b %d, c %v", q3.PendingFor("b").Hints, keys)
	}
}

// A batch never takes an expired key, even one no sweep has dropped yet.
func TestBatchSkipsExpired(t *testing.T) {
	clk := newFakeClock(time.Unix(1_700_000_000, 0))
	q := openQueue(t, expiryConfig(t, t.TempDir(), clk, newWarnings(t)))
	store(t, q, "b", "old", mint(nil, "a", "1"))
	clk.Advance(5 * time.Hour)
	store(t, q, "b", "young", mint(nil, "a", "2"))
	tg := q.targets["b"]
	keys := tg.pendingKeys()
	clk.Advance(5 * time.Hour) // old is now exactly Grace old
	batch, rest := tg.batch(keys, 10, 1<<20, q.cutoff(clk.Now()))
	if len(batch) != 1 || string(batch[0].Key) != "young" || len(rest) != 0 {
		t.Fatalf("batch %v, rest %v; want only young", batch, rest)
	}
}

// A hint for a key whose pending set expired replaces that set instead of
// merging into it (the old versions must not be delivered), and its age
// starts now.
func TestStoreHintReplacesExpiredEntry(t *testing.T) {
	clk := newFakeClock(time.Unix(1_700_000_000, 0))
	dir := t.TempDir()
	q := openQueue(t, expiryConfig(t, dir, clk, newWarnings(t)))
	s1, s2 := mint(nil, "a", "old"), mint(nil, "c", "new")
	store(t, q, "b", "k", s1)
	clk.Advance(10*time.Hour + time.Second)
	store(t, q, "b", "k", s2)
	check := func(q *Queue, when string) {
		t.Helper()
		e := q.targets["b"].index["k"]
		if !e.sibs.Equal(s2) || e.since != clk.Now().UnixNano() {
			t.Fatalf("%s: pending %v since %v, want %v since %v", when, e.sibs, time.Unix(0, e.since), s2, clk.Now())
		}
	}
	check(q, "after the new hint")
	if got := q.Stats().DroppedExpired; got != 1 {
		t.Fatalf("DroppedExpired %d, want 1", got)
	}
	check(openQueue(t, expiryConfig(t, crashCopy(t, dir), clk, newWarnings(t))), "after a crash")
}

// Re-routing a removed target's hints keeps their age, and drops those
// already past the grace.
func TestRerouteKeepsAge(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	clk := newFakeClock(start)
	cfg := expiryConfig(t, t.TempDir(), clk, newWarnings(t))
	cfg.Replicas = func([]byte) []string { return []string{"b", "c"} }
	q := openQueue(t, cfg)
	store(t, q, "b", "old", mint(nil, "a", "1"))
	clk.Advance(6 * time.Hour)
	store(t, q, "b", "young", mint(nil, "a", "2"))
	clk.Advance(4*time.Hour + time.Second)
	if err := q.RingChanged(t.Context(), []string{"a", "c"}); err != nil {
		t.Fatal(err)
	}
	p := q.PendingFor("c")
	if p.Hints != 1 || !p.Oldest.Equal(start.Add(6*time.Hour)) {
		t.Fatalf("c after the re-route: %+v, want young only, stored at %v", p, start.Add(6*time.Hour))
	}
	if st := q.Stats(); st.DroppedExpired != 1 || st.Rerouted != 1 {
		t.Fatalf("DroppedExpired %d Rerouted %d, want 1 and 1", st.DroppedExpired, st.Rerouted)
	}
}
