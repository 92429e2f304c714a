package ring

import (
	"strconv"

	"github.com/ringkv/ringkv/internal/fnv1a"
)

// The ring's hash is part of the cluster's contract: every process must map a
// key to the same partition and a virtual node to the same ring point, so it
// cannot be seeded per process (hash/maphash is) and must never change once
// a cluster holds data. It is 64-bit FNV-1a followed by MurmurHash3's fmix64
// finalizer. FNV-1a alone mixes short inputs poorly (the library hashes
// partition numbers as 8-byte little-endian integers, and virtual-node keys
// differ only in a few digits), which would clump ring points; the
// finalizer gives every input bit an avalanche effect on every output bit.
// fnv1a.Sum64 is a plain byte walk: no allocation, no interface call.

// Sum64 returns the ring hash of b. It is deterministic across processes,
// platforms and releases of this package.
func Sum64(b []byte) uint64 {
	return fmix64(fnv1a.Sum64(b))
}

// fmix64 is MurmurHash3's 64-bit finalizer.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// hasher adapts Sum64 to consistent.Hasher.
type hasher struct{}

// Sum64 implements consistent.Hasher.
func (hasher) Sum64(b []byte) uint64 { return Sum64(b) }

// replicaKey names the idx-th virtual node of member name on the hash ring:
// "idx:name", the same format as consistent.DefaultReplicaKey in v1.1.0. It
// is pinned here so a library upgrade cannot silently move every point. The
// index comes first and holds no colon, so distinct (name, idx) pairs always
// give distinct keys.
func replicaKey(name string, idx int) []byte {
	b := make([]byte, 0, len(name)+8)
	b = strconv.AppendInt(b, int64(idx), 10)
	b = append(b, ':')
	return append(b, name...)
}
