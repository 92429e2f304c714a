package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// nested returns depth nested one-element arrays around nil, or maps when
// useMap (each map holds one key whose value is the next level).
func nested(depth int, useMap bool) []byte {
	var b bytes.Buffer
	for range depth {
		if useMap {
			b.Write([]byte{0x81, 0xa1, 'a'})
		} else {
			b.WriteByte(0x91)
		}
	}
	b.WriteByte(0xc0)
	return b.Bytes()
}

// TestCheckEncodingDepth: msgpack's decoder recurses once per nesting level
// (also when it skips an unknown field), so a few megabytes of nested
// arrays would overflow the goroutine stack, a fatal error no recover
// catches. CheckEncoding must refuse nesting beyond MaxDepth before any
// decoder sees the bytes, and accept everything up to it.
func TestCheckEncodingDepth(t *testing.T) {
	for _, useMap := range []bool{false, true} {
		if err := CheckEncoding(nested(MaxDepth, useMap)); err != nil {
			t.Errorf("map=%v: depth %d refused: %v", useMap, MaxDepth, err)
		}
		if err := CheckEncoding(nested(MaxDepth+1, useMap)); !errors.Is(err, ErrBadEncoding) {
			t.Errorf("map=%v: depth %d: err = %v, want ErrBadEncoding", useMap, MaxDepth+1, err)
		}
	}
	// The frame from the probe: 8 MB of nested arrays.
	if err := CheckEncoding(nested(8<<20, false)); !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("8 MB of nesting: err = %v, want ErrBadEncoding", err)
	}
	// Depth counts open containers, not values: a long flat array and a
	// set of siblings with contexts are fine.
	flat := append([]byte{0xdc, 0xff, 0xff}, bytes.Repeat([]byte{0x91, 0xc0}, 0xffff)...)
	if err := CheckEncoding(flat); err != nil {
		t.Fatalf("flat array of one-element arrays refused: %v", err)
	}
	// Sanity: what passes the check decodes with msgpack without trouble.
	var v any
	if err := msgpack.Unmarshal(nested(MaxDepth, true), &v); err != nil {
		t.Fatalf("decoding depth %d: %v", MaxDepth, err)
	}
}

func FuzzCheckEncoding(f *testing.F) {
	// A causal context [["a", 1]], a lying array32 header, an ext8.
	f.Add([]byte{0x91, 0x92, 0xa1, 'a', 0x01})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc7, 0x01, 0x05, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckEncoding(b) != nil {
			return
		}
		// Whatever passes must decode (into an interface) without trouble
		// and re-encode to a value that passes again.
		var v any
		if err := msgpack.Unmarshal(b, &v); err != nil {
			return // well-formed but semantically odd (e.g. bad ext); fine
		}
		enc, err := msgpack.Marshal(v)
		if err != nil {
			return
		}
		if err := CheckEncoding(enc); err != nil {
			t.Fatalf("re-encoded value fails the check: %v", err)
		}
	})
}
