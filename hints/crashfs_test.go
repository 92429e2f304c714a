package hints

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs"
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
	cfg, stored, points := runHintsCrashScenario(t, c, c)
	for i, p := range points {
		for _, problem := range checkHintRecovery(fmt.Sprintf("crash point %d", i), cfg, p.fs, stored[:p.acked]) {
			t.Error(problem)
		}
	}
}

// skipSyncDir is a CrashFS whose SyncDir of one directory does nothing,
// as code that forgets that fsync would behave.
type skipSyncDir struct {
	*vfstest.CrashFS
	dir string
}

func (s skipSyncDir) SyncDir(dir string) error {
	if dir == s.dir {
		return nil
	}
	return s.CrashFS.SyncDir(dir)
}

// The crash test sees a missing fsync of the hints directory after a
// target's directory is made in it: the new directory, and with it every
// hint acknowledged in it, is gone after a crash.
func TestCrashFSHintsCatchMissingDirSync(t *testing.T) {
	c := vfstest.NewCrashFS()
	cfg, stored, points := runHintsCrashScenario(t, c, skipSyncDir{c, "/data/hints"})
	lost := 0
	for i, p := range points {
		lost += len(checkHintRecovery(fmt.Sprintf("crash point %d", i), cfg, p.fs, stored[:p.acked]))
	}
	if lost == 0 {
		t.Fatalf("no crash point of %d lost a hint although the hints directory was never synced", len(points))
	}
}

// runHintsCrashScenario stores 120 hints for one target with fsync always
// and small segments, then compacts its log, on fsys (which writes to c),
// and returns the config, the acknowledged hints in order and what a
// crash before each of c's mutating operations, and after the last,
// would leave.
func runHintsCrashScenario(t *testing.T, c *vfstest.CrashFS, fsys vfs.DirFS) (Config, []storedHint, []crashPoint) {
	t.Helper()
	cfg := testConfig(t, "/data/hints")
	cfg.Fsync = storage.FsyncAlways
	cfg.SegmentBytes = 4096
	cfg.FS = fsys
	q := openQueue(t, cfg)
	var (
		mu     sync.Mutex // guards points
		points []crashPoint
		acked  atomic.Int64
	)
	rng := rand.New(rand.NewPCG(5, 8))
	capture := func() {
		n := int(acked.Load())
		mu.Lock()
		defer mu.Unlock()
		points = append(points, crashPoint{c.CrashClone(), n}, crashPoint{c.CrashCloneTorn(rng), n})
	}
	c.SetHook(func(vfstest.Op, string) error { capture(); return nil })
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
	capture() // the state with every hint acknowledged and the log compacted
	if after := q.PendingFor("b").LogBytes; after >= before {
		t.Fatalf("log %d bytes before compaction, %d after: nothing was compacted", before, after)
	}
	return cfg, stored, points
}

// checkHintRecovery opens a queue on fs and returns what it finds wrong:
// a failed reopen, or a key that does not hold at least its last
// acknowledged set.
func checkHintRecovery(name string, cfg Config, fs *vfstest.CrashFS, acked []storedHint) []string {
	cfg.FS = fs
	q, err := Open(cfg)
	if err != nil {
		return []string{fmt.Sprintf("%s: reopen: %v", name, err)}
	}
	defer q.Close()
	want := map[string]vclock.Siblings{}
	for _, h := range acked {
		want[h.key] = h.sibs
	}
	var problems []string
	tg := q.targets["b"]
	for k, s := range want {
		var got vclock.Siblings
		if tg != nil {
			got = tg.index[k].sibs
		}
		if !vclock.Merge(got, s).Equal(got) {
			problems = append(problems, fmt.Sprintf("%s: %s recovered as %v, which misses the acknowledged %v", name, k, got, s))
		}
	}
	return problems
}
