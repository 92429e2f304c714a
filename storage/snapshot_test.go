package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

func snapFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "snap-*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSnapshotRetentionAndReopen(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SnapshotBytes = -1
	e := openT(t, cfg)
	for round := range 4 {
		for i := range 50 {
			put(t, e, fmt.Sprintf("k%d", i), fmt.Sprintf("r%d", round))
		}
		if err := e.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	put(t, e, "after", "x")
	st := e.Stats()
	if st.Snapshots != snapshotsKept || len(snapFiles(t, cfg.Dir)) != snapshotsKept {
		t.Fatalf("snapshots kept: stats %d, files %v", st.Snapshots, snapFiles(t, cfg.Dir))
	}
	// Segments from the older kept snapshot's start on: that snapshot's,
	// the newer's, and nothing before.
	if segs := e.log.Segments(); segs[0] != e.snapshots[0] {
		t.Fatalf("segments %v, snapshots %v", segs, e.snapshots)
	}
	if st.LastSnapshot.IsZero() {
		t.Fatal("LastSnapshot not set")
	}
	before := dump(e)
	e.Close()
	e = openT(t, cfg)
	defer e.Close()
	if err := sameContents(before, dump(e)); err != nil {
		t.Fatal(err)
	}
}

// Snapshots taken while writers run lose nothing: after reopening, every
// key holds exactly what it held in memory at Close.
func TestSnapshotDuringWrites(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SnapshotBytes = -1
	cfg.SegmentBytes = 8192
	e := openT(t, cfg)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 5000; i++ {
				put(t, e, fmt.Sprintf("w%d-k%d", w, i%97), fmt.Sprint(i))
			}
		})
	}
	for range 5 {
		if err := e.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	before := dump(e)
	e.Close()
	e = openT(t, cfg)
	defer e.Close()
	if err := sameContents(before, dump(e)); err != nil {
		t.Fatal(err)
	}
}

// TestBackgroundSnapshotAtThreshold runs in a synctest bubble: its
// ten-second bound on the background snapshot is fake time, which passes
// only if the snapshot goroutine is blocked for good (file I/O does not
// move the bubble's clock), so a slow disk or a busy machine cannot fail it.
func TestBackgroundSnapshotAtThreshold(t *testing.T) {
	synctest.Test(t, testBackgroundSnapshotAtThreshold)
}

func testBackgroundSnapshotAtThreshold(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SnapshotBytes = 16 << 10
	done := make(chan error, 16)
	cfg.OnSnapshot = func(_ time.Duration, err error) { done <- err }
	e := openT(t, cfg)
	defer e.Close()
	for i := 0; i < 1000 && len(done) == 0; i++ {
		put(t, e, fmt.Sprint("k", i), string(make([]byte, 100)))
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no background snapshot after crossing SnapshotBytes")
	}
}

func corruptFile(t *testing.T, name string, off int64) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(data))
	}
	data[off] ^= 0x40
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedSnapshot(t *testing.T) {
	t.Run("newest damaged falls back to previous", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir())
		cfg.SnapshotBytes = -1
		e := openT(t, cfg)
		put(t, e, "a", "1")
		e.Snapshot(t.Context())
		put(t, e, "b", "2")
		e.Snapshot(t.Context())
		put(t, e, "c", "3")
		before := dump(e)
		e.Close()
		snaps := snapFiles(t, cfg.Dir)
		corruptFile(t, snaps[len(snaps)-1], -20)
		e = openT(t, cfg)
		defer e.Close()
		if err := sameContents(before, dump(e)); err != nil {
			t.Fatal(err)
		}
		if m, _ := filepath.Glob(filepath.Join(cfg.Dir, "*.damaged")); len(m) != 1 {
			t.Fatalf("damaged snapshot not set aside: %v", m)
		}
	})
	t.Run("only snapshot damaged, WAL complete", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir())
		cfg.SnapshotBytes = -1
		e := openT(t, cfg)
		put(t, e, "a", "1")
		e.Snapshot(t.Context())
		put(t, e, "b", "2")
		before := dump(e)
		e.Close()
		corruptFile(t, snapFiles(t, cfg.Dir)[0], 30)
		e = openT(t, cfg)
		defer e.Close()
		if err := sameContents(before, dump(e)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("all snapshots damaged, WAL trimmed", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir())
		cfg.SnapshotBytes = -1
		e := openT(t, cfg)
		for i := range 3 {
			put(t, e, fmt.Sprint(i), "v")
			e.Snapshot(t.Context())
		}
		e.Close()
		for _, s := range snapFiles(t, cfg.Dir) {
			corruptFile(t, s, -3)
		}
		_, err := Open(cfg)
		var ce *CorruptError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.File == "" {
			t.Fatalf("Open = %v, want a CorruptError naming a file", err)
		}
	})
}

