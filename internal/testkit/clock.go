package testkit

import (
	"sync"
	"time"
)

// Clock is a settable wall clock for a package's Config.Now (or Clock),
// safe for concurrent use. It drives no timers: code that waits on time
// is tested in a testing/synctest bubble instead, where the runtime's
// timers are fake already.
type Clock struct {
	mu   sync.Mutex // guards now and step
	now  time.Time
	step time.Duration
}

// NewClock returns a clock at start that moves only when told to.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// NewSteppingClock returns a clock at start that also moves forward by
// step before each reading, so that successive readings differ (distinct,
// reproducible wall times for minted versions).
func NewSteppingClock(start time.Time, step time.Duration) *Clock {
	return &Clock{now: start, step: step}
}

// Now returns the clock's time, after the step of a stepping clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
