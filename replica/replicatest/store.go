// Package replicatest holds fakes for testing the replica package and its
// users: an in-memory Store, a simple Placement, a settable Liveness, an
// in-memory network with fault injection, and the conformance suite every
// replica.Transport must pass. It is imported by tests only.
package replicatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// Store is an in-memory replica.Store that keeps the contract of the real
// engine: Apply merges with vclock.Merge, Update runs fn under the lock and
// replaces the set, results are immutable. "Durable" here means stored in
// the map before the call returns. It is safe for concurrent use.
type Store struct {
	// Partitioner maps a key to its partition for Scan; nil puts every key
	// in partition 0. Set it before the store is shared.
	Partitioner func(key []byte) int
	// Partitions bounds the partitions the Tree methods accept (0: any
	// that is not negative). Set it before the store is shared.
	Partitions int
	// Now is the clock of receipt times and of the Tombstone rule; nil
	// is time.Now. Set it before the store is shared.
	Now func() time.Time
	// TombstoneGC is the grace of the Tombstone rule; 0 is
	// DefaultTombstoneGC. Set it before the store is shared.
	TombstoneGC time.Duration
	incarnation string
	mu          sync.Mutex // guards data, err and tree
	data        map[string]vclock.Siblings
	err         error
	// tree is the anti-entropy view (tree.go), nil until a Tree method is
	// first called, so that stores of tests that never use it pay nothing.
	tree *tree
}

var _ replica.Store = (*Store)(nil)

// NewStore returns an empty store minting dots as incarnation.
func NewStore(incarnation string) *Store {
	return &Store{incarnation: incarnation, data: map[string]vclock.Siblings{}}
}

// Get returns the key's set, nil if absent. Callers must not modify it.
func (s *Store) Get(key []byte) vclock.Siblings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data[string(key)]
}

// Apply merges set into the key's set.
func (s *Store) Apply(ctx context.Context, key []byte, set vclock.Siblings) (vclock.Siblings, error) {
	return s.Update(ctx, key, func(cur vclock.Siblings) (vclock.Siblings, error) {
		return vclock.Merge(cur, set), nil
	})
}

// Update replaces the key's set with fn's result, under the store lock. An
// empty key or a non-canonical result is refused with ErrInvalid.
func (s *Store) Update(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("replicatest: store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	old := s.data[string(key)]
	next, err := fn(old)
	if err != nil {
		return nil, err
	}
	if !next.Valid() {
		return nil, fmt.Errorf("%w: %w: non-canonical set for %q", ErrInvalid, vclock.ErrBadSiblings, key)
	}
	if s.tree != nil {
		s.treeUpdate(string(key), old, next, s.now().UnixNano())
	}
	if next == nil {
		delete(s.data, string(key))
	} else {
		s.data[string(key)] = next
	}
	return next, nil
}

// Scan pages the keys of partition in key order, as storage.Engine.Scan.
func (s *Store) Scan(partition int, after []byte, maxKeys int, maxBytes int64) (keys [][]byte, sets []vclock.Siblings, more bool) {
	s.mu.Lock()
	var names []string
	for k := range s.data {
		part := 0
		if s.Partitioner != nil {
			part = s.Partitioner([]byte(k))
		}
		if part == partition && k > string(after) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var size int64
	for i, k := range names {
		if i == maxKeys || (i > 0 && size >= maxBytes) {
			more = true
			break
		}
		keys = append(keys, []byte(k))
		sets = append(sets, s.data[k])
		size += int64(len(k) + s.data[k].Size())
	}
	s.mu.Unlock()
	return keys, sets, more
}

// Incarnation returns the actor given to NewStore.
func (s *Store) Incarnation() string { return s.incarnation }

// FailWith makes every later Apply and Update fail with err (a full or
// broken disk); nil heals.
func (s *Store) FailWith(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// Len is the number of keys held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

// Liveness is a settable replica.Liveness: every node is alive until
// SetAlive(node, false).
type Liveness struct {
	mu   sync.Mutex // guards down
	down map[string]bool
}

var _ replica.Liveness = (*Liveness)(nil)

// Alive reports whether node was not marked down.
func (l *Liveness) Alive(node string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.down[node]
}

// SetAlive marks node up or down.
func (l *Liveness) SetAlive(node string, alive bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down == nil {
		l.down = map[string]bool{}
	}
	l.down[node] = !alive
}

// ErrInvalid is Store's refusal of a bad argument (an empty key, a
// non-canonical sibling set), as storage.ErrInvalid is the engine's.
var ErrInvalid = errors.New("replicatest: store: invalid argument")
