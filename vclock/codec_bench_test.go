package vclock

import (
	"fmt"
	"testing"
)

// benchSet is a set of n versions with two-actor contexts and 100-byte
// values, the shape of a key written concurrently a few times.
func benchSet(n int) Siblings {
	s := make(Siblings, n)
	for i := range s {
		s[i] = Version{
			Dot:      Dot{Actor: fmt.Sprintf("incarnation-%02d", i), Counter: uint64(1000 + i)},
			Context:  Clock{{Actor: "incarnation-aa", Counter: 1 << 20}, {Actor: "incarnation-bb", Counter: 7}},
			Value:    make([]byte, 100),
			WallTime: 1700000000000000000,
		}
	}
	return s
}

func BenchmarkSiblingsCodec(b *testing.B) {
	for _, n := range []int{1, 3} {
		s := benchSet(n)
		enc, err := EncodeSiblings(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("op=encode/versions=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeSiblings(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("op=decode/versions=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := DecodeSiblings(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkContextCodec(b *testing.B) {
	c := Clock{{Actor: "incarnation-aa", Counter: 1 << 20}, {Actor: "incarnation-bb", Counter: 7}, {Actor: "incarnation-cc", Counter: 99}}
	s := EncodeContextString(c)
	b.Run("op=encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = EncodeContextString(c)
		}
	})
	b.Run("op=decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeContextString(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
