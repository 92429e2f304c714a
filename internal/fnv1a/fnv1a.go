// Package fnv1a is the FNV-1a hash as plain functions over a byte slice.
// Unlike hash/fnv's hashers, which escape through the hash.Hash interface
// and allocate per call, these walk the bytes with no allocation and no
// interface call, so hot paths (the ring's key hash, a partitioner) and
// benchmarks can use them. The results equal hash/fnv's New32a and New64a.
package fnv1a

// FNV-1a's offset bases and primes (32 and 64 bits).
const (
	offset32 = 2166136261
	prime32  = 16777619
	offset64 = 14695981039346656037
	prime64  = 1099511628211
)

// Sum32 returns the 32-bit FNV-1a hash of b.
func Sum32(b []byte) uint32 {
	h := uint32(offset32)
	for _, c := range b {
		h ^= uint32(c)
		h *= prime32
	}
	return h
}

// Sum64 returns the 64-bit FNV-1a hash of b.
func Sum64(b []byte) uint64 {
	h := uint64(offset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime64
	}
	return h
}
