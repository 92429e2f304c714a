package replica

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// The tests run in a synctest bubble: synctest.Wait returns once every
// worker is blocked (idle, or in a call waiting for the test), so the
// counts read after it are settled, with no timing involved.

// runFunc is the serve of workers whose calls are functions.
func runFunc(f func()) { f() }

// Calls one after another run on one worker, reused.
func TestCallWorkersReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newCallWorkers(8, 4, runFunc)
		var ran atomic.Int32
		for range 100 {
			w.run(func() { ran.Add(1) })
			synctest.Wait() // the worker is idle again
		}
		if alive := w.alive.Load(); alive != 1 {
			t.Fatalf("%d workers alive after calls one at a time, want 1", alive)
		}
		w.stop()
		if got := ran.Load(); got != 100 {
			t.Fatalf("%d calls ran, want 100", got)
		}
	})
}

// blockedCalls runs n calls on w that each wait for release; it returns
// once all of them are running.
func blockedCalls(w *callWorkers[func()], n int, release <-chan struct{}, ran *atomic.Int32) {
	for range n {
		w.run(func() {
			<-release
			ran.Add(1)
		})
	}
	synctest.Wait()
}

// With max calls running, the next call starts no worker beyond max: it
// waits for one of them, and runs once a call ends. A call blocked on a
// worker never holds up the others meanwhile.
func TestCallWorkersBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const max = 5
		w := newCallWorkers(max, max, runFunc)
		release := make(chan struct{})
		var ran atomic.Int32
		blockedCalls(w, max, release, &ran)
		if alive := w.alive.Load(); alive != max {
			t.Fatalf("%d workers alive for %d blocked calls, want %d", alive, max, max)
		}
		extra := make(chan struct{})
		handed := make(chan struct{})
		go func() {
			w.run(func() { close(extra) })
			close(handed)
		}()
		synctest.Wait()
		select {
		case <-extra:
			t.Fatal("a call beyond max ran while max calls were running")
		default:
		}
		if alive := w.alive.Load(); alive != max {
			t.Fatalf("%d workers alive after a call beyond max, want %d", alive, max)
		}
		release <- struct{}{} // one call ends: its worker takes the waiting one
		<-extra
		<-handed
		close(release)
		w.stop()
		if got := ran.Load(); got != max {
			t.Fatalf("%d blocked calls ran, want %d", got, max)
		}
	})
}

// After a burst, workers beyond keep end once their calls are done.
func TestCallWorkersRetireIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const max, keep = 40, 3
		w := newCallWorkers(max, keep, runFunc)
		release := make(chan struct{})
		var ran atomic.Int32
		blockedCalls(w, max, release, &ran)
		if alive := w.alive.Load(); alive != max {
			t.Fatalf("%d workers alive for %d blocked calls, want %d", alive, max, max)
		}
		close(release)
		synctest.Wait()
		if alive, idle := w.alive.Load(), w.idle.Load(); alive != keep || idle != keep {
			t.Fatalf("after the burst %d workers alive, %d idle; want %d and %d", alive, idle, keep, keep)
		}
		w.stop()
		if got := ran.Load(); got != max {
			t.Fatalf("%d calls ran, want %d", got, max)
		}
	})
}

// A call waiting for a worker at max is not held up by workers ending:
// when the worker whose call ended retires (none kept), run starts
// another.
func TestCallWorkersRetiredMakesRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newCallWorkers(1, 0, runFunc)
		release := make(chan struct{})
		var ran atomic.Int32
		blockedCalls(w, 1, release, &ran)
		extra := make(chan struct{})
		go w.run(func() { close(extra) })
		synctest.Wait()
		close(release)
		<-extra // a new worker ran it: the first one ended, none idle kept
		synctest.Wait()
		if alive := w.alive.Load(); alive != 0 {
			t.Fatalf("%d workers alive with none kept, want 0", alive)
		}
		w.stop()
	})
}

// stop returns only once the running calls are done.
func TestCallWorkersStopWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newCallWorkers(4, 4, runFunc)
		release := make(chan struct{})
		var ran atomic.Int32
		blockedCalls(w, 2, release, &ran)
		stopped := make(chan struct{})
		go func() {
			w.stop()
			close(stopped)
		}()
		synctest.Wait() // stop is blocked, or has returned
		select {
		case <-stopped:
			t.Fatal("stop returned while calls were still running")
		default:
		}
		close(release)
		<-stopped
		if got := ran.Load(); got != 2 {
			t.Fatalf("%d calls ran, want 2", got)
		}
	})
}
