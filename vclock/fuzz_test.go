package vclock

import (
	"bytes"
	"testing"
)

func FuzzDecodeContext(f *testing.F) {
	f.Add(EncodeContext(Clock{{Actor: "a", Counter: 1}}))
	f.Add(EncodeContext(Clock{{Actor: "abc", Counter: 1 << 40}, {Actor: "b", Counter: 2}}))
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}) // array32 claiming 4G entries
	f.Add([]byte{0x91, 0x92, 0xa1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeContext(b)
		if err != nil {
			return
		}
		if !c.Valid() {
			t.Fatalf("decoded a non-canonical clock %v", c)
		}
		again, err := DecodeContext(EncodeContext(c))
		if err != nil || !again.Equal(c) {
			t.Fatalf("re-encoding changed the clock: %v -> %v (%v)", c, again, err)
		}
	})
}

func FuzzDecodeContextString(f *testing.F) {
	f.Add(EncodeContextString(Clock{{Actor: "a", Counter: 7}}))
	f.Add("")
	f.Add("____")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeContextString(s)
		if err == nil && EncodeContextString(c) != s && len(c) > 0 {
			// Only the canonical spelling decodes to a non-empty clock.
			if again, _ := DecodeContextString(EncodeContextString(c)); !again.Equal(c) {
				t.Fatalf("round trip changed %q", s)
			}
		}
	})
}

func FuzzDecodeSiblings(f *testing.F) {
	var s Siblings
	_, s = Mint(s, "a", Write{Value: []byte("x"), WallTime: 1})
	_, s = Mint(s, "b", Write{Value: []byte("y"), WallTime: 2})
	b, _ := EncodeSiblings(s)
	f.Add(b)
	_, t1 := Mint(nil, "a", Write{Tombstone: true})
	b, _ = EncodeSiblings(t1)
	f.Add(b)
	f.Add([]byte{0xdc, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSiblings(b)
		if err != nil {
			return
		}
		if !s.Valid() {
			t.Fatalf("decoded a non-canonical set")
		}
		enc, err := EncodeSiblings(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeSiblings(enc)
		if err != nil || !again.Equal(s) {
			t.Fatalf("round trip changed the set (%v)", err)
		}
		_ = bytes.Equal(enc, b)
	})
}
