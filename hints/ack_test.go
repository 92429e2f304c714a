package hints

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// An acknowledged hint is not resent after a SIGKILL: its forget record
// is durable before the round goes on. Before, ack only forgot the key in
// memory and the log replayed it, which, once the tombstone that replaced
// the hinted value was collected on the target, brought a deleted value
// back.
func TestAckNotReplayedAfterCrash(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.BatchSize = 1
	inThird, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	cfg.Deliverer = DelivererFunc(func(ctx context.Context, target string, batch []Hint) error {
		if calls.Add(1) != 3 {
			return nil
		}
		close(inThird)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return errors.New("connection reset")
	})
	q := openQueue(t, cfg)
	for i := range 3 {
		if err := q.StoreHint(t.Context(), "b", fmt.Appendf(nil, "k%d", i), mint(nil, "a", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inThird:
	case <-time.After(10 * time.Second):
		t.Fatal("third batch never sent")
	}
	// k0 and k1 were acknowledged, k2 is in flight: kill now.
	crashed := crashCopy(t, dir)
	close(release)
	q2 := openQueue(t, testConfig(t, crashed))
	tg := q2.targets["b"]
	if tg == nil || len(tg.index) != 1 || tg.index["k2"].sibs == nil {
		t.Fatalf("after the crash %d hints pending (%v), want only k2", q2.PendingFor("b").Hints, tg.pendingKeys())
	}
}

// A key hinted again after its acknowledgement has a hint record after
// the forget record: after a crash it is pending with the new set only,
// and its age counts from the new hint.
func TestHintAfterAckPendingAfterCrash(t *testing.T) {
	clk := newFakeClock(time.Unix(1_700_000_000, 0))
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Clock = clk
	q := openQueue(t, cfg)
	s1, s2 := mint(nil, "a", "old"), mint(nil, "c", "new")
	for k, s := range map[string]vclock.Siblings{"k": s1, "other": s1} {
		if err := q.StoreHint(t.Context(), "b", []byte(k), s); err != nil {
			t.Fatal(err)
		}
	}
	tg := q.targets["b"]
	batch, _ := tg.batch([]string{"k"}, 10, 1<<20, noCutoff)
	if err := q.ack(t.Context(), tg, batch, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if err := q.StoreHint(t.Context(), "b", []byte("k"), s2); err != nil {
		t.Fatal(err)
	}
	cfg2 := testConfig(t, crashCopy(t, dir))
	cfg2.Clock = clk
	q2 := openQueue(t, cfg2)
	e, ok := q2.targets["b"].index["k"]
	if !ok || !e.sibs.Equal(s2) {
		t.Fatalf("k after the crash: %v (pending %v), want only the set hinted after the ack %v", e.sibs, ok, s2)
	}
	if want := clk.Now().UnixNano(); e.since != want {
		t.Fatalf("k since %v, want the re-hint's %v", time.Unix(0, e.since), clk.Now())
	}
	if q2.PendingFor("b").Hints != 2 {
		t.Fatalf("pending %d, want k and other", q2.PendingFor("b").Hints)
	}
}

// A hint dropped as too large to deliver is not replayed after a crash.
func TestDropTooLargeNotReplayed(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, testConfig(t, dir))
	huge := mint(nil, "a", "pretend this is huge")
	for _, k := range []string{"huge", "small"} {
		if err := q.StoreHint(t.Context(), "b", []byte(k), huge); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.dropTooLarge(t.Context(), q.targets["b"], Hint{Key: []byte("huge"), Siblings: huge}, ErrTooLarge); err != nil {
		t.Fatal(err)
	}
	q2 := openQueue(t, testConfig(t, crashCopy(t, dir)))
	if keys := q2.targets["b"].pendingKeys(); len(keys) != 1 || keys[0] != "small" {
		t.Fatalf("pending after the crash %v, want [small]", keys)
	}
}

// Compaction rewrites only pending keys: the compacted log holds one hint
// record per pending key and no forget record, and replays to the same
// index.
func TestCompactionWithForgetRecords(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SegmentBytes = 4096
	q, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]vclock.Siblings{}
	var keys []string
	for i := range 200 {
		k := fmt.Sprintf("k%03d", i)
		keys = append(keys, k)
		want[k] = mint(nil, "a", fmt.Sprint(i))
		if err := q.StoreHint(t.Context(), "b", []byte(k), want[k]); err != nil {
			t.Fatal(err)
		}
	}
	tg := q.targets["b"]
	for len(keys) > 50 {
		var batch []Hint
		batch, _ = tg.batch(keys[:10], 10, 1<<20, noCutoff)
		if err := q.ack(t.Context(), tg, batch, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, h := range batch {
			delete(want, string(h.Key))
		}
		keys = keys[10:]
	}
	before := crashCopy(t, dir)
	if err := q.compactLog(tg); err != nil {
		t.Fatal(err)
	}
	// A crash after the rewrite and before the old segments were deleted
	// leaves both: the old segments and the rewritten one after them.
	if err := os.CopyFS(filepath.Join(before, "b"), os.DirFS(filepath.Join(dir, "b"))); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	mid := openQueue(t, testConfig(t, before))
	if got := len(mid.targets["b"].index); got != 50 {
		t.Fatalf("old and rewritten segments replay to %d pending, want 50", got)
	}
	for k, s := range want {
		if !mid.targets["b"].index[k].sibs.Equal(s) {
			t.Fatalf("%s after old and rewritten segments: %v, want %v", k, mid.targets["b"].index[k].sibs, s)
		}
	}
	recs := logRecords(t, filepath.Join(dir, "b"))
	if len(recs) != 50 {
		t.Fatalf("compacted log holds %d records, want 50", len(recs))
	}
	for _, r := range recs {
		if r.Forget || !r.Siblings.Equal(want[string(r.Key)]) {
			t.Fatalf("compacted log holds %+v", r)
		}
	}
	q2 := openQueue(t, cfg)
	if got := len(q2.targets["b"].index); got != 50 {
		t.Fatalf("pending after reopen %d, want 50", got)
	}
}

// A log written before forget records existed (version 1 records only)
// replays, and so does one where forget records follow them.
func TestV1LogReplays(t *testing.T) {
	v1 := []string{
		"0193c4026b31919592a162cf00000000000000019192a161cf0000000000000001c40179c2d30000000000000001d317979cfe362a0000",
		"0193c4026b32919592a161cf000000000000000190c4027632c2d30000000000000001d317979cfe71c4ca00",
	}
	forgetK1, err := encodeForget([]byte("k1"), 1_700_000_000_000_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		forget bool
		want   []string
	}{
		{"v1 only", false, []string{"k1", "k2"}},
		{"v1 then forget", true, []string{"k2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := storage.OpenLog(storage.LogConfig{Dir: filepath.Join(dir, "b"), Fsync: storage.FsyncNone})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range v1 {
				b, _ := hex.DecodeString(h)
				if _, err := l.Append(t.Context(), b); err != nil {
					t.Fatal(err)
				}
			}
			if tc.forget {
				if _, err := l.Append(t.Context(), forgetK1); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, dir)
			// The records are from 2023: keep them inside the grace.
			cfg.Clock = newFakeClock(time.Unix(1_700_000_100, 0))
			q := openQueue(t, cfg)
			got := q.targets["b"].pendingKeys()
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("pending %v, want %v", got, tc.want)
			}
			if e := q.targets["b"].index["k2"]; e.since != 1_700_000_001_000_000_000 {
				t.Fatalf("k2 since %d", e.since)
			}
		})
	}
}

// gatedFS holds every log write back, once armed, until the test opens
// the gate: it makes "the round went on before its forget records were
// written" observable without timing.
type gatedFS struct {
	storage.OSFS
	mu      sync.Mutex    // guards armed
	armed   bool          // writes wait for open
	blocked chan struct{} // a write is waiting (buffered 1)
	open    chan struct{} // closed by release to let writes through
	once    sync.Once
}

// release lets every write through, now and later.
func (g *gatedFS) release() { g.once.Do(func() { close(g.open) }) }

func newGatedFS() *gatedFS {
	return &gatedFS{blocked: make(chan struct{}, 1), open: make(chan struct{})}
}

func (g *gatedFS) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *gatedFS) Create(name string) (storage.File, error) {
	f, err := g.OSFS.Create(name)
	return gatedFile{f, g}, err
}

