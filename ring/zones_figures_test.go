package ring

import (
	"fmt"
	"testing"
)

// Zoned figures for docs/ring.md: 9 nodes in 3 zones of 3, N=3, the default
// config. Every zone holds exactly one replica of each partition, so a
// node's fair share is a third of its zone's, and a node joining zone z
// should take 1/(size of z + 1) of z's slots: the zoned optimum below.
//
// Zones cost movement: the joining node also takes ownership of about a
// tenth of the partitions in every zone's walk, which reshuffles which
// node of the other zones comes first, so a join moves about 1.4-1.6x the
// zoned optimum where a ring without zones moves about 1.0-1.2x.
const (
	maxZonedMoveRatio    = 1.75 // moved / zoned optimum, adding one node
	maxZonedBalanceRatio = 1.25 // busiest / average within a zone
)

// zonedFigure is one 9 -> 10 measurement with zones.
type zonedFigure struct {
	move      float64 // moved fraction / zoned optimum
	balBefore float64 // busiest / average replicas within the zone, 9 nodes
	balAfter  float64 // same, 10 nodes, in the zone that grew
	overall   float64 // busiest / average over all 10 nodes
}

// zoneBalance returns the busiest member of zone over its zone's average.
func zoneBalance(r *Ring, zone string) float64 {
	busiest, sum, n := 0, 0, 0
	for _, ni := range r.Inspect(nil).Nodes {
		if ni.Zone == zone {
			busiest = max(busiest, ni.Replicated)
			sum += ni.Replicated
			n++
		}
	}
	return float64(busiest) * float64(n) / float64(sum)
}

func measureZoned(t testing.TB, cfg Config, format string) zonedFigure {
	t.Helper()
	names := make([]string, 10)
	zones := map[string]string{}
	for i := range names {
		names[i] = fmt.Sprintf(format, i+1)
		zones[names[i]] = fmt.Sprintf("z%d", i%3+1)
	}
	r := mustZoned(t, cfg, names[:9], zones)
	w, err := r.WhatIfAddZone(names[9], "z1")
	if err != nil {
		t.Fatal(err)
	}
	next := mustZoned(t, cfg, names, zones)
	optimal := float64(cfg.Partitions) / 4 / float64(w.TotalSlots)
	f := zonedFigure{move: w.MovedFraction / optimal, balAfter: zoneBalance(next, "z1"), overall: balance(next)}
	for _, z := range []string{"z1", "z2", "z3"} {
		f.balBefore = max(f.balBefore, zoneBalance(r, z))
	}
	return f
}

func TestZoneFigures(t *testing.T) {
	cfg := DefaultConfig()
	for _, format := range []string{"node-%d", "ringkv-%02d", "10.0.0.%d:7946"} {
		f := measureZoned(t, cfg, format)
		t.Logf("%-16s 9 -> 10 in 3 zones: moved %.3f x zoned optimal, busiest %.3f / %.3f x zone average, %.3f x overall average",
			format, f.move, f.balBefore, f.balAfter, f.overall)
		if f.move > maxZonedMoveRatio || f.balBefore > maxZonedBalanceRatio || f.balAfter > maxZonedBalanceRatio {
			t.Errorf("%s: moved %.3f x zoned optimal (max %.2f), busiest %.3f / %.3f x zone average (max %.2f)",
				format, f.move, maxZonedMoveRatio, f.balBefore, f.balAfter, maxZonedBalanceRatio)
		}
	}
}
