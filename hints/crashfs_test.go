package hints

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs/vfstest"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// storedHint is one hint StoreHint acknowledged.
type storedHint struct {
	key  string
	sibs vclock.Siblings
}

// crashPoint is what a crash at one moment leaves, and how many hints
// had been acknowledged by then.
type crashPoint struct {
	fs    *vfstest.CrashFS
	acked int
}

// With fsync always, a crash at any point of storing hints and of
// compacting the log (roll, rewrite, deletion of the old segments),
// plain or torn, loses no acknowledged hint, and every reopen succeeds.
func TestCrashFSHintsSurviveEveryCrashPoint(t *testing.T) {
	c := vfstest.NewCrashFS()
	cfg := testConfig(t, "/data/hints")
	cfg.Fsync = storage.FsyncAlways
	cfg.SegmentBytes = 4096
	cfg.fs = c
	q := openQueue(t, cfg)
	var (
		mu     sync.Mutex // guards points
		points []crashPoint
		acked  atomic.Int64
	)
	rng := rand.New(rand.NewPCG(5, 8))
	c.SetHook(func(vfstest.Op, string) error {
		n := int(acked.Load())
		mu.Lock()
		defer mu.Unlock()
		points = append(points, crashPoint{c.CrashClone(), n}, crashPoint{c.CrashCloneTorn(rng), n})
		return nil
	})
	var stored []storedHint
	cur := map[string]vclock.Siblings{}
	for i := range 120 {
		k := fmt.Sprintf("k%d", i%4)
		cur[k] = mint(cur[k], "a", fmt.Sprint(i))
		if err := q.StoreHint(t.Context(), "b", []byte(k), cur[k]); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, storedHint{k, cur[k]})
		acked.Store(int64(len(stored)))
	}
	before := q.PendingFor("b").LogBytes
	if err := q.compactLog(q.targets["b"]); err != nil {
		t.Fatal(err)
	}
	c.SetHook(nil)
	if after := q.PendingFor("b").LogBytes; after >= before {
		t.Fatalf("log %d bytes before compaction, %d after: nothing was compacted", before, after)
	}
	for i, p := range points {
		checkHintRecovery(t, fmt.Sprintf("crash point %d", i), cfg, p.fs, stored[:p.acked])
	}
}

// checkHintRecovery opens a queue on fs and checks that it holds, for
// every key, at least the last acknowledged set.
func checkHintRecovery(t *testing.T, name string, cfg Config, fs *vfstest.CrashFS, acked []storedHint) {
	t.Helper()
	cfg.fs = fs
	q, err := Open(cfg)
	if err != nil {
		t.Errorf("%s: reopen: %v", name, err)
		return
	}
	defer q.Close()
	want := map[string]vclock.Siblings{}
	for _, h := range acked {
		want[h.key] = h.sibs
	}
	tg := q.targets["b"]
	for k, s := range want {
		var got vclock.Siblings
		if tg != nil {
			got = tg.index[k].sibs
		}
		if !vclock.Merge(got, s).Equal(got) {
			t.Errorf("%s: %s recovered as %v, which misses the acknowledged %v", name, k, got, s)
		}
	}
}
