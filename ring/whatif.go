package ring

import (
	"fmt"
	"slices"
)

// This file answers "what would move": the difference between two rings of
// the same config, used for what-if planning before a join or a removal and
// by the movement figures test.

// WhatIf describes what changes between a ring and a candidate ring.
type WhatIf struct {
	// Op is "add", "remove" or "change" (Diff of arbitrary rings).
	Op string `json:"op"`
	// Node is the node added or removed; empty for "change".
	Node string `json:"node,omitempty"`
	// Zone is the added node's zone; empty when it has none.
	Zone string `json:"zone,omitempty"`
	// MembersBefore and MembersAfter count the members of the two rings.
	MembersBefore int `json:"members_before"`
	MembersAfter  int `json:"members_after"`
	// ChangedPartitions lists, ascending, the partitions whose replica set
	// changes (order-only changes of a preference list are not counted).
	ChangedPartitions []int `json:"changed_partitions"`
	// Moves details each changed partition.
	Moves []PartitionMove `json:"moves"`
	// TotalSlots is Partitions x the larger replica count of the two rings.
	TotalSlots int `json:"total_slots"`
	// MovedSlots counts replica slots that gain a new holder, which must
	// receive the partition's data: the sum of len(Added) over Moves.
	MovedSlots int `json:"moved_slots"`
	// MovedFraction is MovedSlots / TotalSlots.
	MovedFraction float64 `json:"moved_fraction"`
	// OptimalFraction is the least MovedFraction any placement could reach
	// with balanced shares: the new node's fair share for an add (1/(n+1)
	// once n+1 >= N), the removed node's slots that survive for a remove.
	OptimalFraction float64 `json:"optimal_fraction"`
	// Shares gives every node of either ring its load before and after,
	// sorted by name.
	Shares []ShareChange `json:"shares"`
	// HasBytes is true once EstimateBytes filled MovedBytes.
	HasBytes bool `json:"has_bytes"`
	// MovedBytes estimates the bytes streamed to new holders.
	MovedBytes int64 `json:"moved_bytes"`
}

// PartitionMove is one partition whose replica set changes.
type PartitionMove struct {
	// Partition is the partition number.
	Partition int `json:"partition"`
	// Before and After are the preference lists of the two rings.
	Before []string `json:"before"`
	After  []string `json:"after"`
	// Added are the new holders that must receive the partition.
	Added []string `json:"added"`
	// Dropped are old holders that may drop it once the new ones confirmed.
	Dropped []string `json:"dropped"`
}

// ShareChange is one node's load in the two rings; a node absent from a
// ring has zeros there.
type ShareChange struct {
	// Node is the member name.
	Node string `json:"node"`
	// OwnedBefore and OwnedAfter count partitions owned.
	OwnedBefore int `json:"owned_before"`
	OwnedAfter  int `json:"owned_after"`
	// ReplicatedBefore and ReplicatedAfter count partitions held as a replica.
	ReplicatedBefore int `json:"replicated_before"`
	ReplicatedAfter  int `json:"replicated_after"`
	// ShareBefore and ShareAfter are the node's fraction of all replicas.
	ShareBefore float64 `json:"share_before"`
	ShareAfter  float64 `json:"share_after"`
}

// WhatIfAdd reports what would change if node joined the ring.
func (r *Ring) WhatIfAdd(node string) (WhatIf, error) { return r.WhatIfAddZone(node, "") }

// WhatIfAddZone is WhatIfAdd for a node in zone ("" for none); the
// members keep their zones.
func (r *Ring) WhatIfAddZone(node, zone string) (WhatIf, error) {
	next, err := r.WithZone(node, zone)
	if err != nil {
		return WhatIf{}, err
	}
	w := diff(r, next)
	w.Op, w.Node, w.Zone = "add", node, zone
	if next.m > 0 {
		w.OptimalFraction = float64(r.cfg.Partitions*next.n) / float64(next.m) / float64(w.TotalSlots)
	}
	return w, nil
}

// WhatIfRemove reports what would change if node left the ring.
func (r *Ring) WhatIfRemove(node string) (WhatIf, error) {
	next, err := r.Without(node)
	if err != nil {
		return WhatIf{}, err
	}
	w := diff(r, next)
	w.Op, w.Node = "remove", node
	// The removed node's fair share of slots must be re-homed, except the
	// slots that vanish because the smaller ring keeps fewer replicas.
	parts := float64(r.cfg.Partitions)
	must := parts*float64(r.n)/float64(r.m) - parts*float64(r.n-next.n)
	w.OptimalFraction = max(0, must) / float64(w.TotalSlots)
	return w, nil
}

// Diff reports what changes from ring from to ring to; both must have the
// same Config. OptimalFraction is left zero.
func Diff(from, to *Ring) (WhatIf, error) {
	if from.cfg != to.cfg {
		return WhatIf{}, fmt.Errorf("%w: %+v vs %+v", ErrIncompatible, from.cfg, to.cfg)
	}
	w := diff(from, to)
	w.Op = "change"
	return w, nil
}

func diff(from, to *Ring) WhatIf {
	w := WhatIf{
		MembersBefore:     from.m,
		MembersAfter:      to.m,
		ChangedPartitions: []int{},
		Moves:             []PartitionMove{},
		TotalSlots:        from.cfg.Partitions * max(from.n, to.n),
	}
	for p := range from.cfg.Partitions {
		before, after := from.Replicas(p), to.Replicas(p)
		added, dropped := setMinus(after, before), setMinus(before, after)
		if len(added) == 0 && len(dropped) == 0 {
			continue
		}
		w.ChangedPartitions = append(w.ChangedPartitions, p)
		w.Moves = append(w.Moves, PartitionMove{
			Partition: p,
			Before:    nonNil(slices.Clone(before)),
			After:     nonNil(slices.Clone(after)),
			Added:     added,
			Dropped:   dropped,
		})
		w.MovedSlots += len(added)
	}
	if w.TotalSlots > 0 {
		w.MovedFraction = float64(w.MovedSlots) / float64(w.TotalSlots)
	}
	w.Shares = shareChanges(from, to)
	return w
}

// setMinus returns the names in a that are not in b (lists are short: N).
func setMinus(a, b []string) []string {
	out := []string{}
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func shareChanges(from, to *Ring) []ShareChange {
	names := slices.Concat(from.members, to.members)
	slices.Sort(names)
	names = slices.Compact(names)
	fo, fr := from.counts()
	to2, tr := to.counts()
	out := make([]ShareChange, len(names))
	for i, name := range names {
		sc := ShareChange{Node: name}
		if j, ok := slices.BinarySearch(from.members, name); ok {
			sc.OwnedBefore, sc.ReplicatedBefore = fo[j], fr[j]
			sc.ShareBefore = float64(fr[j]) / float64(from.cfg.Partitions*from.n)
		}
		if j, ok := slices.BinarySearch(to.members, name); ok {
			sc.OwnedAfter, sc.ReplicatedAfter = to2[j], tr[j]
			sc.ShareAfter = float64(tr[j]) / float64(to.cfg.Partitions*to.n)
		}
		out[i] = sc
	}
	return out
}

// EstimateBytes fills MovedBytes from per-partition sizes: each new holder
// of a partition receives all of it. partitionBytes returns the bytes one
// replica of a partition holds (for example the largest size reported by
// its current replicas).
func (w *WhatIf) EstimateBytes(partitionBytes func(partition int) int64) {
	w.MovedBytes = 0
	for _, mv := range w.Moves {
		w.MovedBytes += int64(len(mv.Added)) * partitionBytes(mv.Partition)
	}
	w.HasBytes = true
}