// Snapshots keep every key, old tombstones included: only Collect forgets
// them, under the anti-entropy rule (collect_test.go). A snapshot also
// keeps each key's receipt time.
func TestSnapshotKeepsTombstonesAndReceiptTimes(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig(t, t.TempDir())
	cfg.SnapshotBytes = -1
	cfg.TombstoneGC = time.Hour
	cfg.Now = clk.Now
	e := openT(t, cfg)
	_, old := vclock.Mint(nil, "coord", vclock.Write{Tombstone: true, WallTime: 1})
	if _, err := e.Apply(t.Context(), []byte("old"), old); err != nil {
		t.Fatal(err)
	}
	recv := recvOf(e, "old")
	if recv != clk.Now().UnixNano() {
		t.Fatalf("receipt time %d, want the clock's %d", recv, clk.Now().UnixNano())
	}
	clk.Advance(100 * time.Hour)
	for p := range cfg.Partitions {
		e.MarkSynced(p, clk.Now())
	}
	if err := e.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e.Get([]byte("old")) == nil {
		t.Fatal("snapshot collected a tombstone")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openT(t, cfg)
	defer e.Close()
	if e.Get([]byte("old")) == nil || recvOf(e, "old") != recv {
		t.Fatalf("after reopen from the snapshot: set %v, receipt time %d (want %d)", e.Get([]byte("old")), recvOf(e, "old"), recv)
	}
}

// A Snapshot call that was waiting for a running snapshot when Close began
// must not start once Close has gone on: it would roll the WAL, write a
// snapshot file and delete segments in a directory that Close is releasing
// (and another process may open next).
func TestSnapshotWaitingDuringCloseIsRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SnapshotBytes = -1
	e := openT(t, cfg)
	put(t, e, "k", "v")
	segs := e.log.Segments()

	e.snapMu.Lock() // a snapshot in progress
	res := make(chan error, 1)
	go func() { res <- e.Snapshot(context.Background()) }()
	waitBlockedIn(t, "(*Engine).Snapshot")
	// Close begins: it marks the engine closed, then waits for snapMu.
	e.closeMu.Lock()
	e.closed = true
	e.closeMu.Unlock()
	e.snapMu.Unlock() // the running snapshot ends; the waiter gets snapMu first

	if err := <-res; !errors.Is(err, ErrClosed) {
		t.Fatalf("Snapshot after Close began = %v, want ErrClosed", err)
	}
	if got := e.log.Segments(); !slices.Equal(got, segs) {
		t.Fatalf("WAL segments changed after Close began: %v -> %v", segs, got)
	}
	e.closeMu.Lock()
	e.closed = false
	e.closeMu.Unlock()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitBlockedIn waits until some goroutine is blocked on a mutex inside a
// function whose name contains fn: a real-clock wait on the goroutine
// dump, bounded far above any healthy wait.
func waitBlockedIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	testkit.Eventually(t, time.Minute, "a goroutine blocked on a mutex in "+fn, func() bool {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "sync.(*Mutex).Lock") && strings.Contains(g, fn) {
				return true
			}
		}
		return false
	})
}
