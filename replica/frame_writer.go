package replica

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
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

// sendMargin is the least time a frame must have left before its
// deadline to be written. A batch is written under the earliest deadline
// in it, and a write that times out partway cuts a frame and fails the
// whole connection, every call on it: a frame microseconds from its
// deadline would make the smallest stall of the socket fatal to all of
// them. Such a frame is treated as already late (its call fails unsent,
// the connection goes on); its answer could hardly come back in time.
const sendMargin = time.Millisecond

// errWriterPanicked fails the frames of a connection whose flush panicked.
var errWriterPanicked = errors.New("replica: writing frames panicked")

// errSendDeadline: a frame's deadline passed, or was less than sendMargin
// away, before it was written (while its sender waited for room, during
// the yield, or while it was queued). Nothing of it was sent and the
// connection is unharmed. It wraps os.ErrDeadlineExceeded, as a write
// that timed out does.
var errSendDeadline = fmt.Errorf("replica: frame not written by its deadline: %w", os.ErrDeadlineExceeded)

// frameWriter sends the frames of one connection (client or server side),
// many per syscall, as a group commit. A sender that finds no write in
// progress yields the processor once (gather), then writes its own frame
// and every frame queued meanwhile in one batch; senders that come while
// a write is in progress queue theirs and return, and a drain goroutine,
// started when that write ends, writes everything queued in one batch per
// syscall until the queue is empty. A sender writes at most one batch,
// under the earliest deadline in it, its own among them: its call then
// ends by its own deadline, however steady the traffic behind it.
// Profiled, the write syscalls were the largest share of a replicated
// request's CPU: under load each now carries the frames of many calls,
// and no sender sleeps on a lock held across a syscall. A sender whose own
// frame turns late during the yield writes nothing: it hands the queue
// to the drain goroutine and returns at once.
type frameWriter struct {
	nc net.Conn
	bw *bufio.Writer // used only by the one writing (flushing set)
	// fail is called once, with the error that ended writing, when a
	// write fails: a frame cut off midway leaves the stream unusable.
	fail func(error)
	// unsent, when set, is told the ids of queued frames that were never
	// written, with why: their deadline passed while they were queued
	// (errSendDeadline; the connection goes on), or writing failed before
	// them (called just before fail). Their calls certainly did not reach
	// the peer. A sender told by write's error is not told again here.
	// Late frames are reported on a goroutine of their own.
	unsent func(ids []uint64, err error)
	// panicked, when set, is told of a panic in the drain goroutine, after
	// the connection was failed; nil lets the panic crash the process.
	panicked func(v any)
	// maxQueued is maxQueuedBytes (tests lower it).
	maxQueued int
	// yield lets the senders made runnable together queue their frames
	// before a batch is taken: runtime.Gosched (tests queue frames and
	// move the clock in it).
	yield func()

	mu          sync.Mutex // guards the fields below
	queue       []queuedFrame
	queuedBytes int
	spare       []queuedFrame // the previous batch's array, reused
	flushing    bool          // a sender or the drain goroutine is writing
	// waiters are the senders waiting for room in the queue, first come
	// first; each is signalled on its channel when it is first in line
	// and room may have appeared, or when writing failed.
	waiters []chan struct{}
	err     error // set once writing failed; every later write fails with it
}

// queuedFrame is a frame waiting to be written and the time by which its
// sender needs it written (zero: no limit).
type queuedFrame struct {
	f        frame
	deadline time.Time
}

func newFrameWriter(nc net.Conn, fail func(error)) *frameWriter {
	return &frameWriter{nc: nc, bw: bufio.NewWriterSize(nc, rpcBufferBytes), fail: fail, maxQueued: maxQueuedBytes, yield: runtime.Gosched}
}

// write sends f, or queues it when a write is in progress. A sender
// first waits, in turn, while the queue lacks room for f (a frame larger
// than maxQueued waits for an empty queue; while one waits, later senders
// wait behind it), giving up at deadline. It returns an error only when
// f certainly did not arrive whole: writing had failed before, the
// deadline passed before f was written (errSendDeadline: while waiting
// for room, or during the yield, see gather), or this call's own write
// of f failed. What becomes of a queued frame is reported through unsent
// and fail. f's body must not change after the call.
func (w *frameWriter) write(f *frame, deadline time.Time) error {
	size := f.encodedLen()
	w.mu.Lock()
	if err := w.waitForRoom(size, deadline); err != nil {
		w.mu.Unlock()
		return err
	}
	w.queue = append(w.queue, queuedFrame{f: *f, deadline: deadline})
	w.queuedBytes += size
	if w.flushing {
		w.mu.Unlock()
		return nil
	}
	// Nothing is written, so nothing was queued: f is first in line.
	w.flushing = true
	w.mu.Unlock()
	batch, err := w.gather(deadline)
	if err != nil {
		return err // f left out, the others handed to the drain
	}
	written, err := w.flush(batch)
	if !w.settle(batch, written, err) {
		return err
	}
	w.mu.Lock()
	if len(w.queue) == 0 {
		w.flushing = false
		w.mu.Unlock()
		return nil
	}
	w.mu.Unlock()
	go w.drain()
	return nil
}

