package wire_test

import (
	"fmt"
	"testing"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/vclock"
)

func benchSets() map[string][]byte {
	out := map[string][]byte{}
	for _, n := range []int{1, 4} {
		var s vclock.Siblings
		for i := range n {
			_, s2 := vclock.Mint(nil, fmt.Sprintf("actor-%d", i), vclock.Write{Value: make([]byte, 100), Context: vclock.Clock{{Actor: "ctx", Counter: 7}}})
			s = vclock.Merge(s, s2)
		}
		b, err := vclock.EncodeSiblings(s)
		if err != nil {
			panic(err)
		}
		out[fmt.Sprintf("siblings=%d", n)] = b
	}
	return out
}

func BenchmarkCheckEncoding(b *testing.B) {
	for name, enc := range benchSets() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if err := wire.CheckEncoding(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
