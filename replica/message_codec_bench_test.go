package replica

import (
	"fmt"
	"testing"

	"github.com/ringkv/ringkv/vclock"
)

func BenchmarkFastRequestCodec(b *testing.B) {
	for _, n := range []int{1, 4} {
		var s vclock.Siblings
		for i := range n {
			_, s2 := vclock.Mint(nil, fmt.Sprintf("actor-%d", i), vclock.Write{Value: make([]byte, 100), Context: vclock.Clock{{Actor: "ctx", Counter: 7}}, WallTime: 1 << 60})
			s = vclock.Merge(s, s2)
		}
		req := Request{Kind: KindStore, Key: []byte("some-key-0001"), Siblings: s}
		b.Run(fmt.Sprintf("op=encode/siblings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				buf = appendRequest(buf[:0], &req)
			}
		})
		enc := appendRequest(nil, &req)
		b.Run(fmt.Sprintf("op=decode/siblings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := decodeRequest(enc); !ok {
					b.Fatal("fast decode refused")
				}
			}
		})
	}
}
