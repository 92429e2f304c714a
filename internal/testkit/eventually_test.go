package testkit

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the calling goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runRecorded runs f with a recorder on its own goroutine (Fatalf ends
// it) and returns what Fatalf said, "" if it was not called.
func runRecorded(t *testing.T, f func(tb testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

func TestEventuallyRealClock(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	Eventually(t, time.Minute, "three increments", func() bool { return n.Load() == 3 })
	Eventually(t, time.Minute, "three increments", func() error {
		if n.Load() != 3 {
			return errors.New("not three")
		}
		return nil
	})
}

func TestEventuallyTimesOut(t *testing.T) {
	msg := runRecorded(t, func(tb testing.TB) {
		Eventually(tb, 10*time.Millisecond, "never", func() bool { return false })
	})
	if msg != "timed out after 10ms waiting for never" {
		t.Errorf("bool message = %q", msg)
	}
	msg = runRecorded(t, func(tb testing.TB) {
		Eventually(tb, 10*time.Millisecond, "never", func() error { return errors.New("still 2 of 3") })
	})
	if !strings.HasSuffix(msg, "waiting for never: still 2 of 3") {
		t.Errorf("error message = %q", msg)
	}
}

// In a bubble, cond is checked only once the bubble has settled, and the
// timeout is fake time: a worker that needs 20 ticks of 100 ms is seen
// done within a 10 s timeout however slow the machine, and exactly when
// its last tick happened.
func TestEventuallyInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if !inBubble() {
			t.Fatal("inBubble false inside synctest.Test")
		}
		start := time.Now()
		var ticks atomic.Int32
		go func() {
			for range 20 {
				time.Sleep(100 * time.Millisecond)
				ticks.Add(1)
			}
		}()
		Eventually(t, 10*time.Second, "20 ticks", func() bool { return ticks.Load() == 20 })
		if el := time.Since(start); el != 2*time.Second {
			t.Errorf("saw 20 ticks after %v of fake time, want 2s", el)
		}
		msg := runRecorded(t, func(tb testing.TB) {
			Eventually(tb, time.Minute, "a minute of nothing", func() bool { return false })
		})
		if !strings.Contains(msg, "timed out after 1m0s") {
			t.Errorf("message = %q", msg)
		}
	})
	if inBubble() {
		t.Fatal("inBubble true outside a bubble")
	}
}
