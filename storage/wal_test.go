package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openLogT(t testing.TB, cfg LogConfig) *Log {
	t.Helper()
	l, err := OpenLog(cfg)
	if err != nil {
		t.Fatalf("OpenLog: %v", err)
	}
	return l
}

type replayed struct {
	pos Position
	rec string
}

func replayAll(t testing.TB, l *Log, from Position) []replayed {
	t.Helper()
	var out []replayed
	if err := l.Replay(from, func(pos Position, rec []byte) error {
		out = append(out, replayed{pos, string(rec)})
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

func TestLogAppendReplayRoll(t *testing.T) {
	cfg := DefaultLogConfig()
	cfg.Dir = t.TempDir()
	cfg.SegmentBytes = 4096
	l := openLogT(t, cfg)
	ctx := t.Context()
	var want []replayed
	for i := range 100 {
		rec := fmt.Sprintf("record-%03d-%s", i, bytes.Repeat([]byte("x"), 3*i))
		pos, err := l.Append(ctx, []byte(rec))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, replayed{pos, rec})
	}
	got := replayAll(t, l, Position{})
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d: got %+v want %+v", i, got[i], want[i])
		}
	}
	if segs := l.Segments(); len(segs) < 3 {
		t.Fatalf("no rolls: segments %v", segs)
	}
	// Replay from a position returns exactly the suffix.
	if tail := replayAll(t, l, want[60].pos); len(tail) != 40 || tail[0] != want[60] {
		t.Fatalf("replay from %v: %d records, first %+v", want[60].pos, len(tail), tail[0])
	}
	rollPos, err := l.Roll()
	if err != nil || rollPos.Offset != 0 || rollPos.Segment != l.Segments()[len(l.Segments())-1] {
		t.Fatalf("Roll = %v, %v; segments %v", rollPos, err, l.Segments())
	}
	p, err := l.Append(ctx, []byte("after roll"))
	if err != nil || p != rollPos {
		t.Fatalf("first record after roll at %v, want %v (%v)", p, rollPos, err)
	}
	sizeBefore := l.Size()
	if err := l.DeleteBefore(rollPos.Segment); err != nil {
		t.Fatal(err)
	}
	if segs := l.Segments(); len(segs) != 1 || l.Size() >= sizeBefore {
		t.Fatalf("DeleteBefore left %v, size %d -> %d", segs, sizeBefore, l.Size())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	l = openLogT(t, cfg)
	defer l.Close()
	if got := replayAll(t, l, Position{}); len(got) != 1 || got[0].rec != "after roll" {
		t.Fatalf("after reopen: %+v", got)
	}
	next, err := l.Append(ctx, []byte("next"))
	if err != nil || next.Segment != rollPos.Segment || next.Offset == 0 {
		t.Fatalf("append after reopen at %v: %v", next, err)
	}
}

func TestLogRejectsBadRecords(t *testing.T) {
	cfg := DefaultLogConfig()
	cfg.Dir = t.TempDir()
	l := openLogT(t, cfg)
	defer l.Close()
	if _, err := l.Append(t.Context(), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty record: %v", err)
	}
	if _, err := l.Append(t.Context(), make([]byte, MaxRecordBytes+1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized record: %v", err)
	}
}

// Under FsyncAlways concurrent appends share fsyncs: far fewer fsyncs than
// records. (Counts only; no timing.)
func TestGroupCommitBatches(t *testing.T) {
	cfg := DefaultLogConfig()
	cfg.Dir = t.TempDir()
	var syncs, synced atomic.Int64
	cfg.OnFsync = func(_ time.Duration, n int) { syncs.Add(1); synced.Add(int64(n)) }
	l := openLogT(t, cfg)
	defer l.Close()
	const writers, each = 32, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Append(t.Context(), fmt.Appendf(nil, "%d-%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if synced.Load() != writers*each {
		t.Fatalf("OnFsync counted %d records, want %d", synced.Load(), writers*each)
	}
	if syncs.Load() >= writers*each/2 {
		t.Fatalf("%d fsyncs for %d records: no group commit", syncs.Load(), writers*each)
	}
	t.Logf("%d records in %d fsyncs", writers*each, syncs.Load())
}

func TestLogIntervalAndNoneSyncOnClose(t *testing.T) {
	for _, policy := range []FsyncPolicy{FsyncInterval, FsyncNone} {
		t.Run(string(policy), func(t *testing.T) {
			ffs := &faultFS{}
			var syncs atomic.Int64
			ffs.setFail(func(op, _ string) error {
				if op == "sync" {
					syncs.Add(1)
				}
				return nil
			})
			cfg := LogConfig{Dir: t.TempDir(), Fsync: policy, FsyncInterval: time.Millisecond, FS: ffs}
			l := openLogT(t, cfg)
			if _, err := l.Append(t.Context(), []byte("a")); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if syncs.Load() == 0 {
				t.Fatal("Close did not fsync")
			}
		})
	}
}

func TestPendingWaitHonoursContext(t *testing.T) {
	b := newBatch()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := (Pending{b: b}).Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v", err)
	}
}

// midWriteFS shows Replay a segment as a reader sees it while the writer
// is inside its write(2): the file ends partway into the last record. On
// that read it runs onRead once (the test rolls the log there, as the
// writer may do right after finishing the write).
type midWriteFS struct {
	OSFS
	mu     sync.Mutex
	target string
	cut    int64
	onRead func()
}

func (f *midWriteFS) Open(name string) (File, error) {
	file, err := f.OSFS.Open(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	hit := name == f.target
	onRead := f.onRead
	if hit {
		f.target, f.onRead = "", nil
	}
	f.mu.Unlock()
	if !hit {
		return file, nil
	}
	size, err := file.Size()
	if err != nil {
		return nil, err
	}
	if onRead != nil {
		onRead()
	}
	return shortFile{file, size - f.cut}, nil
}

type shortFile struct {
	File
	size int64
}

func (f shortFile) Size() (int64, error) { return f.size, nil }

// Replay documents that it may run while records are appended. A segment
// that was current when Replay read it may end inside a record being
// written; if the log rolled right after, that is still a partial write,
// not corruption.
func TestReplayDuringAppendAndRoll(t *testing.T) {
	fsys := &midWriteFS{}
	cfg := DefaultLogConfig()
	cfg.Dir = t.TempDir()
	cfg.FS = fsys
	l := openLogT(t, cfg)
	defer l.Close()
	for i := range 3 {
		if _, err := l.Append(t.Context(), fmt.Appendf(nil, "record %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	fsys.mu.Lock()
	fsys.target, fsys.cut = l.path(1), 3
	fsys.onRead = func() {
		if _, err := l.Roll(); err != nil {
			t.Error(err)
		}
	}
	fsys.mu.Unlock()
	got := replayAll(t, l, Position{})
	if len(got) != 2 || got[1].rec != "record 1" {
		t.Fatalf("replay = %v, want the two complete records", got)
	}
}
