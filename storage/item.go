package storage

import (
	"encoding/binary"
	"unsafe"

	"github.com/ringkv/ringkv/vclock"
)

// item is the index entry of one key: a pointer to the key's blob, one
// allocation of pointer-free bytes that holds the key, its receipt time
// and its sibling set, encoded. A decoded set costs an 88-byte
// vclock.Version per version besides its value, plus a string header per
// key; the blob holds a version's metadata in a dozen bytes, and being
// pointer-free it is never scanned by the garbage collector. The shard's
// map key is a string that aliases the key in the blob, and the entry is
// 8 bytes, paid in every slot of the map, used or not.
//
// Blob layout (in memory only; the WAL and snapshots keep the msgpack
// entry of codec.go):
//
//	uvarint  length of the rest of the blob
//	uvarint  key length, then the key
//	8 bytes  receipt time, little endian (see recv)
//	uvarint  number of versions, then each version:
//	  byte     flags: itemTombstone, itemValue (Value non-nil), itemContext (Context non-nil)
//	  dot      the version's dot
//	  uvarint  context length, then its dots (only with itemContext)
//	  uvarint  value length, then the value (only with itemValue)
//	  varint   receipt time minus WallTime (small: both are nanoseconds near now)
//
// A dot is a uvarint actor reference and a uvarint counter. An even
// reference is 2*i for entry i of the process's actor table (actors), an
// odd one 2*n+1 for an actor of n bytes written inline after it: an actor
// not in the table when the table is full, and an actor that only a
// context names (see actorTable).
type item struct {
	p *byte // the blob's first byte; nil for no entry
}

// Version flags in a blob.
const (
	itemTombstone = 1 << iota
	itemValue
	itemContext
)

// newItem is the entry of key's set s (nil: none) received at recv. The
// returned key string aliases the blob: the shard's map keeps it as the
// key, so the map adds no key allocation of its own.
func newItem(key string, s vclock.Siblings, recv int64) (item, string) {
	return actors.newItem(key, s, recv)
}

// newItem is newItem with t as the actor table: a test's own table, with
// small bounds.
func (t *actorTable) newItem(key string, s vclock.Siblings, recv int64) (item, string) {
	if len(s) == 0 {
		return item{}, key
	}
	// One encoding pass (each actor looked up once) into a buffer on the
	// stack for most sets, then one copy into a blob of the exact size.
	var buf [256]byte
	rest := binary.AppendUvarint(buf[:0], uint64(len(key)))
	rest = append(rest, key...)
	rest = binary.LittleEndian.AppendUint64(rest, uint64(recv))
	rest = binary.AppendUvarint(rest, uint64(len(s)))
	for i := range s {
		rest = t.appendItemVersion(rest, &s[i], recv)
	}
	blob := make([]byte, 0, uvarintLen(uint64(len(rest)))+len(rest))
	blob = binary.AppendUvarint(blob, uint64(len(rest)))
	k := len(blob) + uvarintLen(uint64(len(key)))
	blob = append(blob, rest...)
	return item{p: &blob[0]}, unsafe.String(&blob[k], len(key))
}

func (t *actorTable) appendItemVersion(b []byte, v *vclock.Version, recv int64) []byte {
	var flags byte
	if v.Tombstone {
		flags |= itemTombstone
	}
	if v.Value != nil {
		flags |= itemValue
	}
	if v.Context != nil {
		flags |= itemContext
	}
	b = append(b, flags)
	b = t.appendItemDot(b, v.Dot, true)
	if v.Context != nil {
		b = binary.AppendUvarint(b, uint64(len(v.Context)))
		for _, d := range v.Context {
			b = t.appendItemDot(b, d, false)
		}
	}
	if v.Value != nil {
		b = binary.AppendUvarint(b, uint64(len(v.Value)))
		b = append(b, v.Value...)
	}
	return binary.AppendVarint(b, recv-v.WallTime)
}

// appendItemDot appends d; add: d's actor may enter the table.
func (t *actorTable) appendItemDot(b []byte, d vclock.Dot, add bool) []byte {
	if i, ok := t.ref(d.Actor, add); ok {
		b = binary.AppendUvarint(b, uint64(i)<<1)
	} else {
		b = binary.AppendUvarint(b, uint64(len(d.Actor))<<1|1)
		b = append(b, d.Actor...)
	}
	return binary.AppendUvarint(b, d.Counter)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// bytes is the whole blob; nil for no entry.
func (it item) bytes() []byte {
	if it.p == nil {
		return nil
	}
	// The length prefix is read a byte at a time so that no slice
	// reaches past the blob before its length is known.
	var n uint64
	var i int
	for shift := 0; ; shift += 7 {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(it.p), i))
		i++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	return unsafe.Slice(it.p, i+int(n))
}

// recvAt returns the blob's receipt time and the offset of the version
// count.
func (it item) recvAt(b []byte) (recv int64, off int) {
	_, off = binary.Uvarint(b)
	k, w := binary.Uvarint(b[off:])
	off += w + int(k)
	return int64(binary.LittleEndian.Uint64(b[off:])), off + 8
}

// recv is when the key's set last changed on this node: Unix nanoseconds
// by Config.Now. Tombstone GC and context pruning go by it (see Collect),
// never by versions' wall times, which come from other nodes' clocks.
func (it item) recv() int64 {
	if it.p == nil {
		return 0
	}
	recv, _ := it.recvAt(it.bytes())
	return recv
}

// siblings decodes the entry's sibling set (nil when empty). The values
// alias the blob, which is never modified: they must not be modified
// either, and their capacity is their length, so an append copies. Each
// call returns a new slice of versions.
func (it item) siblings() vclock.Siblings {
	return it.siblingsIn(actors.table())
}

// siblingsIn is siblings with tab as the actor table (see
// actorTable.newItem).
func (it item) siblingsIn(tab []string) vclock.Siblings {
	if it.p == nil {
		return nil
	}
	b := it.bytes()
	recv, off := it.recvAt(b)
	n, w := binary.Uvarint(b[off:])
	off += w
	s := make(vclock.Siblings, n)
	for i := range s {
		off = decodeItemVersion(b, off, &s[i], recv, tab)
	}
	return s
}

func decodeItemVersion(b []byte, off int, v *vclock.Version, recv int64, tab []string) int {
	flags := b[off]
	off++
	v.Tombstone = flags&itemTombstone != 0
	v.Dot, off = decodeItemDot(b, off, tab)
	if flags&itemContext != 0 {
		m, w := binary.Uvarint(b[off:])
		off += w
		v.Context = make(vclock.Clock, m)
		for j := range v.Context {
			v.Context[j], off = decodeItemDot(b, off, tab)
		}
	}
	if flags&itemValue != 0 {
		m, w := binary.Uvarint(b[off:])
		off += w
		end := off + int(m)
		v.Value = b[off:end:end]
		off = end
	}
	d, w := binary.Varint(b[off:])
	v.WallTime = recv - d
	return off + w
}

func decodeItemDot(b []byte, off int, tab []string) (vclock.Dot, int) {
	ref, w := binary.Uvarint(b[off:])
	off += w
	var d vclock.Dot
	if ref&1 == 0 {
		d.Actor = tab[ref>>1]
	} else {
		n := int(ref >> 1)
		d.Actor = string(b[off : off+n])
		off += n
	}
	c, w := binary.Uvarint(b[off:])
	d.Counter = c
	return d, off + w
}
