package fnv1a

import (
	"hash/fnv"
	"strings"
	"testing"
)

// TestMatchesStandardLibrary holds both sums to hash/fnv's FNV-1a on
// inputs of every length up to 64 and on the published test vectors.
func TestMatchesStandardLibrary(t *testing.T) {
	inputs := [][]byte{nil, []byte("a"), []byte("foobar"), []byte(strings.Repeat("\xff", 300))}
	for n := range 64 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*31 + n)
		}
		inputs = append(inputs, b)
	}
	for _, b := range inputs {
		h32, h64 := fnv.New32a(), fnv.New64a()
		h32.Write(b)
		h64.Write(b)
		if got, want := Sum32(b), h32.Sum32(); got != want {
			t.Errorf("Sum32(%q) = %#x, want %#x", b, got, want)
		}
		if got, want := Sum64(b), h64.Sum64(); got != want {
			t.Errorf("Sum64(%q) = %#x, want %#x", b, got, want)
		}
	}
	// Vectors from the FNV reference (draft-eastlake-fnv).
	if got := Sum32([]byte("foobar")); got != 0xbf9cf968 {
		t.Errorf("Sum32(foobar) = %#x, want 0xbf9cf968", got)
	}
	if got := Sum64([]byte("foobar")); got != 0x85944171f73967e8 {
		t.Errorf("Sum64(foobar) = %#x, want 0x85944171f73967e8", got)
	}
}

func TestNoAllocation(t *testing.T) {
	b := []byte("user1234567890")
	if n := testing.AllocsPerRun(100, func() { Sum32(b); Sum64(b) }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}
