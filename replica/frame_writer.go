package replica

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"
)

// rpcBufferBytes sizes each RPC connection's read and write buffers: a
// batch of a few hundred small frames then moves in one syscall instead
// of one per 4 KiB.
const rpcBufferBytes = 32 << 10

// maxQueuedBytes bounds the bytes of frames waiting for a write on one
// connection; a sender beyond it waits for the writer to take the queue.
// On the server that keeps the backpressure of MaxInFlight: a call whose
// reply cannot be queued keeps its slot, so a caller that stops reading
// stops the connection rather than piling replies up in memory.
const maxQueuedBytes = 4 << 20

// errWriterPanicked fails the frames of a connection whose flush panicked.
var errWriterPanicked = errors.New("replica: writing frames panicked")

// frameWriter sends the frames of one connection (client or server side),
// many per syscall, as a group commit: a sender that finds no write in
// progress writes its frame and then every frame queued meanwhile, until
// the queue is empty; a sender that finds one in progress queues its frame
// and returns at once. Profiled, the write syscalls were the largest share
// of a replicated request's CPU: under load each now carries the frames of
// many calls, and no sender sleeps on a lock held across a syscall.
type frameWriter struct {
	nc net.Conn
	bw *bufio.Writer // used only by the sender that holds flushing
	// fail is called once, with the error that ended writing, when a
	// write fails: a frame cut off midway leaves the stream unusable.
	fail func(error)
	// maxQueued is maxQueuedBytes (tests lower it).
	maxQueued int

	mu          sync.Mutex // guards the fields below
	room        sync.Cond  // signalled when the writer takes the queue or fails
	queue       []queuedFrame
	queuedBytes int
	spare       []queuedFrame // the previous batch's array, reused
	flushing    bool
	err         error // set once writing failed; every later write fails with it
}

// queuedFrame is a frame waiting to be written and the time by which its
// sender needs it written (zero: no limit).
type queuedFrame struct {
	f        frame
	deadline time.Time
}

func newFrameWriter(nc net.Conn, fail func(error)) *frameWriter {
	w := &frameWriter{nc: nc, bw: bufio.NewWriterSize(nc, rpcBufferBytes), fail: fail, maxQueued: maxQueuedBytes}
	w.room.L = &w.mu
	return w
}

// write sends f, or queues it for the sender writing now, first waiting
// while the queue holds maxQueuedBytes (a frame larger than that waits for
// an empty queue; frames are queued only while a sender writes, so the
// wait ends when it takes them or fails). It returns an
// error only when f certainly did not arrive whole: writing had failed
// before, or this call's own write of f failed. A queued frame whose
// batch then fails is reported through fail instead (the connection's
// calls fail with it). f's body must not change after the call.
func (w *frameWriter) write(f *frame, deadline time.Time) error {
	size := f.encodedLen()
	w.mu.Lock()
	for w.err == nil && w.queuedBytes > 0 && w.queuedBytes+size > w.maxQueued {
		w.room.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.queue = append(w.queue, queuedFrame{f: *f, deadline: deadline})
	w.queuedBytes += size
	if w.flushing {
		w.mu.Unlock()
		return nil
	}
	w.flushing = true
	for own := true; ; own = false {
		batch := w.queue
		w.queue, w.queuedBytes = w.spare[:0], 0
		w.room.Broadcast()
		w.mu.Unlock()
		err := w.flush(batch)
		clear(batch) // the bodies are garbage once sent
		w.mu.Lock()
		w.spare = batch[:0]
		if err != nil {
			w.err, w.queue, w.queuedBytes, w.flushing = err, nil, 0, false
			w.room.Broadcast()
			w.mu.Unlock()
			w.fail(err)
			if own {
				return err
			}
			return nil
		}
		if len(w.queue) == 0 {
			w.flushing = false
			w.mu.Unlock()
			return nil
		}
	}
}

// flush writes batch in one syscall when it fits the buffer, giving up
// at the earliest of its frames' deadlines (none if none has one): a peer
// that stops reading fails the connection, and the calls on it, when the
// first of them runs out of time, as a stuck write of that frame alone
// would. A panic marks the writer failed before it propagates, so that
// later senders do not queue behind a flush that will never come.
func (w *frameWriter) flush(batch []queuedFrame) (err error) {
	done := false
	defer func() {
		if !done {
			w.mu.Lock()
			w.err, w.queue, w.queuedBytes, w.flushing = errWriterPanicked, nil, 0, false
			w.room.Broadcast()
			w.mu.Unlock()
			_ = w.nc.Close() // half a frame may be out: the stream is unusable
		}
	}()
	var deadline time.Time
	for i := range batch {
		if d := batch[i].deadline; !d.IsZero() && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
	}
	_ = w.nc.SetWriteDeadline(deadline) // an error here resurfaces on the write
	for i := range batch {
		if err = writeFrame(w.bw, &batch[i].f); err != nil {
			break
		}
	}
	if err == nil {
		err = w.bw.Flush()
	}
	done = true
	return err
}
