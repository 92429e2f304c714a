package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// benchWorker is one client: its connection, random source and value.
type benchWorker struct {
	drv   benchDriver
	rng   *rand.Rand
	value []byte // rewritten in place before each write
	seq   uint64
}

func newBenchWorker(drv benchDriver, seed uint64, id, valueSize int) *benchWorker {
	w := &benchWorker{drv: drv, rng: rand.New(rand.NewPCG(seed, uint64(id))), value: make([]byte, valueSize)}
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := range w.value {
		w.value[i] = letters[w.rng.IntN(len(letters))]
	}
	return w
}

// nextValue stamps the client's write counter into its value, so that
// consecutive writes differ without generating a new value each time.
func (w *benchWorker) nextValue() []byte {
	w.seq++
	s := w.seq
	for i := 0; i < len(w.value) && i < 16; i++ {
		w.value[i] = "0123456789abcdef"[s&0xf]
		s >>= 4
	}
	return w.value
}

// runLoad writes records 0..records-1 once each, spread over the workers.
// It returns the phase's duration.
func runLoad(ctx context.Context, workers []*benchWorker, records uint64, load *opStats) time.Duration {
	var next atomic.Uint64
	return runWorkers(workers, func(w *benchWorker) {
		for ctx.Err() == nil {
			i := next.Add(1) - 1
			if i >= records {
				return
			}
			start := time.Now()
			err := w.drv.update(ctx, benchKey(i), w.nextValue())
			if ctx.Err() != nil {
				return // interrupted: the answer is not a measurement
			}
			load.record(time.Since(start), false, err)
		}
	})
}

// benchBound ends the run phase: after ops operations in all, or at the
// deadline (checked before each operation; operations under way finish).
type benchBound struct {
	ops      int64
	duration time.Duration
}

// runWorkload runs the read/update mix. Each operation is a read with
// probability readProp, else an update, of a record the chooser picks.
func runWorkload(ctx context.Context, workers []*benchWorker, bound benchBound, readProp float64, ch keyChooser, read, update *opStats) time.Duration {
	var claimed atomic.Int64
	deadline := time.Now().Add(bound.duration)
	return runWorkers(workers, func(w *benchWorker) {
		for ctx.Err() == nil {
			if bound.ops > 0 {
				if claimed.Add(1) > bound.ops {
					return
				}
			} else if !time.Now().Before(deadline) {
				return
			}
			isRead := w.rng.Float64() < readProp
			key := benchKey(ch.next(w.rng))
			start := time.Now()
			if isRead {
				found, err := w.drv.read(ctx, key)
				if ctx.Err() != nil {
					return
				}
				read.record(time.Since(start), !found && err == nil, err)
				continue
			}
			err := w.drv.update(ctx, key, w.nextValue())
			if ctx.Err() != nil {
				return
			}
			update.record(time.Since(start), false, err)
		}
	})
}

// runWorkers runs fn on every worker concurrently and returns the time
// until the last one returned.
func runWorkers(workers []*benchWorker, fn func(*benchWorker)) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { fn(w) })
	}
	wg.Wait()
	return time.Since(start)
}

// startProgress prints one line a second to w (elapsed time, operations and
// errors so far, the rate over the last second) until the returned stop is
// called; stop waits for the printer to finish.
func startProgress(w io.Writer, phase string, stats ...*opStats) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		start := time.Now()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				var ops, errs int64
				for _, s := range stats {
					ops += s.count.Load()
					errs += s.errors()
				}
				rate := float64(ops-last) / now.Sub(lastAt).Seconds()
				last, lastAt = ops, now
				fmt.Fprintf(w, "bench: %s %4.0fs  %10d ops  %9.0f ops/s  %d errors\n", phase, now.Sub(start).Seconds(), ops, rate, errs)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
