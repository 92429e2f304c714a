package replica

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// stepConn is a net.Conn whose every Write waits for the test to answer
// it: the test receives the write from writes, then sends nil (the bytes
// count as sent) or an error on its done channel. Write deadlines are
// recorded, not enforced.
type stepConn struct {
	net.Conn // nil: only the methods below are used
	writes   chan *stepWrite
	closed   chan struct{}
	close    sync.Once

	mu        sync.Mutex
	deadlines []time.Time
	sent      bytes.Buffer
}

// errPanicWrite, answered to a stepConn write, makes it panic.
var errPanicWrite = errors.New("test: write panics")

type stepWrite struct {
	b    []byte
	done chan error
}

func newStepConn() *stepConn {
	return &stepConn{writes: make(chan *stepWrite), closed: make(chan struct{})}
}

func (c *stepConn) Write(b []byte) (int, error) {
	w := &stepWrite{b: slices.Clone(b), done: make(chan error)}
	select {
	case c.writes <- w:
	case <-c.closed:
		return 0, net.ErrClosed
	}
	select {
	case err := <-w.done:
		if errors.Is(err, errPanicWrite) {
			panic(err)
		}
		if err != nil {
			return 0, err
		}
	case <-c.closed:
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	c.sent.Write(b)
	c.mu.Unlock()
	return len(b), nil
}

func (c *stepConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, t)
	c.mu.Unlock()
	return nil
}

func (c *stepConn) Close() error {
	c.close.Do(func() { close(c.closed) })
	return nil
}

// lastDeadline is the write deadline set last.
func (c *stepConn) lastDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadlines[len(c.deadlines)-1]
}

// sentIDs decodes the frames sent so far and returns their ids.
func (c *stepConn) sentIDs(t *testing.T) []uint64 {
	t.Helper()
	c.mu.Lock()
	br := bufio.NewReader(bytes.NewReader(c.sent.Bytes()))
	c.mu.Unlock()
	var ids []uint64
	for {
		f, err := readFrame(br, 1<<30)
		if err != nil {
			return ids
		}
		ids = append(ids, f.id)
	}
}

// answer takes the next write and answers it with err.
func (c *stepConn) answer(err error) {
	w := <-c.writes
	w.done <- err
}

// answerAll answers every write with success until c is closed.
func (c *stepConn) answerAll() {
	for {
		select {
		case w := <-c.writes:
			w.done <- nil
		case <-c.closed:
			return
		}
	}
}

// writerRecorder records a frameWriter's unsent and fail reports.
type writerRecorder struct {
	mu       sync.Mutex
	unsent   []uint64
	unsentAs []error
	fails    []error
	order    []string
}

func (r *writerRecorder) attach(w *frameWriter) {
	w.fail = func(err error) {
		r.mu.Lock()
		r.fails = append(r.fails, err)
		r.order = append(r.order, "fail")
		r.mu.Unlock()
	}
	w.unsent = func(ids []uint64, err error) {
		r.mu.Lock()
		r.unsent = append(r.unsent, ids...)
		r.unsentAs = append(r.unsentAs, err)
		r.order = append(r.order, "unsent")
		r.mu.Unlock()
	}
}

func (r *writerRecorder) snapshot() (unsent []uint64, unsentAs, fails []error, order []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.unsent), slices.Clone(r.unsentAs), slices.Clone(r.fails), slices.Clone(r.order)
}

// newRecordedWriter is a frame writer on a stepConn with a recorder of what
// it reports attached.
func newRecordedWriter() (*stepConn, *frameWriter, *writerRecorder) {
	c := newStepConn()
	w := newFrameWriter(c, nil)
	rec := &writerRecorder{}
	rec.attach(w)
	return c, w, rec
}

func smallFrame(id uint64) *frame {
	return &frame{typ: frameRequest, id: id, body: []byte("body")}
}

// writeAsync runs w.write on another goroutine; its result arrives on the
// channel returned.
func writeAsync(w *frameWriter, f *frame, deadline time.Time) <-chan error {
	out := make(chan error, 1)
	go func() { out <- w.write(f, deadline) }()
	return out
}

