package replica

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// listTree is a Tree whose one leaf holds keys (sorted); with pager set it
// also pages by itself (TreePager).
type listTree struct{ keys [][]byte }

func (l listTree) TreeHashes(int, int, []uint32) ([]uint64, error) { return nil, nil }
func (l listTree) MarkSynced(int, time.Time)                       {}
func (l listTree) LeafKeys(p int, leaves []uint32, maxKeys int) ([]KeyDigest, bool, error) {
	return l.after(nil, maxKeys)
}

func (l listTree) after(after []byte, maxKeys int) ([]KeyDigest, bool, error) {
	var out []KeyDigest
	for _, k := range l.keys {
		if len(after) == 0 || bytes.Compare(k, after) > 0 {
			out = append(out, KeyDigest{Key: k, Digest: 1})
		}
	}
	if len(out) > maxKeys {
		return out[:maxKeys], true, nil
	}
	return out, false, nil
}

type pagerTree struct{ listTree }

func (p pagerTree) LeafKeysAfter(_ int, _ []uint32, after []byte, maxKeys int) ([]KeyDigest, bool, error) {
	return p.after(after, maxKeys)
}

var _ TreePager = pagerTree{}

// TestLeafKeysAfterPagerAgrees: reading a leaf page by page after a cursor
// gives the same pages whether the tree pages itself (TreePager) or the
// server lists the leaf and cuts it, and the pages cover every key once.
func TestLeafKeysAfterPagerAgrees(t *testing.T) {
	var lt listTree
	const n = 40
	for i := range n {
		lt.keys = append(lt.keys, []byte(fmt.Sprintf("k%03d", i)))
	}
	page := func(tr Tree) [][]byte {
		var all [][]byte
		var after []byte
		for range n + 1 {
			kd, more, err := leafKeysAfter(tr, 0, []uint32{3}, after, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range kd {
				all = append(all, d.Key)
			}
			if !more {
				return all
			}
			after = kd[len(kd)-1].Key
		}
		t.Fatal("paging did not end")
		return nil
	}
	withPager, without := page(pagerTree{lt}), page(lt)
	if len(withPager) != n || len(without) != n {
		t.Fatalf("pages listed %d and %d keys, want %d", len(withPager), len(without), n)
	}
	for i := range withPager {
		if !bytes.Equal(withPager[i], without[i]) || !bytes.Equal(withPager[i], lt.keys[i]) {
			t.Fatalf("key %d: %q vs %q", i, withPager[i], without[i])
		}
	}
}
