package ring

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The figures the ring is tuned for: with N=3, adding one node to
// 5 or 10 moves at most 1.25x the optimal 1/(n+1) of the replica slots, and
// the busiest node holds at most 1.15x the average replica load, before and
// after. docs/ring.md reports these numbers and the commands that print them.
const (
	maxMoveRatio    = 1.25
	maxBalanceRatio = 1.15
)

var sampleSets = flag.Int("ring.sample", 0, "also measure the figures over this many random name sets (TestFiguresSample)")

// figure is one n -> n+1 measurement.
type figure struct {
	n         int
	move      float64 // moved fraction / optimal 1/(n+1)
	balBefore float64 // busiest / average replicas, n nodes
	balAfter  float64 // same with n+1 nodes
}

func (f figure) ok() bool {
	return f.move <= maxMoveRatio && f.balBefore <= maxBalanceRatio && f.balAfter <= maxBalanceRatio
}

func measure(t testing.TB, cfg Config, names []string, n int) figure {
	t.Helper()
	r := mustNew(t, cfg, names[:n])
	w, err := r.WhatIfAdd(names[n])
	if err != nil {
		t.Fatal(err)
	}
	next := mustNew(t, cfg, names[:n+1])
	return figure{n: n, move: w.MovedFraction / w.OptimalFraction, balBefore: balance(r), balAfter: balance(next)}
}

// balance returns the busiest node's replica count over the average.
func balance(r *Ring) float64 {
	busiest := 0
	for _, ni := range r.Inspect(nil).Nodes {
		busiest = max(busiest, ni.Replicated)
	}
	return float64(busiest) * float64(r.Len()) / float64(r.Config().Partitions*r.ReplicaCount())
}

func nameSet(format string) []string {
	out := make([]string, 11)
	for i := range out {
		out[i] = fmt.Sprintf(format, i+1)
	}
	return out
}

func randomNameSet(rng *rand.Rand) []string {
	out := make([]string, 11)
	for i := range out {
		out[i] = fmt.Sprintf("%016x", rng.Uint64())
	}
	return out
}

// TestFigures checks the movement and balance figures for the default
// config on the name schemes an operator is likely to use.
func TestFigures(t *testing.T) {
	cfg := DefaultConfig()
	for _, format := range []string{"node-%d", "ringkv-%02d", "10.0.0.%d:7946"} {
		for _, n := range []int{5, 10} {
			f := measure(t, cfg, nameSet(format), n)
			t.Logf("%-16s %2d -> %2d: moved %.3f x optimal, busiest %.3f / %.3f x average", format, n, n+1, f.move, f.balBefore, f.balAfter)
			if !f.ok() {
				t.Errorf("%s %d -> %d: moved %.3f x optimal (max %.2f), busiest %.3f / %.3f x average (max %.2f)",
					format, n, n+1, f.move, maxMoveRatio, f.balBefore, f.balAfter, maxBalanceRatio)
			}
		}
	}
}

// TestFiguresSample measures the figures over random name sets (node names
// decide the hash points, so figures vary with them) and prints their
// distribution. It runs only with -ring.sample=K and requires 95% of sets
// to meet both targets.
func TestFiguresSample(t *testing.T) {
	if *sampleSets <= 0 {
		t.Skip("run with -ring.sample=K")
	}
	cfg := DefaultConfig()
	rng := rand.New(rand.NewPCG(3, 2039))
	var moves, bals []float64
	pass := 0
	for range *sampleSets {
		names := randomNameSet(rng)
		ok := true
		for _, n := range []int{5, 10} {
			f := measure(t, cfg, names, n)
			moves = append(moves, f.move)
			bals = append(bals, f.balBefore, f.balAfter)
			ok = ok && f.ok()
		}
		if ok {
			pass++
		}
	}
	slices.Sort(moves)
	slices.Sort(bals)
	q := func(s []float64, f float64) float64 { return s[int(f*float64(len(s)-1))] }
	t.Logf("%d name sets: moved/optimal p50 %.3f p90 %.3f max %.3f; busiest/average p50 %.3f p90 %.3f max %.3f; %d sets meet both targets",
		*sampleSets, q(moves, .5), q(moves, .9), q(moves, 1), q(bals, .5), q(bals, .9), q(bals, 1), pass)
	if pass*100 < *sampleSets*95 {
		t.Fatalf("only %d of %d name sets meet the targets", pass, *sampleSets)
	}
}

// TestRemoveFigures reports the cost of removing a node (no target is set
// for it; printed for docs/ring.md) and checks what-if removal against the
// lower bound. The optimum assumes perfectly even shares, so a node holding
// less than its fair share can move less than "optimal".
func TestRemoveFigures(t *testing.T) {
	cfg := DefaultConfig()
	names := nameSet("node-%d")
	for _, n := range []int{6, 11} {
		r := mustNew(t, cfg, names[:n])
		w, err := r.WhatIfRemove(names[n-1])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%2d -> %2d: moved %.4f of slots, optimal %.4f (%.3f x)", n, n-1, w.MovedFraction, w.OptimalFraction, w.MovedFraction/w.OptimalFraction)
		// Every slot the removed node held needs a new holder.
		held := len(r.PartitionsOf(names[n-1]))
		if w.MovedSlots < held {
			t.Fatalf("moved %d slots, fewer than the %d the removed node held", w.MovedSlots, held)
		}
		if w.MovedFraction > 1.5*w.OptimalFraction {
			t.Errorf("removing one of %d nodes moves %.3f x optimal", n, w.MovedFraction/w.OptimalFraction)
		}
	}
}
