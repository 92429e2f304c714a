package replica_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
	"pgregory.net/rapid"
)

// The pull tests run inside synctest bubbles: the retry backoff, the rate
// limiter's waits and the per-call timeouts are fake time, and
// synctest.Wait is the event "the puller has nothing left to do right
// now" (every goroutine is blocked: on Wake, on a retry timer, or on a
// source the test holds).

var (
	srcNodes = []string{"n1", "n2", "n3"}
	allNodes = []string{"n1", "n2", "n3", "n4"}
)

const testParts = 16

// joinPlace is the plan in which n4 joins n1..n3 (N=3): n4 is pending in
// some partitions and not others.
func joinPlace(epoch uint64) *xferPlace {
	return newXferPlace(epoch, srcNodes, allNodes, 3, testParts)
}

func mustPending(t *testing.T, place *xferPlace, node string) []int {
	t.Helper()
	parts := place.PendingOf(node)
	if len(parts) == 0 || len(parts) == place.partitions() {
		t.Fatalf("%s is pending in %d of %d partitions; the test needs some of each", node, len(parts), place.partitions())
	}
	return parts
}

func checkProgress(t *testing.T, p *replica.Puller, place *xferPlace, want []int) {
	t.Helper()
	epoch, hash, done := p.Progress()
	if epoch != place.Epoch() || hash != place.PlanHash() {
		t.Errorf("Progress follows epoch %d hash %x, want %d %x", epoch, hash, place.Epoch(), place.PlanHash())
	}
	if d := cmp.Diff(int32s(want), done, cmpEmpty); d != "" {
		t.Errorf("Progress done partitions (-want +got):\n%s", d)
	}
}

var cmpEmpty = cmp.Transformer("empty", func(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return s
})

func TestPullerMergesEverySource(t *testing.T) { synctest.Test(t, testPullerMergesEverySource) }

