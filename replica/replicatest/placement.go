package replicatest

import (
	"slices"
	"strconv"

	"github.com/ringkv/ringkv/replica"

	"github.com/ringkv/ringkv/internal/fnv1a"
)

// Placement is a simple replica.Placement: partition p's preference list
// is the first N of the sorted member list rotated by p, and its fallbacks
// are the remaining members in that order. A Placement built by
// NewTransitionPlacement also has a change in progress: its own Targets
// and Pending per partition, and an epoch. Immutable once built.
type Placement struct {
	parts     int
	replicas  [][]string
	fallbacks [][]string
	pending   [][]string
	targets   [][]string
	epoch     uint64
}

var _ replica.Placement = (*Placement)(nil)

// NewPlacement builds the lists for members (copied and sorted), replication
// factor n and the given number of partitions (at least 1). It has no
// change in progress and epoch 0.
func NewPlacement(members []string, n, partitions int) *Placement {
	return NewTransitionPlacement(members, nil, n, partitions, 0)
}

// NewTransitionPlacement builds the placement of a membership change from
// current to target (both copied and sorted) at plan epoch epoch: each
// partition's Replicas are those NewPlacement(current) gives it, its
// Targets those NewPlacement(target) gives it, Pending the targets that are
// not replicas, and Fallbacks the other members of current and target
// together, rotated by the partition as NewPlacement does. A nil target
// builds the stable placement of current at epoch (Targets equal
// Replicas, Pending empty).
func NewTransitionPlacement(current, target []string, n, partitions int, epoch uint64) *Placement {
	cur := slices.Compact(slices.Sorted(slices.Values(current)))
	partitions = max(partitions, 1)
	p := &Placement{
		parts: partitions, epoch: epoch,
		replicas: make([][]string, partitions), fallbacks: make([][]string, partitions),
		pending: make([][]string, partitions), targets: make([][]string, partitions),
	}
	stable := target == nil
	tgt := slices.Compact(slices.Sorted(slices.Values(target)))
	all := slices.Compact(slices.Sorted(slices.Values(slices.Concat(cur, tgt))))
	for i := range partitions {
		p.replicas[i], _ = rotate(cur, i, n)
		if stable {
			p.targets[i] = p.replicas[i]
		} else {
			p.targets[i], _ = rotate(tgt, i, n)
			for _, t := range p.targets[i] {
				if !slices.Contains(p.replicas[i], t) {
					p.pending[i] = append(p.pending[i], t)
				}
			}
		}
		rot, _ := rotate(all, i, len(all))
		for _, m := range rot {
			if !slices.Contains(p.replicas[i], m) && !slices.Contains(p.pending[i], m) {
				p.fallbacks[i] = append(p.fallbacks[i], m)
			}
		}
	}
	return p
}

// rotate returns the first n of ms rotated left by i, and the rest.
func rotate(ms []string, i, n int) (first, rest []string) {
	var rot []string
	for j := range ms {
		rot = append(rot, ms[(i+j)%len(ms)])
	}
	k := min(n, len(rot))
	return rot[:k:k], rot[k:]
}

// Partition hashes key (32-bit FNV-1a) onto a partition. It allocates
// nothing, as the real ring's lookup, so that benchmarks through this
// placement measure the coordinator rather than the fake.
func (p *Placement) Partition(key []byte) int {
	return int(fnv1a.Sum32(key) % uint32(p.parts))
}

// Replicas returns the partition's preference list (shared).
func (p *Placement) Replicas(partition int) []string { return p.replicas[partition] }

// Fallbacks returns the partition's other members in ring order (shared).
func (p *Placement) Fallbacks(partition int) []string { return p.fallbacks[partition] }

// Pending returns the partition's targets that are not replicas (shared);
// empty without a change in progress.
func (p *Placement) Pending(partition int) []string { return p.pending[partition] }

// Targets returns the partition's preference list after the change
// (shared); equal to Replicas without a change in progress.
func (p *Placement) Targets(partition int) []string { return p.targets[partition] }

// Epoch is the plan epoch given to NewTransitionPlacement (0 from
// NewPlacement).
func (p *Placement) Epoch() uint64 { return p.epoch }

// KeyFor returns a key (prefix plus a number) whose preference list starts
// with first, searching a bounded number of candidates; ok is false if
// none matched (first is not a member).
func (p *Placement) KeyFor(prefix, first string) (key []byte, ok bool) {
	return p.KeyWhere(prefix, func(part int) bool {
		r := p.Replicas(part)
		return len(r) > 0 && r[0] == first
	})
}

// KeyNotOn returns a key whose preference list does not include node.
func (p *Placement) KeyNotOn(prefix, node string) (key []byte, ok bool) {
	return p.KeyWhere(prefix, func(part int) bool { return !slices.Contains(p.Replicas(part), node) })
}

// KeyWhere returns a key (prefix plus a number) whose partition satisfies
// match, searching a bounded number of candidates; ok is false if none
// did.
func (p *Placement) KeyWhere(prefix string, match func(partition int) bool) (key []byte, ok bool) {
	for i := range 10000 {
		k := []byte(prefix + "-" + strconv.Itoa(i))
		if match(p.Partition(k)) {
			return k, true
		}
	}
	return nil, false
}
