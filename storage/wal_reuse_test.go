package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// spareBytes is what the log keeps for its next batch. Read only once the
// writer has exited (after Close).
func spareBytes(l *Log) int {
	return cap(l.spareBuf) + cap(l.spareOps)*opBytes
}

// TestWALReuseReplaysEveryBatch appends waves of records of different
// sizes and contents, so that the writer hands buffers, kept or dropped,
// from batch to batch, and checks that a replay returns every record byte
// for byte at the position its append reported, before and after a
// reopen.
func TestWALReuseReplaysEveryBatch(t *testing.T) {
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	cfg := DefaultLogConfig()
	cfg.Dir = t.TempDir()
	cfg.Fsync = FsyncNone
	cfg.SegmentBytes = 1 << 20
	l := openLogT(t, cfg)
	var want []replayed
	for wave := range 60 {
		n, size := 1+rng.IntN(200), 1+rng.IntN(64)
		if wave%4 == 1 {
			// Batches above the kept bound: their buffers are dropped.
			n, size = 1+rng.IntN(8), 1+rng.IntN(300<<10)
		}
		recs := make([][]byte, n)
		pend := make([]Pending, n)
		for i := range n {
			rec := make([]byte, 1+rng.IntN(size))
			for j := range rec {
				rec[j] = byte(rng.Uint32())
			}
			p, err := l.AppendAsync(rec)
			if err != nil {
				t.Fatal(err)
			}
			recs[i], pend[i] = rec, p
			if wave%9 == 4 && i == n/2 {
				if _, err := l.Barrier(); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, p := range pend {
			pos, err := p.Wait(t.Context())
			if err != nil {
				t.Fatalf("wave %d record %d: %v", wave, i, err)
			}
			want = append(want, replayed{pos, string(recs[i])})
		}
	}
	check := func(when string) {
		t.Helper()
		got := replayAll(t, l, Position{})
		if len(got) != len(want) {
			t.Fatalf("%s: replayed %d records, want %d", when, len(got), len(want))
		}
		for i := range want {
			if got[i].pos != want[i].pos || !bytes.Equal([]byte(got[i].rec), []byte(want[i].rec)) {
				t.Fatalf("%s: record %d at %v (%d bytes), want %v (%d bytes)",
					when, i, got[i].pos, len(got[i].rec), want[i].pos, len(want[i].rec))
			}
		}
	}
	check("open")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLogT(t, cfg)
	defer l.Close()
	check("reopened")
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
