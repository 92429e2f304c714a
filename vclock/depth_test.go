package vclock

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ringkv/ringkv/internal/wire"
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

// TestDecodersRefuseDeepNesting: the decoders run wire.CheckEncoding
// first, so deep input is an error, not a stack overflow, and ordinary
// sets pass.
func TestDecodersRefuseDeepNesting(t *testing.T) {
	_, s := Mint(nil, "a", Write{Value: []byte("v"), Context: Clock{{Actor: "b", Counter: 3}}})
	b, err := EncodeSiblings(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeSiblings(b); err != nil {
		t.Fatalf("ordinary set refused: %v", err)
	}
	// The decoders run the check first, so the deep input is an error,
	// not a crash.
	deep := nested(1<<20, false)
	if _, err := DecodeSiblings(deep); !errors.Is(err, ErrBadSiblings) {
		t.Fatalf("DecodeSiblings of deep nesting: %v", err)
	}
	if _, err := DecodeContext(nested(wire.MaxDepth+1, false)); !errors.Is(err, ErrBadContext) {
		t.Fatalf("DecodeContext of deep nesting: %v", err)
	}
}
