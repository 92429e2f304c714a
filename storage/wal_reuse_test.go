package storage

import (
	"fmt"
	"sync"
	"testing"
)

// spareBytes is what the log keeps for its next batch. Read only once the
// writer has exited (after Close).
func spareBytes(l *Log) int {
	return cap(l.spareBuf) + cap(l.spareOps)*opBytes
}

// TestWALSparesBounded: what the writer keeps for the next batch, the
// record buffer and the op list together, stays within maxSpareBuf, even
// after a burst of small records queued behind a slow fsync; a small
// batch's buffers are kept.
func TestWALSparesBounded(t *testing.T) {
	t.Run("burst", func(t *testing.T) {
		ffs := &faultFS{}
		cfg := DefaultLogConfig()
		cfg.Dir = t.TempDir()
		cfg.FS = ffs
		l := openLogT(t, cfg)
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		ffs.setFail(func(op, _ string) error {
			if op == "sync" {
				once.Do(func() {
					close(entered)
					<-release
				})
			}
			return nil
		})
		first, err := l.AppendAsync([]byte("first"))
		if err != nil {
			t.Fatal(err)
		}
		<-entered // the writer is in the first batch's fsync
		// 100,000 ops of 24 bytes: more than the bound in the op list
		// alone, and a record buffer above it too.
		const burst = 100_000
		last := make([]Pending, 0, 1)
		for i := range burst {
			p, err := l.AppendAsync([]byte{byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			if i == burst-1 {
				last = append(last, p)
			}
		}
		close(release)
		for _, p := range append(last, first) {
			if _, err := p.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := spareBytes(l); got > maxSpareBuf {
			t.Fatalf("kept %d bytes after a burst (buffer cap %d, ops cap %d), want at most %d",
				got, cap(l.spareBuf), cap(l.spareOps), maxSpareBuf)
		}
	})
	t.Run("small", func(t *testing.T) {
		cfg := DefaultLogConfig()
		cfg.Dir = t.TempDir()
		l := openLogT(t, cfg)
		for i := range 10 {
			if _, err := l.Append(t.Context(), fmt.Appendf(nil, "record %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if l.spareBuf == nil || l.spareOps == nil || spareBytes(l) > maxSpareBuf {
			t.Fatalf("after small batches kept buffer cap %d, ops cap %d; want both, within %d",
				cap(l.spareBuf), cap(l.spareOps), maxSpareBuf)
		}
	})
}
