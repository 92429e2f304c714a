package main

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/ringkv/ringkv/internal/fnv1a"
)

// zipfianTheta is YCSB's Zipfian constant: a few records take most of the
// traffic, as in real key-value workloads (Cooper et al., SoCC 2010).
const zipfianTheta = 0.99

// exactZetaItems is how many terms of the zeta sum are added one by one; the
// rest of a larger key space is estimated (zeta), so that --records 100M
// starts at once instead of summing 100M powers.
const exactZetaItems = 1 << 20

// keyChooser picks the record of the next operation, 0..records-1. One
// chooser is shared by every client; it must not keep state of its own
// beyond construction, because each client passes its own random source.
type keyChooser interface {
	next(r *rand.Rand) uint64
}

// uniformChooser picks every record with the same probability.
type uniformChooser struct{ items uint64 }

func (u uniformChooser) next(r *rand.Rand) uint64 { return r.Uint64N(u.items) }

// zipfian draws 0..items-1 with P(i) proportional to 1/(i+1)^theta, with the
// algorithm of Gray et al., "Quickly Generating Billion-Record Synthetic
// Databases" (SIGMOD 1994), as YCSB's ZipfianGenerator does. Unlike
// math/rand/v2's Zipf it accepts theta < 1, which YCSB's 0.99 needs.
type zipfian struct {
	items      uint64
	theta      float64
	alpha      float64 // 1/(1-theta)
	zetan      float64 // zeta(items, theta)
	eta        float64
	secondStep float64 // 1 + 0.5^theta: the cumulative weight of items 0 and 1
}

func newZipfian(items uint64, theta float64) *zipfian {
	z := &zipfian{items: items, theta: theta, alpha: 1 / (1 - theta)}
	z.zetan = zeta(items, theta)
	zeta2 := zeta(2, theta)
	z.secondStep = 1 + math.Pow(0.5, theta)
	// With one or two items next never reaches eta (u*zetan stays below
	// secondStep), and the formula would divide by zero.
	if items > 2 {
		z.eta = (1 - math.Pow(2/float64(items), 1-theta)) / (1 - zeta2/z.zetan)
	}
	return z
}

// next maps a uniform u in [0, 1) to an item.
func (z *zipfian) next(u float64) uint64 {
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.secondStep {
		return 1
	}
	v := uint64(float64(z.items) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	if v >= z.items {
		v = z.items - 1
	}
	return v
}

// zeta is sum_{i=1..n} i^-theta: exact up to exactZetaItems terms, beyond
// that the Euler-Maclaurin estimate of the tail (integral, end-point and
// first derivative terms), which agrees with the exact sum to about 1e-12.
func zeta(n uint64, theta float64) float64 {
	m := min(n, exactZetaItems)
	sum := 0.0
	for i := uint64(1); i <= m; i++ {
		sum += math.Pow(float64(i), -theta)
	}
	if n == m {
		return sum
	}
	f := func(x float64) float64 { return math.Pow(x, -theta) }
	df := func(x float64) float64 { return -theta * math.Pow(x, -theta-1) }
	a, b := float64(m), float64(n)
	// sum_{i=m..n} f(i) ~ integral_m^n f + (f(m)+f(n))/2 + (f'(n)-f'(m))/12;
	// f(m) was already added above.
	tail := (math.Pow(b, 1-theta)-math.Pow(a, 1-theta))/(1-theta) + (f(a)+f(b))/2 + (df(b)-df(a))/12
	return sum - f(a) + tail
}

// scrambledZipfian is YCSB's ScrambledZipfianGenerator: Zipfian popularity,
// but the popular records are hashed over the whole key space instead of
// being records 0, 1, 2..., so that a load generator that names keys by
// number does not put its hot keys next to each other.
type scrambledZipfian struct{ z *zipfian }

func newScrambledZipfian(items uint64) scrambledZipfian {
	return scrambledZipfian{z: newZipfian(items, zipfianTheta)}
}

func (s scrambledZipfian) next(r *rand.Rand) uint64 {
	return fnv64(s.z.next(r.Float64())) % s.z.items
}

// fnv64 is FNV-1a over the 8 little-endian bytes of v, YCSB's FNVhash64.
func fnv64(v uint64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return fnv1a.Sum64(b[:])
}

// benchKey names record i the way YCSB does ("user" and a number).
func benchKey(i uint64) string {
	return "user" + strconv.FormatUint(i, 10)
}
