package ring

import (
	"bytes"
	"hash/fnv"
	"math/bits"
	"testing"

	"github.com/buraksezer/consistent"
)

// TestSum64Golden pins the ring hash: changing it would re-map every key of
// every existing cluster, so any change must fail here first.
func TestSum64Golden(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"", 0xefd01f60ba992926},
		{"a", 0x82a2a958a9bece5b},
		{"user:42", 0x998817bee6718248},
		{"0:node-1", 0x8df1b0dee3ca3bdd},
	}
	for _, tt := range tests {
		if got := Sum64([]byte(tt.in)); got != tt.want {
			t.Errorf("Sum64(%q) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

// TestReplicaKeyMatchesLibrary checks that the pinned virtual-node key is the
// library's v1.1.0 default, so rings agree with a plain consistent setup.
func TestReplicaKeyMatchesLibrary(t *testing.T) {
	for _, name := range []string{"a", "node-1", "10.0.0.1:7946", "ünï"} {
		for _, idx := range []int{0, 1, 9, 10, 299, 4095} {
			if got, want := replicaKey(name, idx), consistent.DefaultReplicaKey(name, idx); !bytes.Equal(got, want) {
				t.Fatalf("replicaKey(%q, %d) = %q, want %q", name, idx, got, want)
			}
		}
	}
}

// TestSum64Avalanche checks the reason for the finalizer: flipping one bit
// of a short input flips about half the output bits.
func TestSum64Avalanche(t *testing.T) {
	var flips, trials int
	for p := uint64(0); p < 200; p++ {
		in := []byte{byte(p), byte(p >> 8), 0, 0, 0, 0, 0, 0}
		base := Sum64(in)
		for bit := range 16 {
			mod := bytes.Clone(in)
			mod[bit/8] ^= 1 << (bit % 8)
			flips += bits.OnesCount64(base ^ Sum64(mod))
			trials++
		}
	}
	if avg := float64(flips) / float64(trials); avg < 30 || avg > 34 {
		t.Fatalf("average output bits flipped per input bit = %.2f, want about 32", avg)
	}
}

// TestSum64Reference checks Sum64 against the standard library's FNV-1a.
func TestSum64Reference(t *testing.T) {
	in := make([]byte, 0, 300)
	for i := range 300 {
		h := fnv.New64a()
		h.Write(in)
		if got, want := Sum64(in), fmix64(h.Sum64()); got != want {
			t.Fatalf("Sum64(len %d) = %#x, want %#x", len(in), got, want)
		}
		in = append(in, byte(i*7+3))
	}
}

func FuzzSum64(f *testing.F) {
	f.Add([]byte("user:42"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := fnv.New64a()
		h.Write(b)
		if got, want := Sum64(b), fmix64(h.Sum64()); got != want {
			t.Fatalf("Sum64(%q) = %#x, want %#x", b, got, want)
		}
	})
}