// gather yields the processor once, so that the goroutines made runnable
// together with this sender (the requests of one network poll, the
// stores that one fsync made durable) queue their frames too, then takes
// the queue as one batch, the sender's own frame first. Profiled under
// load, one write syscall per frame was the largest share of a replicated
// request's CPU; the yield costs nothing when nothing else is runnable.
// Frames of others whose deadline passed meanwhile are left out and told
// to unsent. When the sender's own deadline passed during the yield, it
// returns errSendDeadline and no batch: the own frame is dropped and the
// frames queued behind it are left to the drain goroutine, so that the
// sender never waits on a write past its own deadline (a batch without
// its frame would be written under a later one, or none).
func (w *frameWriter) gather(deadline time.Time) ([]queuedFrame, error) {
	w.yield()
	w.mu.Lock()
	now := time.Now()
	if err := expired(deadline, now); err != nil {
		w.dropFirst()
		drain := len(w.queue) > 0
		w.flushing = drain
		w.mu.Unlock()
		if drain {
			go w.drain()
		}
		return nil, err
	}
	all := w.take()
	w.mu.Unlock()
	rest, late := dropLate(all[1:], now)
	if len(late) > 0 && w.unsent != nil {
		go w.unsent(late, errSendDeadline) // on its own goroutine: see drain
	}
	// dropLate moved the live frames down in place, behind the sender's.
	batch := all[:1+len(rest)]
	clear(all[len(batch):]) // dropped frames' bodies
	return batch, nil
}

// dropFirst removes the sender's own frame, first in the queue, when it
// is not to be written (mu held), and wakes the first waiter, who may fit
// now. The rest move down, so that the array stays reusable.
func (w *frameWriter) dropFirst() {
	w.queuedBytes -= w.queue[0].f.encodedLen()
	n := copy(w.queue, w.queue[1:])
	w.queue[n] = queuedFrame{} // its body is garbage
	w.queue = w.queue[:n]
	w.signalFirst()
}

// waitForRoom returns, with mu held throughout its checks, once a frame
// of size bytes may be queued and no sender waits before it; or the
// error that stops it: writing failed, or deadline passed.
func (w *frameWriter) waitForRoom(size int, deadline time.Time) error {
	if w.err != nil {
		return w.err
	}
	if len(w.waiters) == 0 && w.fits(size) {
		return expired(deadline, time.Now())
	}
	ready := make(chan struct{}, 1)
	w.waiters = append(w.waiters, ready)
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		// Past deadline-sendMargin the frame is late anyway (expired).
		t := time.NewTimer(time.Until(deadline.Add(-sendMargin)))
		defer t.Stop()
		timeout = t.C
	}
	for {
		w.mu.Unlock()
		timedOut := false
		select {
		case <-ready:
		case <-timeout:
			timedOut = true
		}
		w.mu.Lock()
		switch {
		case w.err != nil:
			w.leave(ready)
			return w.err
		case timedOut:
			w.leave(ready)
			return errSendDeadline
		case w.waiters[0] == ready && w.fits(size):
			w.leave(ready)
			return expired(deadline, time.Now())
		}
	}
}

// expired returns errSendDeadline when deadline (zero: none) is less
// than sendMargin after now: too late to write its frame.
func expired(deadline, now time.Time) error {
	if !deadline.IsZero() && deadline.Sub(now) < sendMargin {
		return errSendDeadline
	}
	return nil
}

// fits reports whether size more bytes may be queued (mu held).
func (w *frameWriter) fits(size int) bool {
	return w.queuedBytes == 0 || w.queuedBytes+size <= w.maxQueued
}

// leave removes a waiter from the line (mu held) and, when it was first,
// signals the next, who may fit now.
func (w *frameWriter) leave(ready chan struct{}) {
	for i, c := range w.waiters {
		if c == ready {
			w.waiters = append(w.waiters[:i], w.waiters[i+1:]...)
			if i == 0 {
				w.signalFirst()
			}
			return
		}
	}
}

// signalFirst wakes the first waiter, if any (mu held).
func (w *frameWriter) signalFirst() {
	if len(w.waiters) > 0 {
		select {
		case w.waiters[0] <- struct{}{}:
		default: // already signalled and not yet awake
		}
	}
}

