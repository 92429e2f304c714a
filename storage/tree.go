package storage

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/ringkv/ringkv/vclock"
)

// The anti-entropy hash tree of a partition. Its shape is fixed protocol
// (replicas compare trees node by node), so it is constant:
//
//	level 0  the root, 1 node
//	level 1  TreeFanout nodes; node i is the parent of leaves i*16..i*16+15
//	level 2  TreeLeaves leaves; key k lies in leaf Leaf(k)
//
// A leaf's hash is the XOR of Digest(key, set) over its keys, and an inner
// node's the XOR of its children's. XOR makes the tree independent of the
// order keys were written in and lets a write update it in O(levels): the
// change old^new of one key's digest is XORed into its leaf and the leaf's
// ancestors. The tree is never persisted: Open rebuilds it while it
// recovers the index, so it cannot be stale.
const (
	// TreeLevels is the number of levels of the tree, root included.
	TreeLevels = 3
	// TreeFanout is the number of children of an inner node.
	TreeFanout = 16
	// TreeLeaves is the number of leaves (TreeFanout^(TreeLevels-1)).
	TreeLeaves = TreeFanout * TreeFanout
)

// tree is one partition's hash tree: 273 uint64s (2,184 bytes), whatever
// the partition holds. Guarded by its shard's mu.
type tree struct {
	root   uint64
	mid    [TreeFanout]uint64
	leaves [TreeLeaves]uint64
}

// add XORs delta into leaf and its ancestors.
func (t *tree) add(leaf uint32, delta uint64) {
	t.leaves[leaf] ^= delta
	t.mid[leaf/TreeFanout] ^= delta
	t.root ^= delta
}

// level returns the hashes of one level (0..TreeLevels-1); it aliases t.
func (t *tree) level(l int) []uint64 {
	switch l {
	case 0:
		return unsafe.Slice(&t.root, 1)
	case 1:
		return t.mid[:]
	default:
		return t.leaves[:]
	}
}

// Leaf returns the leaf of the hash tree key lies in:
// xxhash64(key) % TreeLeaves.
func Leaf(key []byte) uint32 { return uint32(xxhash.Sum64(key) % TreeLeaves) }

func leafString(key string) uint32 { return uint32(xxhash.Sum64String(key) % TreeLeaves) }

// Digest returns the hash of key's sibling set that anti-entropy compares:
// xxhash64 over the key bytes, then for each version in order its dot's
// actor bytes, its counter (8 bytes, little endian) and a tombstone byte
// (1 or 0). It is 0 for an empty set, and for a set of tombstones alone:
// those take no part in anti-entropy (a replica lacking the key has no
// value for them to delete, and one holding a value compares unequal
// anyway), so a replica that collected them is in sync with one that has
// not yet. Dots name writes, so two replicas
// holding the same dots hold the same set; contexts are left out, so a set
// whose contexts were pruned (vclock.PruneContexts) compares equal to the
// unpruned one.
func Digest(key []byte, s vclock.Siblings) uint64 {
	return digestString(unsafe.String(unsafe.SliceData(key), len(key)), s)
}

func digestString(key string, s vclock.Siblings) uint64 {
	if !hasLive(s) {
		return 0
	}
	// Most sets are a short key and one or two versions: hashing them in
	// one call from a stack buffer is about twice as fast as streaming.
	n := len(key)
	for i := range s {
		n += len(s[i].Dot.Actor) + 9
	}
	if n <= digestBuf {
		var buf [digestBuf]byte
		b := append(buf[:0], key...)
		for i := range s {
			b = appendVersionDigest(b, &s[i])
		}
		return xxhash.Sum64(b)
	}
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(key)
	var b [9]byte
	for i := range s {
		_, _ = d.WriteString(s[i].Dot.Actor)
		_, _ = d.Write(appendDotTail(b[:0], &s[i]))
	}
	return d.Sum64()
}

// digestBuf is the largest digest input hashed from a stack buffer.
const digestBuf = 192

// appendVersionDigest appends what Digest hashes of v: its actor, then
// appendDotTail.
func appendVersionDigest(b []byte, v *vclock.Version) []byte {
	return appendDotTail(append(b, v.Dot.Actor...), v)
}

// appendDotTail appends v's counter (8 bytes, little endian) and its
// tombstone flag (1 or 0).
func appendDotTail(b []byte, v *vclock.Version) []byte {
	b = binary.LittleEndian.AppendUint64(b, v.Dot.Counter)
	if v.Tombstone {
		return append(b, 1)
	}
	return append(b, 0)
}

// levelSize is the number of nodes at level l of the tree.
func levelSize(l int) int {
	n := 1
	for range l {
		n *= TreeFanout
	}
	return n
}