func testPullerMergesEverySource(t *testing.T) {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	want := e.seed(200, srcNodes...)
	parts := mustPending(t, place, "n4")
	dir := t.TempDir()
	p := e.puller("n4", func(c *replica.PullerConfig) { c.Dir = dir; c.BatchKeys = 7 })
	e.run(p)
	synctest.Wait()

	checkProgress(t, p, place, parts)
	e.checkHolds("n4", place, want, parts)
	var keys, bytes int64
	for _, part := range parts {
		for _, src := range srcNodes {
			k, b := scanStats(e.stores[src], part)
			keys, bytes = keys+k, bytes+b
		}
	}
	st := p.Stats()
	// Every key came from at least one source first, so something was new;
	// the later copies of equal sets were not.
	if st.NewBytes <= 0 || st.NewBytes > st.Bytes {
		t.Errorf("NewBytes = %d, want in (0, Bytes=%d]", st.NewBytes, st.Bytes)
	}
	if d := cmp.Diff(replica.PullStats{Epoch: 2, Done: len(parts), Keys: keys, Bytes: bytes, NewBytes: st.NewBytes}, st); d != "" {
		t.Errorf("Stats (-want +got):\n%s", d)
	}
	for part := range testParts {
		for _, src := range srcNodes {
			n := e.transferCalls(src, 2, part)
			if pending := place.pendingOn("n4", part); pending && n == 0 {
				t.Errorf("partition %d was never pulled from %s", part, src)
			} else if !pending && n > 0 {
				t.Errorf("partition %d, not pending on n4, was pulled from %s", part, src)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, replica.TransfersFile)); err != nil {
		t.Errorf("done partitions were not persisted: %v", err)
	}
}

func TestPullerRetriesStalePlan(t *testing.T) { synctest.Test(t, testPullerRetriesStalePlan) }

func testPullerRetriesStalePlan(t *testing.T) {
	place := joinPlace(3)
	e := newXferEnv(t, place, allNodes...)
	e.setView(newXferPlace(2, srcNodes, nil, 3, testParts), "n2") // n2 has not learnt epoch 3
	want := e.seed(120, srcNodes...)
	parts := mustPending(t, place, "n4")
	p := e.puller("n4", func(c *replica.PullerConfig) { c.Retry = time.Second })
	start := time.Now()
	e.run(p)
	synctest.Wait()

	checkProgress(t, p, place, nil)
	if f := p.Stats().Failures; f < int64(len(parts)) {
		t.Errorf("Failures = %d, want at least one stale refusal per partition (%d)", f, len(parts))
	}
	for _, part := range parts {
		if e.transferCalls("n2", 3, part) == 0 {
			t.Errorf("partition %d: n2 never asked", part)
		}
	}

	time.Sleep(900 * time.Millisecond) // within the retry backoff
	synctest.Wait()
	for _, part := range parts {
		if n := e.transferCalls("n2", 3, part); n != 1 {
			t.Errorf("partition %d: n2 asked %d times within the backoff, want once", part, n)
		}
	}

	e.setView(place, "n2")
	time.Sleep(600 * time.Millisecond) // past the retry backoff
	synctest.Wait()
	checkProgress(t, p, place, parts)
	e.checkHolds("n4", place, want, parts)
	if el := time.Since(start); el < time.Second {
		t.Errorf("completed after %v, before the retry backoff", el)
	}
}

func TestPullerWaitsForSourceDownMidTransfer(t *testing.T) {
	synctest.Test(t, testPullerWaitsForSourceDownMidTransfer)
}

func testPullerWaitsForSourceDownMidTransfer(t *testing.T) {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	want := e.seed(200, srcNodes...)
	parts := mustPending(t, place, "n4")
	served := 0
	e.hook("n3", func(ctx context.Context, req replica.Request) (replica.Response, error, bool) {
		if req.Kind == replica.KindTransfer {
			if served++; served == 2 {
				e.net.Cut("n4", "n3") // n3 goes down after this batch
			}
		}
		return replica.Response{}, nil, false
	})
	p := e.puller("n4", func(c *replica.PullerConfig) { c.BatchKeys = 3; c.MaxInFlight = 1 })
	e.run(p)
	synctest.Wait()

	_, _, done := p.Progress()
	if len(done) >= len(parts) {
		t.Fatalf("every partition done (%v) while n3 was down", done)
	}
	var doneParts []int
	for _, d := range done {
		doneParts = append(doneParts, int(d))
	}
	e.checkHolds("n4", place, onlyParts(place, want, doneParts), doneParts) // done means complete
	if st := p.Stats(); st.BytesLeft <= 0 || st.Failures == 0 {
		t.Errorf("during the outage: %+v, want bytes left of the partition n3 had begun, and failures", st)
	}

	e.resetCalls()
	e.net.Heal()
	time.Sleep(2 * time.Second)
	synctest.Wait()
	checkProgress(t, p, place, parts)
	e.checkHolds("n4", place, want, parts)
	// What was merged before the outage is kept: the sources that had
	// finished are not asked again.
	for _, src := range []string{"n1", "n2"} {
		if n := e.totalCalls(src); n != 0 {
			t.Errorf("%s asked %d more times after n3 returned", src, n)
		}
	}
}

// onlyParts is want restricted to keys of the given partitions.
func onlyParts(place *xferPlace, want map[string]vclock.Siblings, parts []int) map[string]vclock.Siblings {
	out := map[string]vclock.Siblings{}
	for k, s := range want {
		if slices.Contains(parts, place.Partition([]byte(k))) {
			out[k] = s
		}
	}
	return out
}

func TestPullerWaitsForDeadSource(t *testing.T) { synctest.Test(t, testPullerWaitsForDeadSource) }

func testPullerWaitsForDeadSource(t *testing.T) {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	want := e.seed(100, srcNodes...)
	parts := mustPending(t, place, "n4")
	var mu sync.Mutex
	down := true
	p := e.puller("n4", func(c *replica.PullerConfig) {
		c.Alive = func(n string) bool { mu.Lock(); defer mu.Unlock(); return n != "n3" || !down }
	})
	e.run(p)
	synctest.Wait()
	checkProgress(t, p, place, nil)
	if n := e.totalCalls("n3"); n != 0 {
		t.Errorf("n3, reported down, was asked %d times", n)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	time.Sleep(2 * time.Second)
	synctest.Wait()
	checkProgress(t, p, place, parts)
	e.checkHolds("n4", place, want, parts)
}

func TestPullerSkipsUnusableSource(t *testing.T) { synctest.Test(t, testPullerSkipsUnusableSource) }

func testPullerSkipsUnusableSource(t *testing.T) {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	e.seed(100, srcNodes...)
	parts := mustPending(t, place, "n4")
	e.net.Unregister("n3") // removed for good
	p := e.puller("n4", func(c *replica.PullerConfig) { c.Usable = func(n string) bool { return n != "n3" } })
	e.run(p)
	synctest.Wait()
	checkProgress(t, p, place, parts)
	for _, part := range parts {
		keys, sets, _ := e.stores["n1"].Scan(part, nil, 1<<20, 1<<40)
		keys2, sets2, _ := e.stores["n2"].Scan(part, nil, 1<<20, 1<<40)
		merged := map[string]vclock.Siblings{}
		for i, k := range append(keys, keys2...) {
			merged[string(k)] = vclock.Merge(merged[string(k)], append(sets, sets2...)[i])
		}
		for k, s := range merged {
			if got := e.stores["n4"].Get([]byte(k)); !got.Equal(s) {
				t.Errorf("key %s: n4 does not hold the merge of n1 and n2", k)
			}
		}
	}
}

func TestPullerHonoursMaxInFlight(t *testing.T) { synctest.Test(t, testPullerHonoursMaxInFlight) }

func testPullerHonoursMaxInFlight(t *testing.T) {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	want := e.seed(100, srcNodes...)
	parts := mustPending(t, place, "n4")
	if len(parts) <= 3 {
		t.Fatalf("need more than 3 pending partitions, have %d", len(parts))
	}
	gate := make(chan struct{})
	var mu sync.Mutex
	held := map[int]bool{}
	hold := func(ctx context.Context, req replica.Request) (replica.Response, error, bool) {
		if req.Kind != replica.KindTransfer {
			return replica.Response{}, nil, false
		}
		mu.Lock()
		held[int(req.Partition)] = true
		mu.Unlock()
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return replica.Response{}, nil, false
	}
	for _, n := range srcNodes {
		e.hook(n, hold)
	}
	p := e.puller("n4", func(c *replica.PullerConfig) { c.MaxInFlight = 3 })
	e.run(p)
	synctest.Wait()
	mu.Lock()
	if len(held) != 3 {
		t.Errorf("partitions asked for at once: %d, want MaxInFlight (3)", len(held))
	}
	mu.Unlock()
	if st := p.Stats(); st.InFlight != 3 || st.Pending != len(parts)-3 || st.Done != 0 {
		t.Errorf("Stats pending/in flight/done = %d/%d/%d, want %d/3/0", st.Pending, st.InFlight, st.Done, len(parts)-3)
	}
	close(gate)
	synctest.Wait()
	checkProgress(t, p, place, parts)
	e.checkHolds("n4", place, want, parts)
}

func TestPullerResumesFromFile(t *testing.T) { synctest.Test(t, testPullerResumesFromFile) }

func testPullerResumesFromFile(t *testing.T) {
	place := joinPlace(4)
	e := newXferEnv(t, place, allNodes...)
	want := e.seed(150, srcNodes...)
	parts := mustPending(t, place, "n4")
	var first, rest []int // done before the restart, and after
	for i, part := range parts {
		if i%2 == 0 {
			first = append(first, part)
		} else {
			rest = append(rest, part)
		}
	}
	e.hook("n3", refuseParts(rest))
	dir := t.TempDir()
	p := e.puller("n4", func(c *replica.PullerConfig) { c.Dir = dir })
	stop := e.run(p)
	synctest.Wait()
	checkProgress(t, p, place, first)
	stop()

	// Restart: a new puller on the same directory.
	e.hook("n3", nil)
	e.resetCalls()
	p2 := e.puller("n4", func(c *replica.PullerConfig) { c.Dir = dir })
	e.run(p2)
	synctest.Wait()
	checkProgress(t, p2, place, parts)
	e.checkHolds("n4", place, want, parts)
	for _, part := range parts {
		calls := 0
		for _, src := range srcNodes {
			calls += e.transferCalls(src, 4, part)
		}
		switch {
		case slices.Contains(first, part) && calls != 0:
			t.Errorf("partition %d, done before the restart, pulled again (%d calls)", part, calls)
		case slices.Contains(rest, part) && calls == 0:
			t.Errorf("partition %d, not done before the restart, was not pulled", part)
		}
	}
}

// refuseParts answers transfers of the given partitions with a stale-plan
// refusal.
func refuseParts(parts []int) hookFunc {
	return func(ctx context.Context, req replica.Request) (replica.Response, error, bool) {
		if req.Kind == replica.KindTransfer && slices.Contains(parts, int(req.Partition)) {
			return replica.Response{}, fmt.Errorf("%w: held by the test", replica.ErrStalePlan), true
		}
		return replica.Response{}, nil, false
	}
}

func TestPullerDiscardsFileOfAnotherPlan(t *testing.T) {
	for _, tc := range []struct {
		name string
		next func(*xferPlace) *xferPlace
	}{
		{"same epoch, other plan", func(x *xferPlace) *xferPlace { return x.withHash(x.PlanHash() + 1) }},
		{"newer epoch", func(*xferPlace) *xferPlace { return joinPlace(5) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				place := joinPlace(4)
				e := newXferEnv(t, place, allNodes...)
				want := e.seed(100, srcNodes...)
				parts := mustPending(t, place, "n4")
				dir := t.TempDir()
				p := e.puller("n4", func(c *replica.PullerConfig) { c.Dir = dir })
				stop := e.run(p)
				synctest.Wait()
				checkProgress(t, p, place, parts)
				stop()

				next := tc.next(place)
				e.setView(next)
				e.resetCalls()
				p2 := e.puller("n4", func(c *replica.PullerConfig) { c.Dir = dir })
				e.run(p2)
				synctest.Wait()
				checkProgress(t, p2, next, parts)
				e.checkHolds("n4", place, want, parts)
				for _, part := range parts {
					if e.transferCalls("n1", next.Epoch(), part) == 0 {
						t.Errorf("partition %d not pulled again for the new plan", part)
					}
				}
			})
		})
	}
}

func TestPullerDiscardsHostileFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"garbage", []byte("\x00\xffnot json at all")},
		{"huge", append([]byte(`{"format":1,"node":"n4","epoch":4,"plan_hash":1,"done":[`), bytes.Repeat([]byte("1,"), 2<<20)...)},
		{"wrong types", []byte(`{"format":"one","node":4,"epoch":-1,"done":"all"}`)},
		{"another node", []byte(`{"format":1,"node":"n9","epoch":4,"plan_hash":1,"done":[0]}`)},
		{"negative partition", []byte(`{"format":1,"node":"n4","epoch":4,"plan_hash":1,"done":[-3]}`)},
		{"trailing bytes", []byte(`{"format":1,"node":"n4","epoch":4,"plan_hash":1,"done":[]} {}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				place := joinPlace(4)
				e := newXferEnv(t, place, allNodes...)
				e.seed(60, srcNodes...)
				parts := mustPending(t, place, "n4")
				dir := t.TempDir()
				path := filepath.Join(dir, replica.TransfersFile)
				if err := os.WriteFile(path, tc.body, 0o644); err != nil {
					t.Fatal(err)
				}
				var logs testkit.Buffer
				p := e.puller("n4", func(c *replica.PullerConfig) {
					c.Dir = dir
					c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				})
				if !strings.Contains(logs.String(), path) {
					t.Errorf("no log line names %s; logs:\n%s", path, logs.String())
				}
				e.run(p)
				synctest.Wait()
				checkProgress(t, p, place, parts)
				if err := replica.LoadTransfers(dir, "n4"); err != nil {
					t.Errorf("the file was not replaced by a valid one: %v", err)
				}
			})
		})
	}
}

func TestLoadTransfersNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, replica.TransfersFile)
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := replica.LoadTransfers(dir, "n4")
	if !errors.Is(err, replica.ErrBadTransfers) || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadTransfers = %v, want ErrBadTransfers naming %s", err, path)
	}
}

func TestPullerNewEpochAbandonsOldWork(t *testing.T) {
	synctest.Test(t, testPullerNewEpochAbandonsOldWork)
}

func testPullerNewEpochAbandonsOldWork(t *testing.T) {
	old := joinPlace(2)
	// Epoch 3 retargets: n3 leaves as n4 joins, so n4 is pending everywhere.
	next := newXferPlace(3, srcNodes, []string{"n1", "n2", "n4"}, 3, testParts)
	e := newXferEnv(t, old, allNodes...)
	want := e.seed(100, srcNodes...)
	mustPending(t, old, "n4")
	// n3 never answers a pull of epoch 2 (before its deadline).
	e.hook("n3", func(ctx context.Context, req replica.Request) (replica.Response, error, bool) {
		if req.Kind == replica.KindTransfer && req.Epoch == 2 {
			<-ctx.Done()
			return replica.Response{}, ctx.Err(), true
		}
		return replica.Response{}, nil, false
	})
	p := e.puller("n4", func(c *replica.PullerConfig) { c.MaxInFlight = 2; c.Timeout = time.Minute })
	e.run(p)
	synctest.Wait()
	if st := p.Stats(); st.Epoch != 2 || st.InFlight != 2 || st.Done != 0 {
		t.Fatalf("before the change: %+v, want epoch 2 with 2 in flight, none done", st)
	}
	before := 0
	for part := range testParts {
		before += e.transferCalls("n3", 2, part)
	}

	start := time.Now()
	e.setView(next)
	p.Wake()
	synctest.Wait()
	if el := time.Since(start); el >= time.Minute {
		t.Errorf("the new epoch waited %v for the old pulls' timeout", el)
	}
	all := next.PendingOf("n4")
	if len(all) != testParts {
		t.Fatalf("n4 pending in %d partitions at epoch 3, want all", len(all))
	}
	checkProgress(t, p, next, all)
	e.checkHolds("n4", next, want, all)
	after := 0
	for part := range testParts {
		after += e.transferCalls("n3", 2, part)
	}
	if after != before {
		t.Errorf("%d pulls of the abandoned epoch after the change", after-before)
	}
}

func TestPullerRate(t *testing.T) { synctest.Test(t, testPullerRate) }

func testPullerRate(t *testing.T) {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	want := e.seed(150, srcNodes...)
	parts := mustPending(t, place, "n4")
	const rate = 20_000 // bytes/s
	p := e.puller("n4", func(c *replica.PullerConfig) { c.RateBytes = rate; c.BatchKeys = 10 })
	start := time.Now()
	e.run(p)
	waitDone(t, p, len(parts))
	elapsed := time.Since(start)
	st := p.Stats()
	min := time.Duration(float64(st.Bytes) / rate * float64(time.Second))
	if elapsed < min || elapsed > min+time.Second {
		t.Errorf("%d bytes at %d B/s took %v, want %v (at most a second more)", st.Bytes, rate, elapsed, min)
	}
	if st.Rate != rate {
		t.Errorf("Stats.Rate = %v, want %v", st.Rate, rate)
	}
	e.checkHolds("n4", place, want, parts)
}

// waitDone waits, in fake time (inside a bubble), until done partitions
// are complete.
func waitDone(t *testing.T, p *replica.Puller, done int) {
	t.Helper()
	testkit.Eventually(t, 1000*time.Second, fmt.Sprintf("%d partitions done", done), func() error {
		if st := p.Stats(); st.Done != done {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
}

func TestPullerSetRate(t *testing.T) { synctest.Test(t, testPullerSetRate) }

func testPullerSetRate(t *testing.T) {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	want := e.seed(150, srcNodes...)
	parts := mustPending(t, place, "n4")
	p := e.puller("n4", func(c *replica.PullerConfig) { c.RateBytes = 1 }) // a byte a second: days
	start := time.Now()
	e.run(p)
	synctest.Wait()
	if st := p.Stats(); st.Done != 0 || st.Rate != 1 {
		t.Fatalf("at 1 B/s: %+v, want nothing done yet", st)
	}
	p.SetRate(0) // unlimited, effective for the batch already waiting
	synctest.Wait()
	checkProgress(t, p, place, parts)
	e.checkHolds("n4", place, want, parts)
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v after the limit was lifted", el)
	}
	if r := p.Stats().Rate; r != 0 {
		t.Errorf("Stats.Rate = %v after SetRate(0)", r)
	}
	p.SetRate(5e6)
	if r := p.Stats().Rate; r != 5e6 {
		t.Errorf("Stats.Rate = %v after SetRate(5e6)", r)
	}
}

func TestPullerIdle(t *testing.T) { synctest.Test(t, testPullerIdle) }

func testPullerIdle(t *testing.T) {
	place := newXferPlace(7, srcNodes, nil, 3, testParts) // stable: nothing pending
	e := newXferEnv(t, place, allNodes...)
	e.seed(20, srcNodes...)
	p := e.puller("n4", nil)
	e.run(p)
	// A spinning Run would never let the bubble block: Wait would hang.
	synctest.Wait()
	if n := e.net.Calls(); n != 0 {
		t.Errorf("%d calls with nothing pending", n)
	}
	checkProgress(t, p, place, nil)
	if d := cmp.Diff(replica.PullStats{Epoch: 7}, p.Stats()); d != "" {
		t.Errorf("Stats (-want +got):\n%s", d)
	}
	p.Wake()
	p.Wake() // never blocks
	synctest.Wait()
}

func TestPullerRefusesBadBatch(t *testing.T) { synctest.Test(t, testPullerRefusesBadBatch) }

func testPullerRefusesBadBatch(t *testing.T) {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	want := e.seed(100, srcNodes...)
	parts := mustPending(t, place, "n4")
	// A key of a partition n4 does not pull, sent by a broken source.
	var stray []byte
	for i := range 1000 {
		k := fmt.Appendf(nil, "stray-%d", i)
		if !place.pendingOn("n4", place.Partition(k)) {
			stray = k
			break
		}
	}
	_, set := vclock.Mint(nil, "inc-evil", vclock.Write{Value: []byte("x")})
	e.hook("n3", func(ctx context.Context, req replica.Request) (replica.Response, error, bool) {
		if req.Kind == replica.KindTransfer {
			return replica.Response{Batch: []replica.Entry{{Key: stray, Siblings: set}}}, nil, true
		}
		return replica.Response{}, nil, false
	})
	p := e.puller("n4", nil)
	e.run(p)
	synctest.Wait()
	checkProgress(t, p, place, nil)
	if got := e.stores["n4"].Get(stray); got != nil {
		t.Errorf("the stray key was stored")
	}
	if p.Stats().Failures == 0 {
		t.Errorf("no failure counted")
	}
	e.hook("n3", nil)
	time.Sleep(2 * time.Second)
	synctest.Wait()
	checkProgress(t, p, place, parts)
	e.checkHolds("n4", place, want, parts)
}

func TestNewPullerValidates(t *testing.T) {
	base := func() replica.PullerConfig {
		c := replica.DefaultPullerConfig()
		c.Self = "n4"
		c.Placement = func() replica.TransferPlacement { return joinPlace(1) }
		c.Store = replicatest.NewStore("inc-n4")
		c.Transport = replica.TransportFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
			return replica.Response{}, nil
		})
		return c
	}
	for _, tc := range []struct {
		name string
		mod  func(*replica.PullerConfig)
	}{
		{"no self", func(c *replica.PullerConfig) { c.Self = "" }},
		{"no placement", func(c *replica.PullerConfig) { c.Placement = nil }},
		{"no store", func(c *replica.PullerConfig) { c.Store = nil }},
		{"no transport", func(c *replica.PullerConfig) { c.Transport = nil }},
		{"negative rate", func(c *replica.PullerConfig) { c.RateBytes = -1 }},
		{"batch too large", func(c *replica.PullerConfig) { c.BatchKeys = 5000 }},
		{"negative in flight", func(c *replica.PullerConfig) { c.MaxInFlight = -1 }},
		{"dir missing", func(c *replica.PullerConfig) { c.Dir = filepath.Join(t.TempDir(), "nope") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			if _, err := replica.NewPuller(c); err == nil {
				t.Errorf("NewPuller accepted the config")
			}
		})
	}
	if _, err := replica.NewPuller(base()); err != nil {
		t.Errorf("NewPuller refused a good config: %v", err)
	}
}

// TestPullerMergesUnderRandomFaults checks the puller against the
// simplest reference: whatever the keys' spread over the sources, the
// batch size, the parallelism and the calls that fail, once every pending
// partition is done the new replica holds, for each of their keys, the
// merge of every source's set. Each case runs in its own bubble (rapid
// reads the real clock, so it stays outside).
func TestPullerMergesUnderRandomFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		// copies[i][j]: 0 source j missed key i, 1 holds the shared
		// version, 2 holds a concurrent one of its own.
		copies := rapid.SliceOfN(rapid.SliceOfN(rapid.IntRange(0, 2), 3, 3), 0, 60).Draw(rt, "copies")
		failEvery := int64(rapid.SampledFrom([]int{0, 2, 3, 5}).Draw(rt, "failEvery"))
		batch := rapid.IntRange(1, 8).Draw(rt, "batch")
		inFlight := rapid.IntRange(1, 5).Draw(rt, "inFlight")
		var failure string
		synctest.Test(t, func(t *testing.T) {
			failure = pullRandomCase(t, copies, failEvery, batch, inFlight)
		})
		if failure != "" {
			rt.Fatal(failure)
		}
	})
}

func pullRandomCase(t *testing.T, copies [][]int, failEvery int64, batch, inFlight int) string {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	ctx := context.Background()
	for i, c := range copies {
		key := fmt.Appendf(nil, "key-%d", i)
		_, shared := vclock.Mint(nil, "inc-writer", vclock.Write{Value: fmt.Appendf(nil, "v%d", i)})
		for j, src := range srcNodes {
			set := shared
			switch c[j] {
			case 0:
				continue
			case 2:
				_, set = vclock.Mint(nil, "inc-"+src, vclock.Write{Value: []byte(src)})
			}
			if _, err := e.stores[src].Apply(ctx, key, set); err != nil {
				t.Fatal(err)
			}
		}
	}
	var calls atomic.Int64
	for _, src := range srcNodes {
		e.hook(src, func(ctx context.Context, req replica.Request) (replica.Response, error, bool) {
			if req.Kind == replica.KindTransfer && failEvery > 0 && calls.Add(1)%failEvery == 0 {
				return replica.Response{}, errors.New("injected failure"), true
			}
			return replica.Response{}, nil, false
		})
	}
	p := e.puller("n4", func(c *replica.PullerConfig) { c.BatchKeys = batch; c.MaxInFlight = inFlight })
	stop := e.run(p)
	defer stop()
	parts := place.PendingOf("n4")
	waitDone(t, p, len(parts))
	for _, part := range parts {
		merged := map[string]vclock.Siblings{}
		for _, src := range srcNodes {
			keys, sets, _ := e.stores[src].Scan(part, nil, 1<<20, 1<<40)
			for i, k := range keys {
				merged[string(k)] = vclock.Merge(merged[string(k)], sets[i])
			}
		}
		keys, _, _ := e.stores["n4"].Scan(part, nil, 1<<20, 1<<40)
		if len(keys) != len(merged) {
			return fmt.Sprintf("partition %d: n4 holds %d keys, the sources %d", part, len(keys), len(merged))
		}
		for k, s := range merged {
			if !e.stores["n4"].Get([]byte(k)).Equal(s) {
				return fmt.Sprintf("key %s: n4 does not hold the merge of the sources", k)
			}
		}
	}
	return ""
}

// TestPullerRunOnce: a Run while another runs returns ErrPullerRunning at
// once and leaves the first running; once it returned, Run may run again.
func TestPullerRunOnce(t *testing.T) { synctest.Test(t, testPullerRunOnce) }

func testPullerRunOnce(t *testing.T) {
	place := joinPlace(2)
	e := newXferEnv(t, place, allNodes...)
	e.seed(20, srcNodes...)
	p := e.puller("n4", func(c *replica.PullerConfig) { c.Dir = t.TempDir() })
	stop := e.run(p)
	synctest.Wait()
	if err := p.Run(t.Context()); !errors.Is(err, replica.ErrPullerRunning) {
		t.Fatalf("second Run = %v, want ErrPullerRunning", err)
	}
	stop()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Errorf("Run after the first returned = %v, want nil", err)
	}
}