// TestFrameWriterSenderWritesOnlyItsOwnFrame: a sender that found no write
// in progress returns once its own frame is written, under its own
// deadline, while frames that others queued meanwhile are written by the
// drain goroutine under theirs, however much keeps coming.
func TestFrameWriterSenderWritesOnlyItsOwnFrame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, w, rec := newRecordedWriter()
		defer c.Close()
		start := time.Now()
		first := writeAsync(w, smallFrame(1), start.Add(50*time.Millisecond))
		write1 := <-c.writes // the first sender is inside its write
		if d := c.lastDeadline(); !d.Equal(start.Add(50 * time.Millisecond)) {
			t.Fatalf("first write under deadline %v, want the sender's own", d.Sub(start))
		}
		if err := w.write(smallFrame(2), start.Add(time.Hour)); err != nil {
			t.Fatalf("queued write: %v", err)
		}
		write1.done <- nil
		if err := <-first; err != nil {
			t.Fatalf("first write: %v", err)
		}
		// Steady traffic: each batch the drain writes has more behind it.
		// The first sender returned before any of them was written.
		for id := uint64(3); id <= 6; id++ {
			write := <-c.writes
			if d := c.lastDeadline(); !d.Equal(start.Add(time.Hour)) {
				t.Fatalf("drain wrote under deadline %v, want the queued frames' own", d.Sub(start))
			}
			if err := w.write(smallFrame(id), start.Add(time.Hour)); err != nil {
				t.Fatalf("queued write %d: %v", id, err)
			}
			write.done <- nil
		}
		c.answer(nil)
		synctest.Wait() // the drain goroutine ends with an empty queue
		if got, want := c.sentIDs(t), []uint64{1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
			t.Fatalf("sent %v, want %v", got, want)
		}
		if _, _, fails, _ := rec.snapshot(); len(fails) != 0 {
			t.Fatalf("healthy connection failed: %v", fails)
		}
		// Idle again: the next sender writes its frame itself.
		next := writeAsync(w, smallFrame(7), time.Time{})
		c.answer(nil)
		if err := <-next; err != nil {
			t.Fatalf("write after the drain: %v", err)
		}
	})
}

// TestFrameWriterDropsLateFrames: a frame whose deadline passed while
// queued is left out of its batch (its call fails as not sent) and the
// batch is written under the deadline of those left, so the connection
// and its other calls survive.
func TestFrameWriterDropsLateFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, w, rec := newRecordedWriter()
		defer c.Close()
		start := time.Now()
		first := writeAsync(w, smallFrame(1), time.Time{})
		write1 := <-c.writes
		for id, d := range map[uint64]time.Duration{2: 10 * time.Millisecond, 3: time.Hour, 4: 20 * time.Millisecond} {
			if err := w.write(smallFrame(id), start.Add(d)); err != nil {
				t.Fatalf("queued write %d: %v", id, err)
			}
		}
		time.Sleep(30 * time.Millisecond) // fake time: frames 2 and 4 are late
		write1.done <- nil
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		c.answer(nil)
		synctest.Wait()
		if d := c.lastDeadline(); !d.Equal(start.Add(time.Hour)) {
			t.Fatalf("batch written under deadline %v, want the live frame's", d.Sub(start))
		}
		if got, want := c.sentIDs(t), []uint64{1, 3}; !slices.Equal(got, want) {
			t.Fatalf("sent %v, want %v", got, want)
		}
		unsent, unsentAs, fails, _ := rec.snapshot()
		slices.Sort(unsent)
		if !slices.Equal(unsent, []uint64{2, 4}) || len(fails) != 0 {
			t.Fatalf("unsent %v, fails %v; want [2 4] and none", unsent, fails)
		}
		for _, err := range unsentAs {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("late frames reported as %v", err)
			}
		}
		// A sender whose deadline is already past is refused, unsent.
		if err := w.write(smallFrame(5), time.Now()); !errors.Is(err, errSendDeadline) {
			t.Fatalf("write past its deadline: %v", err)
		}
	})
}