// TreeHashes returns the hashes of the named nodes at level (0 root,
// 1 inner, 2 leaves) of partition's hash tree, in the order named; nodes
// nil or empty names every node of the level. A bad partition, level or
// node index, or more nodes than the level has, is ErrInvalid. The result
// is a fresh slice no longer than the level.
func (e *Engine) TreeHashes(partition, level int, nodes []uint32) ([]uint64, error) {
	if partition < 0 || partition >= len(e.shards) {
		return nil, fmt.Errorf("%w: partition %d, have %d", ErrInvalid, partition, len(e.shards))
	}
	if level < 0 || level >= TreeLevels {
		return nil, fmt.Errorf("%w: tree level %d, want 0..%d", ErrInvalid, level, TreeLevels-1)
	}
	size := levelSize(level)
	if len(nodes) > size {
		return nil, fmt.Errorf("%w: %d tree nodes asked at level %d, which has %d", ErrInvalid, len(nodes), level, size)
	}
	for _, n := range nodes {
		if int(n) >= size {
			return nil, fmt.Errorf("%w: tree node %d at level %d, which has %d", ErrInvalid, n, level, size)
		}
	}
	sh := e.shards[partition]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	hashes := sh.tree.level(level)
	if len(nodes) == 0 {
		return slices.Clone(hashes), nil
	}
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		out[i] = hashes[n]
	}
	return out, nil
}

// KeyDigest is one key of a leaf as anti-entropy compares it.
type KeyDigest struct {
	// Key is the key; the caller owns it.
	Key []byte
	// Digest is Digest(Key, set).
	Digest uint64
	// Tombstone says every version of the set is a tombstone. Anti-entropy
	// neither sends nor pulls such a set when the other replica lacks the
	// key: there is no value there for it to delete, and a replica that
	// collected it would otherwise get it back from one whose grace ends
	// later, and so on for good.
	Tombstone bool
	// Collectable says the key is a tombstone-only set that this node may
	// forget (see Engine.Collect): every replica of the partition held it
	// and the grace passed.
	Collectable bool
}

// LeafKeys returns the keys of partition that lie in the given leaves,
// sorted by key, with their digests and Tombstone and Collectable flags: at most maxKeys
// of them, the first in key order; more reports that keys were left out.
// A bad partition, a leaf index >= TreeLeaves, more than TreeLeaves leaves
// or maxKeys < 1 is ErrInvalid.
func (e *Engine) LeafKeys(partition int, leaves []uint32, maxKeys int) ([]KeyDigest, bool, error) {
	return e.LeafKeysAfter(partition, leaves, nil, maxKeys)
}

// LeafKeysAfter is LeafKeys for the keys that sort after after (all when
// after is empty): the next page of a large leaf. Keys up to after are
// passed over before anything is sorted, copied or digested, so reading a
// leaf page by page costs a pass over the partition per page, not a copy
// of the whole leaf.
func (e *Engine) LeafKeysAfter(partition int, leaves []uint32, after []byte, maxKeys int) ([]KeyDigest, bool, error) {
	if partition < 0 || partition >= len(e.shards) {
		return nil, false, fmt.Errorf("%w: partition %d, have %d", ErrInvalid, partition, len(e.shards))
	}
	if len(leaves) > TreeLeaves || maxKeys < 1 {
		return nil, false, fmt.Errorf("%w: %d leaves (limit %d), max keys %d", ErrInvalid, len(leaves), TreeLeaves, maxKeys)
	}
	var want [TreeLeaves]bool
	for _, l := range leaves {
		if l >= TreeLeaves {
			return nil, false, fmt.Errorf("%w: leaf %d, have %d", ErrInvalid, l, TreeLeaves)
		}
		want[l] = true
	}
	if len(leaves) == 0 {
		return nil, false, nil
	}
	sh := e.shards[partition]
	gc := e.gcRule(sh)
	// The leaf test hashes every key of the partition; it runs under the
	// read lock (writers wait for it, readers do not), which beats copying
	// the whole partition out first.
	var found []entry
	sh.mu.RLock()
	from := string(after)
	for k, it := range sh.m {
		if (from == "" || k > from) && want[leafString(k)] {
			found = append(found, entry{key: k, item: it})
		}
	}
	sh.mu.RUnlock()
	slices.SortFunc(found, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	more := len(found) > maxKeys
	found = found[:min(len(found), maxKeys)]
	out := make([]KeyDigest, len(found))
	for i, f := range found {
		s := f.siblings()
		out[i] = KeyDigest{Key: []byte(f.key), Digest: digestString(f.key, s),
			Tombstone: len(s) > 0 && !hasLive(s), Collectable: gc.collectable(f.item, s)}
	}
	return out, more, nil
}
