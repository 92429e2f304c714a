package replicatest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// This file gives Store the anti-entropy view of the real engine
// (replica.Tree): a hash tree per partition, kept incrementally by Update
// once any tree method was called, with the digest and leaf definitions
// of storage (docs: AAE note, section 2b), receipt times per key and the
// Tombstone rule.

var _ replica.Tree = (*Store)(nil)

// DefaultTombstoneGC is the grace Store uses when TombstoneGC is 0, as
// storage's default.
const DefaultTombstoneGC = 240 * time.Hour

// Digest hashes a key's sibling set as storage does: xxhash64 over the key,
// then per version its dot's actor, counter (8 bytes little-endian) and
// tombstone byte. Contexts are not hashed. 0 for an empty set and for a
// set of tombstones alone.
func Digest(key []byte, s vclock.Siblings) uint64 {
	if tombstoneOnly(s) || len(s) == 0 {
		return 0
	}
	d := xxhash.New()
	_, _ = d.Write(key)
	var b [9]byte
	for i := range s {
		_, _ = d.WriteString(s[i].Dot.Actor)
		binary.LittleEndian.PutUint64(b[:8], s[i].Dot.Counter)
		b[8] = 0
		if s[i].Tombstone {
			b[8] = 1
		}
		_, _ = d.Write(b[:])
	}
	return d.Sum64()
}

// Leaf is the tree leaf of key: xxhash64(key) % replica.TreeLeaves.
func Leaf(key []byte) uint32 { return uint32(xxhash.Sum64(key) % replica.TreeLeaves) }

// tree is the incremental state behind the Tree methods. Guarded by the
// Store's mu.
type tree struct {
	leaves map[int]*[replica.TreeLeaves]uint64    // partition -> leaf hashes
	keys   map[int]map[uint32]map[string]struct{} // partition -> leaf -> keys
	recv   map[string]int64                       // key -> when its set last changed (Unix ns)
	synced map[int]time.Time                      // partition -> MarkSynced's latest
	marks  map[int][]time.Time                    // partition -> every MarkSynced call
}

// enableTree builds the tree from the data held; every key's receipt time
// is taken as now (conservative, as storage does for old records). Called
// with s.mu held.
func (s *Store) enableTree() *tree {
	if s.tree != nil {
		return s.tree
	}
	s.tree = &tree{
		leaves: map[int]*[replica.TreeLeaves]uint64{}, keys: map[int]map[uint32]map[string]struct{}{},
		recv: map[string]int64{}, synced: map[int]time.Time{}, marks: map[int][]time.Time{},
	}
	now := s.now().UnixNano()
	for k, set := range s.data {
		s.treeUpdate(k, nil, set, now)
	}
	return s.tree
}

// treeUpdate moves key's contribution from old to next. Called with s.mu
// held, only when the tree is on.
func (s *Store) treeUpdate(key string, old, next vclock.Siblings, now int64) {
	t := s.tree
	p, leaf := s.partition([]byte(key)), Leaf([]byte(key))
	if t.leaves[p] == nil {
		t.leaves[p] = &[replica.TreeLeaves]uint64{}
		t.keys[p] = map[uint32]map[string]struct{}{}
	}
	t.leaves[p][leaf] ^= Digest([]byte(key), old) ^ Digest([]byte(key), next)
	if len(next) == 0 {
		delete(t.keys[p][leaf], key)
		delete(t.recv, key)
		return
	}
	if t.keys[p][leaf] == nil {
		t.keys[p][leaf] = map[string]struct{}{}
	}
	t.keys[p][leaf][key] = struct{}{}
	if !next.Equal(old) {
		t.recv[key] = now
	}
}

func (s *Store) partition(key []byte) int {
	if s.Partitioner == nil {
		return 0
	}
	return s.Partitioner(key)
}

func (s *Store) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// checkPartition refuses a partition outside 0..Partitions-1 (or a
// negative one when Partitions is 0).
func (s *Store) checkPartition(p int) error {
	if p < 0 || (s.Partitions > 0 && p >= s.Partitions) {
		return fmt.Errorf("replicatest: tree: bad partition %d", p)
	}
	return nil
}