// TestFrameWriterRoomWaitEndsAtDeadline: a sender waiting for room in a
// full queue gives up sendMargin before its deadline (its frame would be
// too late to write then), without harm to the connection.
func TestFrameWriterRoomWaitEndsAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, w, rec := newRecordedWriter()
		defer c.Close()
		w.maxQueued = smallFrame(0).encodedLen() // one queued frame
		first := writeAsync(w, smallFrame(1), time.Time{})
		write1 := <-c.writes
		if err := w.write(smallFrame(2), time.Time{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waiting := writeAsync(w, smallFrame(3), start.Add(10*time.Millisecond))
		if err := <-waiting; !errors.Is(err, errSendDeadline) {
			t.Fatalf("waiting sender: %v, want errSendDeadline", err)
		}
		if waited := time.Since(start); waited != 10*time.Millisecond-sendMargin {
			t.Fatalf("gave up after %v, want sendMargin before its deadline", waited)
		}
		write1.done <- nil
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		c.answer(nil)
		synctest.Wait()
		if got, want := c.sentIDs(t), []uint64{1, 2}; !slices.Equal(got, want) {
			t.Fatalf("sent %v, want %v", got, want)
		}
		if unsent, _, fails, _ := rec.snapshot(); len(unsent) != 0 || len(fails) != 0 {
			t.Fatalf("unsent %v, fails %v after a sender gave up waiting", unsent, fails)
		}
	})
}

// TestFrameWriterLargeFrameKeepsItsTurn: a frame larger than the queue's
// bound waits for an empty queue; senders coming after it wait behind it
// rather than refill the queue, so it is written next.
func TestFrameWriterLargeFrameKeepsItsTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, w, _ := newRecordedWriter()
		defer c.Close()
		w.maxQueued = 2 * smallFrame(0).encodedLen()
		first := writeAsync(w, smallFrame(1), time.Time{})
		write1 := <-c.writes
		if err := w.write(smallFrame(2), time.Time{}); err != nil {
			t.Fatal(err)
		}
		large := writeAsync(w, &frame{typ: frameRequest, id: 3, body: make([]byte, 1000)}, time.Time{})
		synctest.Wait() // the large frame waits in line
		var small []<-chan error
		for id := uint64(4); id <= 5; id++ {
			// Each would fit the queue, but comes after the large frame.
			small = append(small, writeAsync(w, smallFrame(id), time.Time{}))
			synctest.Wait()
		}
		select {
		case err := <-small[0]:
			t.Fatalf("a small frame overtook the waiting large one (%v)", err)
		case err := <-large:
			t.Fatalf("the large frame queued beside others (%v)", err)
		default:
		}
		write1.done <- nil
		go c.answerAll()
		for _, ch := range append([]<-chan error{first, large}, small...) {
			if err := <-ch; err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got, want := c.sentIDs(t), []uint64{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
			t.Fatalf("sent %v, want %v", got, want)
		}
	})
}

// TestFrameWriterFailureReportsUnsentFrames: when a write fails, the
// frames never handed to the connection (queued behind it, or after the
// failed frame in its batch) are reported unsent before fail; the frames
// of the failed write are not (the peer may have them).
func TestFrameWriterFailureReportsUnsentFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, w, rec := newRecordedWriter()
		defer c.Close()
		first := writeAsync(w, smallFrame(1), time.Time{})
		write1 := <-c.writes
		// Frames 2 and 3 fill the 32 KiB buffer: writing 3 flushes it, and
		// that write fails, so frame 4, after it in the batch, never left.
		big := func(id uint64) *frame { return &frame{typ: frameRequest, id: id, body: make([]byte, 20<<10)} }
		for _, f := range []*frame{big(2), big(3), smallFrame(4)} {
			if err := w.write(f, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		write1.done <- nil
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		write2 := <-c.writes // the drain, with frames 2-4
		if err := w.write(smallFrame(5), time.Time{}); err != nil {
			t.Fatal(err)
		}
		broken := errors.New("connection reset")
		write2.done <- broken
		synctest.Wait()
		unsent, unsentAs, fails, order := rec.snapshot()
		slices.Sort(unsent)
		if !slices.Equal(unsent, []uint64{4, 5}) || len(unsentAs) != 1 || !errors.Is(unsentAs[0], broken) {
			t.Fatalf("unsent %v as %v, want [4 5] as %v", unsent, unsentAs, broken)
		}
		if len(fails) != 1 || !errors.Is(fails[0], broken) || !slices.Equal(order, []string{"unsent", "fail"}) {
			t.Fatalf("fails %v, order %v; want one fail after unsent", fails, order)
		}
		if err := w.write(smallFrame(6), time.Time{}); !errors.Is(err, broken) {
			t.Fatalf("write after the failure: %v", err)
		}
	})
}

