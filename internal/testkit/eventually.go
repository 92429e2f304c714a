package testkit

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// Cond is what Eventually waits on: a func() bool, or a func() error whose
// error says what is still missing (the last one is shown on failure).
type Cond interface {
	func() bool | func() error
}

// errNotYet stands for a func() bool condition that returned false.
var errNotYet = errors.New("condition not met")

// Bubble step and real-clock polling bounds. In a synctest bubble each
// check follows synctest.Wait, so the step only decides how much fake
// time passes between checks; on the real clock the first checks come
// quickly and later ones back off so a long wait does not spin.
const (
	bubbleStep   = 5 * time.Millisecond
	realFirstGap = time.Millisecond
	realMaxGap   = 50 * time.Millisecond
)

// Eventually waits until cond holds, for at most timeout, and otherwise
// fails t with what (and cond's last error, for a func() error).
//
// Inside a testing/synctest bubble it checks cond each time every
// goroutine of the bubble has settled (synctest.Wait), then lets a few
// milliseconds of fake time pass: cond never sees a step half done, and
// timeout is fake time, so it counts rounds of the code under test rather
// than how fast a loaded machine runs them. Outside a bubble the events
// waited for happen elsewhere (another process, a real socket), so it
// polls, with a timeout the caller makes generous: the wait ends as soon
// as cond holds, so only a broken test pays for it.
func Eventually[C Cond](t testing.TB, timeout time.Duration, what string, cond C) {
	t.Helper()
	check := asCheck(cond)
	bubble := inBubble()
	deadline := time.Now().Add(timeout)
	gap := realFirstGap
	if bubble {
		gap = bubbleStep
	}
	for {
		if bubble {
			synctest.Wait()
		}
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if errors.Is(err, errNotYet) {
				t.Fatalf("timed out after %v waiting for %s", timeout, what)
			}
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(gap)
		if !bubble {
			gap = min(2*gap, realMaxGap)
		}
	}
}

// asCheck turns either form of Cond into one returning nil once it holds.
func asCheck[C Cond](cond C) func() error {
	switch c := any(cond).(type) {
	case func() bool:
		return func() error {
			if c() {
				return nil
			}
			return errNotYet
		}
	case func() error:
		return c
	}
	panic("testkit: unreachable Cond type") // the constraint admits only the two above
}

// inBubble reports whether the calling goroutine runs in a synctest
// bubble. The testing/synctest package offers no query, but Wait panics,
// before it changes any state, when called outside one; inside one it
// returns once the bubble settles, which Eventually does first anyway.
func inBubble() (in bool) {
	defer func() {
		if recover() != nil {
			in = false
		}
	}()
	synctest.Wait()
	return true
}
