package testkit

import (
	"fmt"
	"slices"
	"sync"
	"testing"
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
