package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs/vfstest"
)

// crashFSConfig is a config for an engine on c, with small segments so
// that the WAL rolls, and snapshots only when the test asks.
func crashFSConfig(t testing.TB, c *vfstest.CrashFS, fsync FsyncPolicy) Config {
	cfg := testConfig(t, "/data")
	cfg.FS = c
	cfg.Fsync = fsync
	cfg.SegmentBytes = 4096
	cfg.SnapshotBytes = 1 << 40
	return cfg
}

// crashPoint is what a crash at one moment leaves, and how many writes
// had been acknowledged by then.
type crashPoint struct {
	fs    *vfstest.CrashFS
	acked int
}

// recordCrashes makes c capture, before every mutating operation, a plain
// and a torn crash clone with the number of acknowledged writes. The
// function it returns stops that, adds the pair of the state at that
// moment (every write acknowledged) and returns them all.
func recordCrashes(c *vfstest.CrashFS, acked *atomic.Int64) func() []crashPoint {
	var mu sync.Mutex
	var points []crashPoint
	rng := rand.New(rand.NewPCG(11, 13))
	capture := func() {
		// Read acked first: a write acknowledged after this moment may or
		// may not be in the clone, one before it must be.
		n := int(acked.Load())
		mu.Lock()
		defer mu.Unlock()
		points = append(points, crashPoint{c.CrashClone(), n}, crashPoint{c.CrashCloneTorn(rng), n})
	}
	c.SetHook(func(vfstest.Op, string) error { capture(); return nil })
	return func() []crashPoint {
		c.SetHook(nil)
		capture()
		mu.Lock()
		defer mu.Unlock()
		return points
	}
}

func crashKey(i int) string   { return fmt.Sprintf("k%03d", i) }
func crashValue(i int) string { return fmt.Sprintf("v%d-%s", i, strings.Repeat("x", i*7%300)) }

// With fsync always, a crash at any point of a first start (the data and
// WAL directories made), a run of writes, WAL rolls and snapshots (each
// snapshot's temp file, fsync, rename, directory fsync, and the removal of
// old snapshots and WAL segments) loses no acknowledged write, tears or
// not, and every recovery opens cleanly.
func TestCrashFSAckedWritesSurviveEveryCrashPoint(t *testing.T) {
	c := vfstest.NewCrashFS()
	var acked atomic.Int64
	stop := recordCrashes(c, &acked)
	e := openT(t, crashFSConfig(t, c, FsyncAlways))
	const writes = 90
	for i := range writes {
		put(t, e, crashKey(i), crashValue(i))
		acked.Store(int64(i + 1))
		if i%20 == 19 {
			if err := e.Snapshot(context.Background()); err != nil {
				t.Fatalf("snapshot after %d writes: %v", i+1, err)
			}
		}
	}
	points := stop()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if len(points) < 2*writes {
		t.Fatalf("only %d crash points recorded", len(points))
	}
	for i, p := range points {
		checkRecovery(t, fmt.Sprintf("crash point %d", i), p, writes)
	}
}

// checkRecovery opens the engine on p.fs and checks that every write
// acknowledged before the crash is there, and nothing else is wrong.
func checkRecovery(t *testing.T, name string, p crashPoint, writes int) {
	t.Helper()
	e, err := Open(crashFSConfig(t, p.fs, FsyncAlways))
	if err != nil {
		t.Errorf("%s (%d acked): recovery failed: %v", name, p.acked, err)
		return
	}
	defer e.Close()
	for i := range writes {
		v, ok := valueOf(e, crashKey(i))
		switch {
		case ok && v != crashValue(i):
			t.Errorf("%s: %s reads %q", name, crashKey(i), v)
		case !ok && i < p.acked:
			t.Errorf("%s: acknowledged write %s (of %d acked) lost", name, crashKey(i), p.acked)
		}
	}
}

// With fsync none, a crash may lose recent writes and tear the last
// record: recovery cuts the torn tail and keeps a prefix of the writes
// (a single writer appends them in order), never fails.
func TestCrashFSTornTailKeepsAPrefix(t *testing.T) {
	torn := 0
	for seed := range uint64(20) {
		c := vfstest.NewCrashFS()
		e := openT(t, crashFSConfig(t, c, FsyncNone))
		const writes = 40
		for i := range writes {
			put(t, e, crashKey(i), crashValue(i))
		}
		crashed := c.CrashCloneTorn(rand.New(rand.NewPCG(seed, 99)))
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		e2, err := Open(crashFSConfig(t, crashed, FsyncNone))
		if err != nil {
			t.Fatalf("seed %d: recovery: %v", seed, err)
		}
		kept := 0
		for kept < writes {
			if _, ok := valueOf(e2, crashKey(kept)); !ok {
				break
			}
			kept++
		}
		for i := range writes {
			v, ok := valueOf(e2, crashKey(i))
			if ok && (i >= kept || v != crashValue(i)) {
				t.Errorf("seed %d: %s = %q survives but is not in the recovered prefix of %d writes", seed, crashKey(i), v, kept)
			}
		}
		if kept < writes {
			torn++
		}
		if err := e2.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if torn == 0 {
		t.Error("no crash lost a write: the test tears nothing")
	}
}
