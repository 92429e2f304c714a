package storage

import (
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/ringkv/ringkv/vclock"
	"pgregory.net/rapid"
)

// TestItemLayout keeps an index entry at 8 bytes: every slot of every
// shard's map pays for it, free slots included.
func TestItemLayout(t *testing.T) {
	if got := unsafe.Sizeof(item{}); got != 8 {
		t.Fatalf("item is %d bytes, want 8", got)
	}
}

// TestItemSiblings checks that an entry gives back the key, receipt time
// and set it was made of, and that appending to a value it gives back
// cannot write into it.
func TestItemSiblings(t *testing.T) {
	if it, k := newItem("k", nil, 1); it.siblings() != nil || it.recv() != 0 || k != "k" {
		t.Fatalf("empty set: siblings() = %v, recv() = %d, key %q", it.siblings(), it.recv(), k)
	}
	long := strings.Repeat("x", maxTableActorBytes+1) // written inline
	var s vclock.Siblings
	for i, actor := range []string{"a", long, "b"} {
		_, s = vclock.Mint(s, actor, vclock.Write{Value: []byte{byte(i)}, WallTime: int64(i)})
		it, k := newItem("key", s, 7)
		got := it.siblings()
		if !got.Equal(s) || len(got) != len(s) || it.recv() != 7 || k != "key" {
			t.Fatalf("siblings() = %v (recv %d, key %q), want %v (recv 7)", got, it.recv(), k, s)
		}
		if !inBlob(it, k) {
			t.Fatal("the key string does not alias the blob")
		}
		for j := range got {
			if v := got[j].Value; cap(v) != len(v) {
				t.Fatalf("value %d has capacity %d for %d bytes: an append would write into the blob", j, cap(v), len(v))
			}
		}
	}
}

// TestItemRoundTrip: any canonical-looking set, receipt time and key come
// back exactly, nil and empty values and contexts kept apart.
func TestItemRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		actor := rapid.SampledFrom([]string{"a", "node-1", "", strings.Repeat("y", 300)})
		dot := rapid.Custom(func(t *rapid.T) vclock.Dot {
			return vclock.Dot{Actor: actor.Draw(t, "actor"), Counter: rapid.Uint64().Draw(t, "counter")}
		})
		version := rapid.Custom(func(t *rapid.T) vclock.Version {
			v := vclock.Version{Dot: dot.Draw(t, "dot"), Tombstone: rapid.Bool().Draw(t, "tomb"),
				WallTime: rapid.Int64().Draw(t, "wall")}
			if rapid.Bool().Draw(t, "hasValue") {
				v.Value = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "value")
				if v.Value == nil {
					v.Value = []byte{}
				}
			}
			if rapid.Bool().Draw(t, "hasContext") {
				v.Context = rapid.SliceOfN(dot, 0, 5).Draw(t, "context")
				if v.Context == nil {
					v.Context = vclock.Clock{}
				}
			}
			return v
		})
		s := vclock.Siblings(rapid.SliceOfN(version, 1, 4).Draw(t, "set"))
		key := rapid.StringN(0, 200, -1).Draw(t, "key")
		recv := rapid.SampledFrom([]int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1 << 62}).Draw(t, "recv")
		it, k := newItem(key, s, recv)
		got := it.siblings()
		if k != key || it.recv() != recv || len(got) != len(s) {
			t.Fatalf("key %q recv %d len %d, want %q %d %d", k, it.recv(), len(got), key, recv, len(s))
		}
		for i := range s {
			a, b := &got[i], &s[i]
			if !a.Equal(b) || (a.Value == nil) != (b.Value == nil) || (a.Context == nil) != (b.Context == nil) || a.WallTime != b.WallTime {
				t.Fatalf("version %d: got %+v, want %+v", i, *a, *b)
			}
		}
	})
}

// TestShardKeepsNewBlobKey: after a key's set is replaced, the shard's
// map holds the new blob's key string, so nothing keeps the old blob.
func TestShardKeepsNewBlobKey(t *testing.T) {
	sh := &shard{m: make(map[string]item)}
	_, s1 := vclock.Mint(nil, "a", vclock.Write{Value: []byte("one")})
	_, s2 := vclock.Mint(s1, "a", vclock.Write{Value: []byte("two")})
	sh.set("key", s1, 1)
	sh.set("key", s2, 2)
	for k, it := range sh.m {
		if !inBlob(it, k) {
			t.Fatal("the map's key string is not the current blob's")
		}
		if got := it.siblings(); !got.Equal(s2) || it.recv() != 2 {
			t.Fatalf("set %v recv %d, want %v recv 2", got, it.recv(), s2)
		}
	}
	sh.set("key", nil, 3)
	if len(sh.m) != 0 || sh.keys.Load() != 0 {
		t.Fatalf("after delete: %d entries, %d keys", len(sh.m), sh.keys.Load())
	}
}

// inBlob reports whether k's bytes lie in it's blob.
func inBlob(it item, k string) bool {
	b := it.bytes()
	start, p := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(unsafe.StringData(k)))
	return p >= start && p+uintptr(len(k)) <= start+uintptr(len(b))
}
