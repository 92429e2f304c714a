// Package storagetest holds test helpers for code that uses the storage
// engine: Mem, an in-memory stand-in with the Engine's read/write
// semantics, and RunStoreTests, the conformance suite that both Mem and
// *storage.Engine pass, so the fake cannot drift from the real thing.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// Store is the part of *storage.Engine that Mem implements.
type Store interface {
	Get(key []byte) vclock.Siblings
	Apply(ctx context.Context, key []byte, s vclock.Siblings) (vclock.Siblings, error)
	Update(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, error)
	Range(partition int, fn func(key []byte, s vclock.Siblings) bool)
	PartitionStats() []storage.PartitionStat
	Incarnation() string
}

var (
	_ Store = (*storage.Engine)(nil)
	_ Store = (*Mem)(nil)
)

// Mem is an in-memory Store: no disk, no WAL, otherwise the Engine's
// semantics (merge on Apply, replace on Update, validation errors wrapping
// storage.ErrInvalid). Safe for concurrent use. Fail makes later writes
// fail, to test callers' handling of storage.ErrFailed.
type Mem struct {
	partitioner func([]byte) int
	incarnation string

	// mu guards parts and failed.
	mu     sync.Mutex
	parts  []map[string]vclock.Siblings
	failed error
}

// NewMem returns an empty Mem with the given partitioning. A random
// incarnation is made, as a fresh data directory would.
func NewMem(partitions int, partitioner func([]byte) int) *Mem {
	var b [6]byte
	_, _ = rand.Read(b[:])
	m := &Mem{partitioner: partitioner, incarnation: hex.EncodeToString(b[:])}
	for range partitions {
		m.parts = append(m.parts, make(map[string]vclock.Siblings))
	}
	return m
}

// Fail makes every later write return err wrapped with storage.ErrFailed.
func (m *Mem) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed = fmt.Errorf("%w: %w", storage.ErrFailed, err)
}

// Incarnation implements Store.
func (m *Mem) Incarnation() string { return m.incarnation }

func (m *Mem) part(key []byte) (map[string]vclock.Siblings, error) {
	p := m.partitioner(key)
	if p < 0 || p >= len(m.parts) {
		return nil, fmt.Errorf("%w: partitioner returned %d", storage.ErrInvalid, p)
	}
	return m.parts[p], nil
}

// Get implements Store.
func (m *Mem) Get(key []byte) vclock.Siblings {
	m.mu.Lock()
	defer m.mu.Unlock()
	part, err := m.part(key)
	if err != nil {
		return nil
	}
	return part[string(key)]
}

// Apply implements Store.
func (m *Mem) Apply(ctx context.Context, key []byte, s vclock.Siblings) (vclock.Siblings, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: sibling set not canonical", storage.ErrInvalid)
	}
	return m.Update(ctx, key, func(cur vclock.Siblings) (vclock.Siblings, error) { return vclock.Merge(cur, s), nil })
}

// Update implements Store.
func (m *Mem) Update(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key", storage.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	part, err := m.part(key)
	if err != nil {
		return nil, err
	}
	cur := part[string(key)]
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if !next.Valid() {
		return nil, fmt.Errorf("%w: update produced a non-canonical set", storage.ErrInvalid)
	}
	if m.failed != nil && !next.Equal(cur) {
		return nil, m.failed
	}
	if len(next) == 0 {
		delete(part, string(key))
		return nil, nil
	}
	part[string(key)] = next
	return next, nil
}

// Range implements Store; it iterates a copy, so fn may call m.
func (m *Mem) Range(partition int, fn func(key []byte, s vclock.Siblings) bool) {
	m.mu.Lock()
	if partition < 0 || partition >= len(m.parts) {
		m.mu.Unlock()
		return
	}
	type kv struct {
		k string
		s vclock.Siblings
	}
	var all []kv
	for k, s := range m.parts[partition] {
		all = append(all, kv{k, s})
	}
	m.mu.Unlock()
	for _, e := range all {
		if !fn([]byte(e.k), e.s) {
			return
		}
	}
}

// PartitionStats implements Store.
func (m *Mem) PartitionStats() []storage.PartitionStat {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]storage.PartitionStat, len(m.parts))
	for i, p := range m.parts {
		for k, s := range p {
			out[i].Keys++
			out[i].Bytes += int64(len(k) + s.Size())
		}
	}
	return out
}
