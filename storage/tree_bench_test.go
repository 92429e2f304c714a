package storage

import (
	"fmt"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// BenchmarkTreeDelta measures what the hash tree adds to every write: the
// digests of the key's old and new sets, its leaf and the XOR into three
// tree nodes, for the steady-state shape of BenchmarkUpdate (a 16-byte key,
// one version replacing one version) and for a key with 3 siblings.
func BenchmarkTreeDelta(b *testing.B) {
	key := "w00-key-0000042x"
	for _, versions := range []int{1, 3} {
		b.Run(fmt.Sprintf("versions=%d", versions), func(b *testing.B) {
			var old, next vclock.Siblings
			for i := range versions {
				_, v := vclock.Mint(nil, fmt.Sprintf("actor%07d", i), vclock.Write{Value: make([]byte, 100), WallTime: time.Now().UnixNano()})
				old = vclock.Merge(old, v)
			}
			_, next = vclock.Mint(old, "abcdefghijkl", vclock.Write{Blind: true, Value: make([]byte, 100)})
			var t tree
			b.ReportAllocs()
			for b.Loop() {
				if d := digestString(key, old) ^ digestString(key, next); d != 0 {
					t.add(leafString(key), d)
				}
			}
		})
	}
}