// TreeHashes returns the hashes of the named nodes of partition's tree at
// level (every node of the level when nodes is empty), as storage does.
func (s *Store) TreeHashes(partition, level int, nodes []uint32) ([]uint64, error) {
	if err := s.checkPartition(partition); err != nil {
		return nil, err
	}
	if level < 0 || level >= replica.TreeLevels {
		return nil, fmt.Errorf("replicatest: tree: bad level %d", level)
	}
	width := 1
	for range level {
		width *= replica.TreeFanout
	}
	s.mu.Lock()
	leaves := *s.enableTree().leavesOf(partition)
	s.mu.Unlock()
	// Fold the leaves up to level: a node is the XOR of its children.
	span := replica.TreeLeaves / width
	all := make([]uint64, width)
	for i, h := range leaves {
		all[i/span] ^= h
	}
	if len(nodes) == 0 {
		return all, nil
	}
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		if int(n) >= width {
			return nil, fmt.Errorf("replicatest: tree: node %d out of range at level %d", n, level)
		}
		out[i] = all[n]
	}
	return out, nil
}

func (t *tree) leavesOf(p int) *[replica.TreeLeaves]uint64 {
	if l := t.leaves[p]; l != nil {
		return l
	}
	return &[replica.TreeLeaves]uint64{}
}

// LeafKeys returns partition's keys in leaves, sorted, with digests and
// Tombstone flags: at most maxKeys, more telling that some were left
// out.
func (s *Store) LeafKeys(partition int, leaves []uint32, maxKeys int) ([]replica.KeyDigest, bool, error) {
	return s.LeafKeysAfter(partition, leaves, nil, maxKeys)
}

// LeafKeysAfter is LeafKeys for the keys after after
// (replica.TreePager).
func (s *Store) LeafKeysAfter(partition int, leaves []uint32, after []byte, maxKeys int) ([]replica.KeyDigest, bool, error) {
	if err := s.checkPartition(partition); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.enableTree()
	var names []string
	for _, l := range leaves {
		if l >= replica.TreeLeaves {
			return nil, false, fmt.Errorf("replicatest: tree: leaf %d out of range", l)
		}
		for k := range t.keys[partition][l] {
			if len(after) == 0 || k > string(after) {
				names = append(names, k)
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	more := false
	if len(names) > maxKeys {
		names, more = names[:max(maxKeys, 0)], true
	}
	out := make([]replica.KeyDigest, len(names))
	for i, k := range names {
		set := s.data[k]
		out[i] = replica.KeyDigest{Key: []byte(k), Digest: Digest([]byte(k), set), Tombstone: tombstoneOnly(set)}
	}
	return out, more, nil
}

// tombstoneOnly reports whether every version of set is a tombstone.
func tombstoneOnly(set vclock.Siblings) bool {
	for i := range set {
		if !set[i].Tombstone {
			return false
		}
	}
	return len(set) > 0
}

// MarkSynced keeps the latest time anti-entropy saw partition in sync, and
// records every call for tests (Marks).
func (s *Store) MarkSynced(partition int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.enableTree()
	t.marks[partition] = append(t.marks[partition], at)
	if at.After(t.synced[partition]) {
		t.synced[partition] = at
	}
}

// Marks returns the times MarkSynced was called with for partition, in
// call order.
func (s *Store) Marks(partition int) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.enableTree().marks[partition])
}

// SetReceived sets the receipt time of key (which must be held), as if
// its set had last changed at at; tests use it to age tombstones.
func (s *Store) SetReceived(key []byte, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.enableTree()
	if _, ok := s.data[string(key)]; ok {
		t.recv[string(key)] = at.UnixNano()
	}
}

// Keys returns the keys held in partition, sorted.
func (s *Store) Keys(partition int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for k := range s.data {
		if s.partition([]byte(k)) == partition {
			out = append(out, []byte(k))
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

// CountingStore is a Store that numbers the dots its coordinator mints
// from one counter across keys (replica.CounterReserver), as the real
// engine does.
type CountingStore struct {
	*Store
	mu       sync.Mutex // guards last and reserved
	last     uint64
	reserved int
}

var _ replica.CounterReserver = (*CountingStore)(nil)

// NewCountingStore returns an empty CountingStore minting as incarnation.
func NewCountingStore(incarnation string) *CountingStore {
	return &CountingStore{Store: NewStore(incarnation)}
}

// ReserveCounter returns max(atLeast, last+1) and remembers it.
func (c *CountingStore) ReserveCounter(atLeast uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(atLeast, c.last+1)
	c.reserved++
	return c.last
}

// Counter returns the highest counter reserved.
func (c *CountingStore) Counter() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Reserved is how many counters were reserved.
func (c *CountingStore) Reserved() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reserved
}
