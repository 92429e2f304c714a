package hints

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// fakeClock is testkit's settable clock for the window tests; After uses
// the runtime's timers, which in the delivery tests (run in synctest
// bubbles) are fake time already.
type fakeClock struct{ *testkit.Clock }

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{testkit.NewClock(now)} }

func (c *fakeClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// testConfig is a fast configuration in dir: no fsync, short retry.
func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.Fsync = storage.FsyncNone
	cfg.SegmentBytes = 64 << 10
	cfg.RetryInterval = 20 * time.Millisecond
	cfg.DeliveryRate = 1_000_000
	cfg.Logger = testkit.Logger(t)
	return cfg
}

func openQueue(t testing.TB, cfg Config) *Queue {
	t.Helper()
	q, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// mint returns the set after a blind write of value by actor on top of
// cur.
func mint(cur vclock.Siblings, actor, value string) vclock.Siblings {
	_, s := vclock.Mint(cur, actor, vclock.Write{Blind: true, Value: []byte(value), WallTime: 1})
	return s
}

// sink is a fake target cluster: per node, a map merged with vclock.Merge,
// as Store.Apply does. It can be made to fail.
type sink struct {
	mu      sync.Mutex // guards all fields
	data    map[string]map[string]vclock.Siblings
	fail    map[string]error
	batches int
	hints   int
}

func newSink() *sink {
	return &sink{data: map[string]map[string]vclock.Siblings{}, fail: map[string]error{}}
}

func (s *sink) Deliver(ctx context.Context, target string, batch []Hint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail[target]; err != nil {
		return err
	}
	if s.data[target] == nil {
		s.data[target] = map[string]vclock.Siblings{}
	}
	for _, h := range batch {
		s.data[target][string(h.Key)] = vclock.Merge(s.data[target][string(h.Key)], h.Siblings)
	}
	s.batches++
	s.hints += len(batch)
	return nil
}

func (s *sink) setFail(target string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[target] = err
}

func (s *sink) get(target, key string) vclock.Siblings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data[target][key]
}

func (s *sink) keys(target string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data[target])
}

// settle bounds every wait for the queue (testkit.Eventually in the
// test's synctest bubble), in fake time: it counts retry rounds, not how
// fast a loaded machine runs them.
const settle = 10 * time.Second

// crashCopy returns a copy of the hint directory dir taken now, while the
// queue that owns it is still open: what a SIGKILL at this instant leaves
// on disk (every byte the logs have written, since the page cache
// survives a process kill; nothing that Close would still have done). The
// caller takes it at a quiescent point (the queue's goroutines blocked) so
// that the copy is not torn mid-record, and opens a new queue on it.
func crashCopy(t testing.TB, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "crashed")
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatalf("copy %s: %v", dir, err)
	}
	return dst
}

// logRecords returns every record of the log in dir, decoded, in order.
// The log must not be open elsewhere for writing.
func logRecords(t testing.TB, dir string) []record {
	t.Helper()
	l, err := storage.OpenLog(storage.LogConfig{Dir: dir, Fsync: storage.FsyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []record
	err = l.Replay(storage.Position{}, func(_ storage.Position, rec []byte) error {
		r, err := decodeRecord(rec)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// noCutoff makes target.batch take keys of any age.
const noCutoff int64 = math.MinInt64
