package main

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestZetaEstimate(t *testing.T) {
	// Above exactZetaItems the tail is estimated; compare with the sum
	// done term by term.
	for _, n := range []uint64{exactZetaItems + 1, 3 * exactZetaItems} {
		exact := 0.0
		for i := uint64(1); i <= n; i++ {
			exact += math.Pow(float64(i), -zipfianTheta)
		}
		if got := zeta(n, zipfianTheta); math.Abs(got-exact) > 1e-9*exact {
			t.Errorf("zeta(%d) = %.12f, exact %.12f", n, got, exact)
		}
	}
}

// pickCounts draws picks keys and returns how often each record came up.
func pickCounts(t *testing.T, ch keyChooser, records uint64, picks int) []int {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, records)
	for range picks {
		k := ch.next(r)
		if k >= records {
			t.Fatalf("picked record %d of %d", k, records)
		}
		counts[k]++
	}
	return counts
}

// topShare is the share of picks that went to the most-picked 1% of records.
func topShare(counts []int, picks int) float64 {
	c := slices.Clone(counts)
	slices.Sort(c)
	slices.Reverse(c)
	top := 0
	for _, n := range c[:max(1, len(c)/100)] {
		top += n
	}
	return float64(top) / float64(picks)
}

func TestKeyChoosers(t *testing.T) {
	const picks = 200_000
	for _, records := range []uint64{10_000, 1_000_000} {
		z := pickCounts(t, newScrambledZipfian(records), records, picks)
		if s := topShare(z, picks); s <= 0.10 {
			t.Errorf("zipfian over %d records: top 1%% got %.1f%% of picks, want > 10%%", records, 100*s)
		}
	}
	// 20 picks per record on average: the top 1% stays near 1%.
	u := pickCounts(t, uniformChooser{items: 10_000}, 10_000, picks)
	if s := topShare(u, picks); s > 0.03 {
		t.Errorf("uniform: top 1%% got %.1f%% of picks, want about 1%%", 100*s)
	}
	// The hottest records are scattered, not records 0, 1, 2...
	z := pickCounts(t, newScrambledZipfian(10_000), 10_000, picks)
	hot := 0
	for i := range 100 {
		if z[i] > picks/1000 {
			hot++
		}
	}
	if hot > 10 {
		t.Errorf("%d of records 0..99 are hot: popular keys are not scrambled", hot)
	}
}

func TestZipfianSmallAndEdges(t *testing.T) {
	for _, items := range []uint64{1, 2, 3} {
		z := newZipfian(items, zipfianTheta)
		for _, u := range []float64{0, 0.25, 0.5, 0.999999, math.Nextafter(1, 0)} {
			if v := z.next(u); v >= items {
				t.Errorf("items %d: next(%v) = %d", items, u, v)
			}
		}
	}
	// Unscrambled, item 0 is the most popular and popularity falls with rank.
	z := newZipfian(1000, zipfianTheta)
	r := rand.New(rand.NewPCG(3, 4))
	counts := make([]int, 1000)
	for range 100_000 {
		counts[z.next(r.Float64())]++
	}
	if counts[0] <= counts[1] || counts[1] <= counts[10] || counts[10] <= counts[900] {
		t.Errorf("counts not falling with rank: 0:%d 1:%d 10:%d 900:%d", counts[0], counts[1], counts[10], counts[900])
	}
	// P(item 0) = 1/zeta(1000): about 13% at theta 0.99.
	if p := float64(counts[0]) / 100_000; math.Abs(p-1/zeta(1000, zipfianTheta)) > 0.01 {
		t.Errorf("P(0) = %.3f, want %.3f", p, 1/zeta(1000, zipfianTheta))
	}
}

func TestBenchKeyAndValue(t *testing.T) {
	if k := benchKey(42); k != "user42" {
		t.Errorf("benchKey(42) = %q", k)
	}
	w := newBenchWorker(nil, 1, 0, 20)
	a := string(w.nextValue())
	b := string(w.nextValue())
	if len(a) != 20 || a == b {
		t.Errorf("values %q then %q: want 20 bytes, different", a, b)
	}
	if v := newBenchWorker(nil, 1, 0, 1).nextValue(); len(v) != 1 {
		t.Errorf("1-byte value is %d bytes", len(v))
	}
}

// TestFNV64 pins fnv64 to YCSB's FNVhash64: FNV-1a over the 8
// little-endian bytes, as hash/fnv computes it.
func TestFNV64(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xff, 1 << 40, ^uint64(0)} {
		h := fnv.New64a()
		h.Write(binary.LittleEndian.AppendUint64(nil, v))
		if got, want := fnv64(v), h.Sum64(); got != want {
			t.Errorf("fnv64(%d) = %#x, want %#x", v, got, want)
		}
	}
}
