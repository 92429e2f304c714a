package replica

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// gatedConn counts writes and holds the first one until release is closed.
type gatedConn struct {
	net.Conn
	writes  atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (g *gatedConn) Write(b []byte) (int, error) {
	if g.writes.Add(1) == 1 {
		close(g.entered)
		<-g.release
	}
	return g.Conn.Write(b)
}

// readFrames reads n frames from r on another goroutine.
func readFrames(r net.Conn, n int) <-chan []frame {
	out := make(chan []frame, 1)
	go func() {
		br := bufio.NewReader(r)
		var got []frame
		for range n {
			f, err := readFrame(br, 1<<20)
			if err != nil {
				break
			}
			got = append(got, f)
		}
		out <- got
	}()
	return out
}

func TestFrameWriterBatchesQueuedFrames(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	g := &gatedConn{Conn: a, entered: make(chan struct{}), release: make(chan struct{})}
	w := newFrameWriter(g, func(err error) { t.Errorf("fail(%v) on a healthy connection", err) })
	const queued = 20
	got := readFrames(b, 1+queued)
	first := make(chan error, 1)
	go func() { first <- w.write(&frame{typ: frameResponse, id: 1, body: []byte("first")}, time.Time{}) }()
	<-g.entered
	// The first sender is inside its write: these queue and return at once.
	for i := range queued {
		id := uint64(2 + i)
		if err := w.write(&frame{typ: frameResponse, id: id, body: []byte(fmt.Sprint(id))}, time.Time{}); err != nil {
			t.Fatalf("queued write %d: %v", id, err)
		}
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatalf("first write: %v", err)
	}
	frames := <-got
	if len(frames) != 1+queued {
		t.Fatalf("read %d frames, want %d", len(frames), 1+queued)
	}
	for i, f := range frames {
		if f.id != uint64(i+1) {
			t.Fatalf("frame %d has id %d", i, f.id)
		}
		if i > 0 && string(f.body) != fmt.Sprint(f.id) {
			t.Fatalf("frame %d body %q", f.id, f.body)
		}
	}
	// One write for the first frame, one for everything queued behind it.
	if n := g.writes.Load(); n != 2 {
		t.Fatalf("%d writes, want 2", n)
	}
}

func TestFrameWriterConcurrentFramesArriveWhole(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := newFrameWriter(a, func(err error) { t.Errorf("fail(%v) on a healthy connection", err) })
	const senders, each = 8, 200
	got := readFrames(b, senders*each)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				id := uint64(s*each + i + 1)
				body := make([]byte, int(id%3000)) // some frames beyond the buffer's tail
				for j := range body {
					body[j] = byte(id)
				}
				if err := w.write(&frame{typ: frameRequest, id: id, budget: int64(id), body: body}, time.Now().Add(time.Hour)); err != nil {
					t.Errorf("write %d: %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	frames := <-got
	if len(frames) != senders*each {
		t.Fatalf("read %d frames, want %d", len(frames), senders*each)
	}
	seen := map[uint64]bool{}
	for _, f := range frames {
		if seen[f.id] || f.budget != int64(f.id) || len(f.body) != int(f.id%3000) {
			t.Fatalf("frame %d: duplicate or mangled (budget %d, %d bytes)", f.id, f.budget, len(f.body))
		}
		for _, c := range f.body {
			if c != byte(f.id) {
				t.Fatalf("frame %d: body corrupted", f.id)
			}
		}
		seen[f.id] = true
	}
}

func TestFrameWriterFailureFailsOnceAndSticks(t *testing.T) {
	a, b := net.Pipe()
	_ = b.Close() // every write fails
	defer a.Close()
	var fails atomic.Int32
	var failErr error
	w := newFrameWriter(a, func(err error) { fails.Add(1); failErr = err })
	err := w.write(&frame{typ: frameResponse, id: 1, body: []byte("x")}, time.Time{})
	if err == nil {
		t.Fatal("write to a closed peer succeeded")
	}
	if fails.Load() != 1 || !errors.Is(failErr, err) {
		t.Fatalf("fail called %d times with %v; want once with %v", fails.Load(), failErr, err)
	}
	if err2 := w.write(&frame{typ: frameResponse, id: 2}, time.Time{}); !errors.Is(err2, err) {
		t.Fatalf("write after the failure: %v, want %v", err2, err)
	}
	if fails.Load() != 1 {
		t.Fatalf("fail called %d times, want once", fails.Load())
	}
}

// TestFrameWriterBoundsTheQueue: while a write is stuck (a peer that does
// not read), senders queue up to the bound and the next one waits, so
// the server's replies cannot pile up without limit; once the write goes
// through, the waiting sender's frame follows.
func TestFrameWriterBoundsTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		g := &gatedConn{Conn: a, entered: make(chan struct{}), release: make(chan struct{})}
		w := newFrameWriter(g, func(err error) { t.Errorf("fail(%v) on a healthy connection", err) })
		body := make([]byte, 100)
		w.maxQueued = 2 * (frameHeader + len(body)) // two queued frames
		got := readFrames(b, 4)
		go func() { _ = w.write(&frame{typ: frameResponse, id: 1, body: body}, time.Time{}) }()
		<-g.entered
		for id := uint64(2); id <= 3; id++ {
			if err := w.write(&frame{typ: frameResponse, id: id, body: body}, time.Time{}); err != nil {
				t.Fatalf("write %d: %v", id, err)
			}
		}
		var fourth atomic.Bool
		go func() {
			_ = w.write(&frame{typ: frameResponse, id: 4, body: body}, time.Time{})
			fourth.Store(true)
		}()
		synctest.Wait()
		if fourth.Load() {
			t.Fatal("a sender beyond the bound queued while the write was stuck")
		}
		close(g.release)
		frames := <-got
		if len(frames) != 4 {
			t.Fatalf("read %d frames, want 4", len(frames))
		}
		synctest.Wait()
		if !fourth.Load() {
			t.Fatal("the waiting sender never returned")
		}
	})
}
