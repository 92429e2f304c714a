package replica

import (
	"sync"
	"sync/atomic"
)

// idleWorkersKept bounds the idle call workers a served connection keeps:
// enough for the calls that steady traffic has running at once on one
// connection (16 at a time in the benchmarks, a few dozen from a busy
// node), few enough that the workers a burst started, up to MaxInFlight,
// do not stay parked for the connection's life: a peer sending one frame
// per IdleTimeout would otherwise keep them all.
const idleWorkersKept = 32

// callWorkers runs the calls of one served connection on goroutines it
// reuses: a call is handed to an idle worker, or to a new one when none is
// idle and fewer than max are alive, or else to the first worker to end
// its call. A worker that ends its call while idleWorkersKept others are
// idle ends too. Profiled, a new goroutine per served call spent a tenth
// of the RPC's CPU growing its stack (runtime.newstack, copystack) on
// every call; a worker grows it once.
// A call is a value of T that serve runs (for a served connection, the
// frame and its decoded request): sent to a worker by value, it costs no
// allocation, where a closure per call did.
type callWorkers[T any] struct {
	serve   func(T)
	work    chan T        // unbuffered: a send succeeds only into an idle worker
	retired chan struct{} // signalled (buffer 1) when a worker ends: room for a new one
	max     int           // most workers alive at once
	keep    int           // most idle workers kept
	alive   atomic.Int32  // raised only by run (so it never passes max), lowered by workers ending
	idle    atomic.Int32  // workers between their calls, waiting on work, counted before they wait
	wg      sync.WaitGroup
}

// newCallWorkers returns workers for a connection that runs at most max
// calls at once (MaxInFlight: the caller of run holds one of max slots,
// released when its call is done) with serve; keep is the most idle
// workers kept.
func newCallWorkers[T any](max, keep int, serve func(T)) *callWorkers[T] {
	return &callWorkers[T]{serve: serve, work: make(chan T), retired: make(chan struct{}, 1), max: max, keep: keep}
}

// run runs call on an idle worker, or on a new one while fewer than max
// are alive, or else waits for a worker to end its call and take it. The
// wait is short: run's caller holds a slot of max, so of the max workers
// alive one at least has ended its call and is about to wait for work,
// or to end (then run starts another). serve must not panic (the served
// call recovers its own panics). run is called from one goroutine only.
func (w *callWorkers[T]) run(call T) {
	for {
		select {
		case w.work <- call:
			return
		default:
		}
		if int(w.alive.Load()) < w.max {
			w.alive.Add(1)
			w.wg.Add(1)
			go w.loop(call)
			return
		}
		select {
		case w.work <- call:
			return
		case <-w.retired: // look again: maybe room for a new worker
		}
	}
}

// loop runs call, then every call handed to it, until stop, or until it
// ends a call while keep other workers are idle.
func (w *callWorkers[T]) loop(call T) {
	defer w.wg.Done()
	for {
		w.serve(call)
		if int(w.idle.Add(1)) > w.keep {
			w.idle.Add(-1)
			w.alive.Add(-1)
			select {
			case w.retired <- struct{}{}:
			default: // already signalled
			}
			return
		}
		next, ok := <-w.work
		w.idle.Add(-1)
		if !ok {
			return
		}
		call = next
	}
}

// stop lets the workers end once their calls are done, and waits for
// them. run must not be called after it.
func (w *callWorkers[T]) stop() {
	close(w.work)
	w.wg.Wait()
}
