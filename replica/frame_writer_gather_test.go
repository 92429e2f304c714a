package replica

import (
	"errors"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// gather takes the sender's frame and everything queued during its yield
// as one batch, the sender's frame first; the others' frames past their
// deadline, or less than sendMargin from it, are left out and told to
// unsent, once.
func TestFrameWriterGather(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, w, rec := newRecordedWriter()
		defer c.Close()
		now := time.Now()
		past, soon, future := now.Add(-time.Second), now.Add(sendMargin/2), now.Add(time.Hour)
		for id, deadline := range []time.Time{1: future, 2: {}, 3: past, 4: future, 5: soon} {
			if id > 0 {
				w.queue = append(w.queue, queuedFrame{f: *smallFrame(uint64(id)), deadline: deadline})
			}
		}
		batch, err := w.gather(future)
		var ids []uint64
		for _, q := range batch {
			ids = append(ids, q.f.id)
		}
		if err != nil || !slices.Equal(ids, []uint64{1, 2, 4}) {
			t.Fatalf("gather = %v, %v; want [1 2 4], nil", ids, err)
		}
		synctest.Wait() // the report of late frames has run
		unsent, unsentAs, fails, _ := rec.snapshot()
		if !slices.Equal(unsent, []uint64{3, 5}) || len(unsentAs) != 1 || !errors.Is(unsentAs[0], errSendDeadline) || len(fails) != 0 {
			t.Fatalf("unsent %v as %v, fails %v; want [3 5] once as errSendDeadline, no fail", unsent, unsentAs, fails)
		}
		if len(w.queue) != 0 || w.queuedBytes != 0 {
			t.Fatalf("queue left %d frames, %d bytes after gather", len(w.queue), w.queuedBytes)
		}
	})
}

// A sender whose own frame turns late during the yield returns
// errSendDeadline at once: its frame is not written and not told to
// unsent, and the frames others queued meanwhile are written by the drain
// goroutine, not on the sender's goroutine (the peer here reads nothing
// until the sender has returned, so a sender writing them would wait).
func TestFrameWriterOwnFrameLateAfterYield(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, w, rec := newRecordedWriter()
		defer c.Close()
		start := time.Now()
		yielded := false
		w.yield = func() {
			if yielded {
				runtime.Gosched()
				return
			}
			yielded = true
			// Another sender queues its frame, and the first one's deadline passes.
			if err := w.write(smallFrame(2), start.Add(time.Hour)); err != nil {
				t.Errorf("queued write: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := w.write(smallFrame(1), start.Add(5*time.Millisecond)); !errors.Is(err, errSendDeadline) {
			t.Fatalf("sender late after the yield: %v, want errSendDeadline", err)
		}
		c.answer(nil) // the drain's write
		synctest.Wait()
		if got := c.sentIDs(t); !slices.Equal(got, []uint64{2}) {
			t.Fatalf("sent %v, want [2]", got)
		}
		if d := c.lastDeadline(); !d.Equal(start.Add(time.Hour)) {
			t.Fatalf("drain wrote under deadline %v, want the queued frame's", d.Sub(start))
		}
		if unsent, _, fails, _ := rec.snapshot(); len(unsent) != 0 || len(fails) != 0 {
			t.Fatalf("unsent %v, fails %v; want none (the sender's frame is told by its error)", unsent, fails)
		}

		// Alone in the queue, the late frame leaves no write in progress:
		// the next sender writes its own.
		yielded = false
		w.yield = func() {
			if !yielded {
				yielded = true
				time.Sleep(10 * time.Millisecond)
			}
		}
		if err := w.write(smallFrame(3), time.Now().Add(5*time.Millisecond)); !errors.Is(err, errSendDeadline) {
			t.Fatalf("sender late after the yield: %v, want errSendDeadline", err)
		}
		next := writeAsync(w, smallFrame(4), time.Time{})
		c.answer(nil)
		if err := <-next; err != nil {
			t.Fatal(err)
		}
		if got := c.sentIDs(t); !slices.Equal(got, []uint64{2, 4}) {
			t.Fatalf("sent %v, want [2 4]", got)
		}
		if len(w.queue) != 0 || w.queuedBytes != 0 || w.flushing {
			t.Fatalf("queue %d frames, %d bytes, flushing %v at the end", len(w.queue), w.queuedBytes, w.flushing)
		}
	})
}

// A sender whose deadline is less than sendMargin away is refused before
// its frame is queued: writing it would put the connection under that
// deadline.
func TestFrameWriterRefusesFrameWithinMargin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newStepConn()
		defer c.Close()
		w := newFrameWriter(c, nil)
		if err := w.write(smallFrame(1), time.Now().Add(sendMargin-time.Nanosecond)); !errors.Is(err, errSendDeadline) {
			t.Fatalf("write %v before its deadline: %v, want errSendDeadline", sendMargin-time.Nanosecond, err)
		}
		if len(w.queue) != 0 || w.queuedBytes != 0 || w.flushing {
			t.Fatalf("queue %d frames, %d bytes, flushing %v after a refused write", len(w.queue), w.queuedBytes, w.flushing)
		}
		done := writeAsync(w, smallFrame(2), time.Now().Add(sendMargin))
		c.answer(nil)
		if err := <-done; err != nil {
			t.Fatalf("write sendMargin before its deadline: %v", err)
		}
	})
}