// take empties the queue into a batch (mu held) and wakes the first
// waiter, who may fit now.
func (w *frameWriter) take() []queuedFrame {
	batch := w.queue
	w.queue, w.queuedBytes = w.spare[:0], 0
	w.spare = nil
	w.signalFirst()
	return batch
}

// drain writes the queue, one batch per write, until it is empty or
// writing fails. It leaves out frames whose deadline passed while queued,
// or is less than sendMargin away: their callers gave up or are about to,
// and writing under a deadline already past, or about to, would fail the
// connection and every call on it.
func (w *frameWriter) drain() {
	if w.panicked != nil {
		defer func() {
			if v := recover(); v != nil {
				w.panicked(v) // flush failed the connection already
			}
		}()
	}
	for {
		w.yield() // as in gather: let the frames of senders made runnable together join
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.flushing = false
			w.mu.Unlock()
			return
		}
		batch := w.take()
		w.mu.Unlock()
		live, late := dropLate(batch, time.Now())
		if len(late) > 0 && w.unsent != nil {
			// Not on this goroutine: a caller told there may send again
			// at once, and wait for room only this goroutine makes.
			go w.unsent(late, errSendDeadline)
		}
		written, err := w.flush(live)
		clear(batch[len(live):]) // dropped frames' bodies, past what settle clears
		if !w.settle(live, written, err) {
			return
		}
	}
}

// dropLate moves the frames of batch that are too late to write at now
// (expired) out of it, in place, and returns the rest and the dropped frames' ids.
func dropLate(batch []queuedFrame, now time.Time) (live []queuedFrame, late []uint64) {
	live = batch[:0]
	for _, q := range batch {
		if expired(q.deadline, now) != nil {
			late = append(late, q.f.id)
			continue
		}
		live = append(live, q)
	}
	return live, late
}

// settle ends a batch that flush wrote (the first written frames were
// handed to the connection) and recycles its array. When err is set it
// fails the writer: the frames never written, those of the batch after
// the failed one and those queued meanwhile, go to unsent, and then the
// error to fail. It reports whether writing may go on.
func (w *frameWriter) settle(batch []queuedFrame, written int, err error) bool {
	var ids []uint64
	if err != nil {
		ids = appendIDs(ids, batch[written:])
	}
	clear(batch) // the bodies are garbage once sent
	w.mu.Lock()
	if w.spare == nil {
		w.spare = batch[:0]
	}
	w.mu.Unlock()
	if err != nil {
		w.abort(err, ids)
	}
	return err == nil
}

// appendIDs appends the call ids of fs to ids.
func appendIDs(ids []uint64, fs []queuedFrame) []uint64 {
	for _, q := range fs {
		ids = append(ids, q.f.id)
	}
	return ids
}

// abort fails the writer with err, unless it failed before: every later
// write fails with err, waiting senders return it, and the ids given and
// those of the queued frames are reported to unsent, then err to fail.
func (w *frameWriter) abort(err error, ids []uint64) {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return
	}
	w.err = err
	ids = appendIDs(ids, w.queue)
	w.queue, w.queuedBytes, w.flushing = nil, 0, false
	for _, c := range w.waiters {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	w.mu.Unlock()
	if len(ids) > 0 && w.unsent != nil {
		w.unsent(ids, err)
	}
	w.fail(err)
}

// flush writes batch in one syscall when it fits the buffer, giving up
// at the earliest of its frames' deadlines (none if none has one): a peer
// that stops reading fails the connection, and the calls on it, when the
// first of them runs out of time, as a stuck write of that frame alone
// would. It returns how many frames it handed to the connection, in part
// or whole: those after them were certainly not sent. A panic fails the
// writer before it propagates, so that later senders do not queue behind
// a flush that will never come.
func (w *frameWriter) flush(batch []queuedFrame) (written int, err error) {
	if len(batch) == 0 {
		return 0, nil
	}
	done := false
	defer func() {
		if !done {
			_ = rawConn(w.nc).Close() // half a frame may be out: the stream is unusable
			w.abort(errWriterPanicked, appendIDs(nil, batch[min(written+1, len(batch)):]))
		}
	}()
	var deadline time.Time
	for i := range batch {
		if d := batch[i].deadline; !d.IsZero() && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
	}
	_ = w.nc.SetWriteDeadline(deadline) // an error here resurfaces on the write
	for written < len(batch) {
		err = writeFrame(w.bw, &batch[written].f)
		written++
		if err != nil {
			break
		}
	}
	if err == nil {
		err = w.bw.Flush()
	}
	done = true
	return written, err
}
