package replica

import "sync"

// callWorkers runs the calls of one served connection on goroutines it
// keeps for the connection's life: a call is handed to an idle worker, or
// to a new one when none is idle, so there are never more workers than
// calls once ran at the same time on the connection (MaxInFlight at
// most). Profiled, a new goroutine per served call spent a tenth of the
// RPC's CPU growing its stack (runtime.newstack, copystack) on every
// call; a worker grows it once.
type callWorkers struct {
	work chan func() // unbuffered: a send succeeds only into an idle worker
	wg   sync.WaitGroup
}

func newCallWorkers() *callWorkers {
	return &callWorkers{work: make(chan func())}
}

// run runs call on an idle worker, or on a new one. call must not panic
// (the served call recovers its own panics).
func (w *callWorkers) run(call func()) {
	select {
	case w.work <- call:
		return
	default:
	}
	w.wg.Add(1)
	go w.loop(call)
}

// loop runs call, then every call handed to it, until stop.
func (w *callWorkers) loop(call func()) {
	defer w.wg.Done()
	for ok := true; ok; call, ok = <-w.work {
		call()
	}
}

// stop lets the workers end once their calls are done, and waits for
// them. run must not be called after it.
func (w *callWorkers) stop() {
	close(w.work)
	w.wg.Wait()
}
