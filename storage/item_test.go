package storage

import (
	"testing"
	"unsafe"

	"github.com/ringkv/ringkv/vclock"
)

// TestItemLayout keeps an index entry at 24 bytes: every slot of every
// shard's map pays for it, free slots included.
func TestItemLayout(t *testing.T) {
	if got := unsafe.Sizeof(item{}); got != 24 {
		t.Fatalf("item is %d bytes, want 24", got)
	}
}

// TestItemSiblings checks that an entry gives back the set it was made
// of, and that appending to what it gives back cannot write into it.
func TestItemSiblings(t *testing.T) {
	if s := newItem(nil, 1).siblings(); s != nil {
		t.Fatalf("empty set: siblings() = %v, want nil", s)
	}
	var s vclock.Siblings
	for i := range 3 {
		_, s = vclock.Mint(s, "a", vclock.Write{Value: []byte{byte(i)}, WallTime: int64(i)})
		it := newItem(s, 7)
		got := it.siblings()
		if !got.Equal(s) || len(got) != len(s) || it.recv != 7 {
			t.Fatalf("siblings() = %v (recv %d), want %v (recv 7)", got, it.recv, s)
		}
		if cap(got) != len(got) {
			t.Fatalf("siblings() has capacity %d for %d versions: an append would write into the index", cap(got), len(got))
		}
	}
}