func (g *gatedFS) OpenAppend(name string) (storage.File, error) {
	f, err := g.OSFS.OpenAppend(name)
	return gatedFile{f, g}, err
}

type gatedFile struct {
	storage.File
	g *gatedFS
}

func (f gatedFile) Write(p []byte) (int, error) {
	f.g.mu.Lock()
	armed := f.g.armed
	f.g.mu.Unlock()
	if armed {
		signal(f.g.blocked)
		<-f.g.open
	}
	return f.File.Write(p)
}

// A round does not send its next batch before the previous batch's
// forget records are durable.
func TestAckWaitsForForgetRecords(t *testing.T) { synctest.Test(t, testAckWaitsForForgetRecords) }

func testAckWaitsForForgetRecords(t *testing.T) {
	gfs := newGatedFS()
	defer gfs.release() // also on failure, so that Close can finish
	cfg := testConfig(t, t.TempDir())
	cfg.FS = gfs
	cfg.BatchSize = 1
	var calls atomic.Int32
	cfg.Deliverer = DelivererFunc(func(ctx context.Context, target string, batch []Hint) error {
		if calls.Add(1) == 1 {
			gfs.arm() // the first batch's forget record will wait
		}
		return nil
	})
	q := openQueue(t, cfg)
	for i := range 3 {
		store(t, q, "b", fmt.Sprintf("k%d", i), mint(nil, "a", fmt.Sprint(i)))
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-gfs.blocked
	// Let fake time pass for pacing with the write held back. Less than
	// RetryInterval: were the round not waiting, it would be in reclaim,
	// holding t.mu for the held-back write, and a retry tick's sweep would
	// wait on that mutex, which synctest does not count as blocked.
	time.Sleep(cfg.RetryInterval / 4)
	synctest.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d batches sent while the first batch's forget record was not written, want 1", n)
	}
	gfs.release()
	testkit.Eventually(t, settle, "every hint delivered", func() bool { return q.PendingFor("b").Hints == 0 })
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d batches sent, want 3", n)
	}
}
