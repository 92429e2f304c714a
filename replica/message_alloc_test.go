package replica

import (
	"encoding/binary"
	"runtime"
	"testing"
)

// allocated returns the bytes f allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// hostileSetFrame is a request whose "sib" array claims n versions, each
// the smallest valid one, so that every length checks out; extra names a
// field that sends it down the reflection path.
func hostileSetFrame(n int, extra bool) []byte {
	b := []byte{ProtocolVersion, 0x81}
	if extra {
		b[1] = 0x82
		b = append(b, 0xa4, 'p', 'a', 'r', 't', 0x01)
	}
	b = append(b, 0xa3, 's', 'i', 'b', 0xdd)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for range n {
		b = append(b, 0x95, 0x92, 0xa1, 'a', 0x01, 0xc0, 0xc0, 0xc2, 0x00)
	}
	return b
}

// hostileContextFrame is a request with one version whose context claims
// n dots, followed by n bytes that are not dots.
func hostileContextFrame(n int) []byte {
	b := []byte{ProtocolVersion, 0x81, 0xa3, 's', 'i', 'b', 0x91, 0x95, 0x92, 0xa1, 'a', 0x01, 0xdd}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return append(b, make([]byte, 3*n)...)
}

// A peer's counts must be bounded before they size an allocation: what
// decoding a hostile message allocates stays within a small multiple of
// its size (it was ten times a frame, 625 MB for a 64 MiB one).
func TestHostileCountsBounded(t *testing.T) {
	const n = 1 << 20
	for name, b := range map[string][]byte{
		"set fast path":       hostileSetFrame(n, false),
		"set reflection path": hostileSetFrame(n, true),
		"context":             hostileContextFrame(n),
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			got := allocated(func() { _, err = UnmarshalRequest(b) })
			if err == nil {
				t.Fatal("hostile request accepted")
			}
			if limit := 4 * uint64(len(b)); got > limit {
				t.Fatalf("decoding %d bytes allocated %d, more than %d", len(b), got, limit)
			}
			got = allocated(func() { _, err = UnmarshalReply("peer", append([]byte{ProtocolVersion, 0x81, 0xa1, 'r'}, b[1:]...)) })
			if err == nil {
				t.Fatal("hostile reply accepted")
			}
			if limit := 4 * uint64(len(b)); got > limit {
				t.Fatalf("decoding a %d-byte reply allocated %d, more than %d", len(b), got, limit)
			}
		})
	}
}
