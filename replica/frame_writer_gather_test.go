package replica

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"
)

// gather takes the sender's frame and everything queued during its yield
// as one batch, the sender's frame first; frames past their deadline are
// left out: the sender's own is reported by the returned error, the others
// through unsent, never both.
func TestFrameWriterGather(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := newFrameWriter(a, func(err error) { t.Errorf("fail(%v) on a healthy connection", err) })
	unsent := make(chan []uint64, 1)
	w.unsent = func(ids []uint64, err error) {
		if !errors.Is(err, errSendDeadline) {
			t.Errorf("unsent told %v, want errSendDeadline", err)
		}
		unsent <- ids
	}
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	queue := func(id uint64, deadline time.Time) {
		w.queue = append(w.queue, queuedFrame{f: frame{typ: frameResponse, id: id}, deadline: deadline})
	}
	ids := func(batch []queuedFrame) []uint64 {
		var out []uint64
		for _, q := range batch {
			out = append(out, q.f.id)
		}
		return out
	}

	// The sender's frame (1) is live: 2 and 4 join it, 3 is late.
	queue(1, future)
	queue(2, time.Time{})
	queue(3, past)
	queue(4, future)
	batch, err := w.gather(future)
	if err != nil || !slices.Equal(ids(batch), []uint64{1, 2, 4}) {
		t.Fatalf("gather = %v, %v; want [1 2 4], nil", ids(batch), err)
	}
	if got := <-unsent; !slices.Equal(got, []uint64{3}) {
		t.Fatalf("unsent told %v, want [3]", got)
	}

	// The sender's own frame (5) is late: it is left out and returned as
	// the error, not told to unsent.
	queue(5, past)
	queue(6, future)
	batch, err = w.gather(past)
	if !errors.Is(err, errSendDeadline) || !slices.Equal(ids(batch), []uint64{6}) {
		t.Fatalf("gather = %v, %v; want [6], errSendDeadline", ids(batch), err)
	}
	select {
	case got := <-unsent:
		t.Fatalf("unsent told %v; the sender's own late frame is told by the error only", got)
	default:
	}
	if len(w.queue) != 0 || w.queuedBytes != 0 {
		t.Fatalf("queue left %d frames, %d bytes after gather", len(w.queue), w.queuedBytes)
	}
}