// TestFrameWriterOwnFailureNotReportedTwice: a sender whose own write
// fails is told by write's error; only the frames queued behind it go to
// unsent.
func TestFrameWriterOwnFailureNotReportedTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, w, rec := newRecordedWriter()
		defer c.Close()
		first := writeAsync(w, smallFrame(1), time.Time{})
		write1 := <-c.writes
		if err := w.write(smallFrame(2), time.Time{}); err != nil {
			t.Fatal(err)
		}
		broken := errors.New("broken pipe")
		write1.done <- broken
		if err := <-first; !errors.Is(err, broken) {
			t.Fatalf("own write: %v, want %v", err, broken)
		}
		unsent, _, fails, _ := rec.snapshot()
		if !slices.Equal(unsent, []uint64{2}) || len(fails) != 1 {
			t.Fatalf("unsent %v, fails %v; want [2] and one", unsent, fails)
		}
	})
}

// TestFrameWriterDrainPanicFailsTheConnection: a panic in the drain
// goroutine closes the connection, fails it (frames still queued
// unsent), is handed to panicked, and later writes fail at once.
func TestFrameWriterDrainPanicFailsTheConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, w, rec := newRecordedWriter()
		defer c.Close()
		var panics atomic.Int32
		w.panicked = func(any) { panics.Add(1) }
		first := writeAsync(w, smallFrame(1), time.Time{})
		write1 := <-c.writes
		if err := w.write(smallFrame(2), time.Time{}); err != nil {
			t.Fatal(err)
		}
		write1.done <- nil
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		write2 := <-c.writes // the drain, with frame 2
		if err := w.write(smallFrame(3), time.Time{}); err != nil {
			t.Fatal(err)
		}
		write2.done <- errPanicWrite
		synctest.Wait()
		unsent, _, fails, _ := rec.snapshot()
		if panics.Load() != 1 || !slices.Equal(unsent, []uint64{3}) || len(fails) != 1 || !errors.Is(fails[0], errWriterPanicked) {
			t.Fatalf("panics %d, unsent %v, fails %v; want 1, [3], errWriterPanicked", panics.Load(), unsent, fails)
		}
		select {
		case <-c.closed:
		default:
			t.Fatal("the connection stayed open after a panic mid-write")
		}
		if err := w.write(smallFrame(4), time.Time{}); !errors.Is(err, errWriterPanicked) {
			t.Fatalf("write after the panic: %v", err)
		}
	})
}

// TestRawConnUnderTLS: a failed connection is closed at the TCP layer,
// without TLS's close_notify, which would wait on a peer not reading.
func TestRawConnUnderTLS(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	tc := tls.Client(a, &tls.Config{ServerName: "n1"})
	if rawConn(tc) != a {
		t.Fatal("rawConn of a TLS connection is not the connection under it")
	}
	if rawConn(a) != a {
		t.Fatal("rawConn of a plain connection is not itself")
	}
	_ = rawConn(tc).Close()
	if _, err := tc.Write([]byte("x")); err == nil {
		t.Fatal("TLS connection usable after its TCP connection was closed")
	}
}
