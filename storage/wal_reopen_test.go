package storage

import (
	"sync"
	"testing"
)

// opLog records the mutating operations a faultFS sees, in order.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (o *opLog) record(op, name string) error {
	o.mu.Lock()
	o.ops = append(o.ops, op+" "+name)
	o.mu.Unlock()
	return nil
}

func (o *opLog) index(want string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, op := range o.ops {
		if op == want {
			return i
		}
	}
	return -1
}

// A process killed before fsyncing leaves its last segment's bytes in the
// page cache only. The next process must make them durable itself before
// it records the segment's length at a clean Close or seals the segment
// with a Roll, even when it appends nothing: otherwise a power loss
// leaves the log shorter than the recorded end and a healthy WAL is
// refused.
func TestReopenedSegmentIsSyncedWithoutWrites(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  func(t *testing.T, l *Log)
	}{
		{"close", func(t *testing.T, l *Log) {}},
		{"roll", func(t *testing.T, l *Log) {
			if _, err := l.Roll(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// The first process's records stand in for ones a killed
			// process handed to the OS without fsync: what matters is
			// what the second process does with them.
			l := openLogT(t, LogConfig{Dir: dir, Fsync: FsyncNone})
			for _, rec := range []string{"a", "bb", "ccc"} {
				if _, err := l.Append(t.Context(), []byte(rec)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			var ops opLog
			ffs := &faultFS{}
			ffs.setFail(ops.record)
			l = openLogT(t, LogConfig{Dir: dir, Fsync: FsyncNone, FS: ffs})
			tc.act(t, l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			seg1 := l.path(1)
			synced := ops.index("sync " + seg1)
			if synced < 0 {
				t.Fatalf("segment 1 was never fsynced by the reopening process; ops %v", ops.ops)
			}
			if created := ops.index("create " + l.path(2)); created >= 0 && created < synced {
				t.Fatalf("segment 2 created (op %d) before segment 1 was fsynced (op %d)", created, synced)
			}
		})
	}
}
