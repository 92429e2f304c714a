package replicatest

import (
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/ringkv/ringkv/replica"
)

// Placement is a simple replica.Placement: partition p's preference list
// is the first N of the sorted member list rotated by p, and its fallbacks
// are the remaining members in that order. Immutable once built.
type Placement struct {
	parts     int
	replicas  [][]string
	fallbacks [][]string
}

var _ replica.Placement = (*Placement)(nil)

// NewPlacement builds the lists for members (copied and sorted), replication
// factor n and the given number of partitions (at least 1).
func NewPlacement(members []string, n, partitions int) *Placement {
	ms := slices.Sorted(slices.Values(members))
	ms = slices.Compact(ms)
	partitions = max(partitions, 1)
	p := &Placement{parts: partitions, replicas: make([][]string, partitions), fallbacks: make([][]string, partitions)}
	for i := range partitions {
		var rot []string
		for j := range ms {
			rot = append(rot, ms[(i+j)%len(ms)])
		}
		k := min(n, len(rot))
		p.replicas[i] = rot[:k:k]
		p.fallbacks[i] = rot[k:]
	}
	return p
}

// Partition hashes key (FNV-1a) onto a partition.
func (p *Placement) Partition(key []byte) int {
	h := fnv.New32a()
	h.Write(key)
	return int(h.Sum32() % uint32(p.parts))
}

// Replicas returns the partition's preference list (shared).
func (p *Placement) Replicas(partition int) []string { return p.replicas[partition] }

// Fallbacks returns the partition's other members in ring order (shared).
func (p *Placement) Fallbacks(partition int) []string { return p.fallbacks[partition] }

// Pending is empty: this placement has no change in progress.
func (p *Placement) Pending(int) []string { return nil }

// Targets equals Replicas: this placement has no change in progress.
func (p *Placement) Targets(partition int) []string { return p.replicas[partition] }

// Epoch is 0: this placement comes from no plan.
func (p *Placement) Epoch() uint64 { return 0 }

// KeyFor returns a key (prefix plus a number) whose preference list starts
// with first, searching a bounded number of candidates; ok is false if
// none matched (first is not a member).
func (p *Placement) KeyFor(prefix, first string) (key []byte, ok bool) {
	for i := range 10000 {
		k := []byte(prefix + "-" + strconv.Itoa(i))
		if r := p.Replicas(p.Partition(k)); len(r) > 0 && r[0] == first {
			return k, true
		}
	}
	return nil, false
}

// KeyNotOn returns a key whose preference list does not include node.
func (p *Placement) KeyNotOn(prefix, node string) (key []byte, ok bool) {
	for i := range 10000 {
		k := []byte(prefix + "-" + strconv.Itoa(i))
		if !slices.Contains(p.Replicas(p.Partition(k)), node) {
			return k, true
		}
	}
	return nil, false
}
