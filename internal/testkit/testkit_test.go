package testkit

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBufferConcurrentWriters(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
			}
		})
	}
	wg.Wait()
	lines := b.Lines()
	if len(lines) != 200 || !slices.Contains(lines, "w3-49") {
		t.Fatalf("%d lines, want 200 including w3-49", len(lines))
	}
}

func TestLoggerDropsLateLines(t *testing.T) {
	var log func()
	t.Run("inner", func(t *testing.T) {
		l := Logger(t)
		l.Info("during the test")
		log = func() { l.Info("after the test") }
	})
	log() // would panic if written to the ended test's output
}

func TestClock(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	c.Advance(time.Minute)
	if got := c.Now(); !got.Equal(start.Add(time.Minute)) {
		t.Fatalf("after Advance(1m): %v", got)
	}
	s := NewSteppingClock(start, time.Microsecond)
	a, b := s.Now(), s.Now()
	if !a.Equal(start.Add(time.Microsecond)) || b.Sub(a) != time.Microsecond {
		t.Fatalf("stepping clock read %v then %v", a, b)
	}
}
