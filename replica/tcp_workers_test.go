package replica

import (
	"sync/atomic"
	"testing"
)

// A call blocked on a worker never holds up the next one, every call
// handed to the workers runs exactly once, and stop returns only once the
// running calls are done.
func TestCallWorkers(t *testing.T) {
	w := newCallWorkers()
	release := make(chan struct{})
	blocked := make(chan struct{})
	var ran atomic.Int32
	w.run(func() {
		close(blocked)
		<-release
		ran.Add(1)
	})
	<-blocked
	const calls = 100
	done := make(chan struct{}, calls)
	for range calls {
		w.run(func() {
			ran.Add(1)
			done <- struct{}{}
		})
	}
	for range calls {
		<-done // all ran while the first call still blocks its worker
	}
	stopped := make(chan struct{})
	go func() {
		w.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("stop returned while a call was still running")
	default:
	}
	close(release)
	<-stopped
	if got := ran.Load(); got != calls+1 {
		t.Fatalf("%d calls ran, want %d", got, calls+1)
	}
}
