package storage

import (
	"fmt"
	"testing"

	"github.com/ringkv/ringkv/vclock"
)

func benchEntrySet(n int) vclock.Siblings {
	var s vclock.Siblings
	for i := range n {
		_, s2 := vclock.Mint(nil, fmt.Sprintf("actor-%d", i), vclock.Write{Value: make([]byte, 100), Context: vclock.Clock{{Actor: "ctx", Counter: 7}}, WallTime: 1 << 60})
		s = vclock.Merge(s, s2)
	}
	return s
}

func BenchmarkEntryCodec(b *testing.B) {
	for _, n := range []int{1, 4} {
		s := benchEntrySet(n)
		key := []byte("some-key-0001")
		b.Run(fmt.Sprintf("op=encode/siblings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				buf = appendEntry(buf[:0], key, s, 1<<60)
			}
		})
		enc := appendEntry(nil, key, s, 1<<60)
		b.Run(fmt.Sprintf("op=decode/siblings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			d := newEntryDecoder(0)
			for b.Loop() {
				if _, err := d.decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
