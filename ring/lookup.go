package ring

import (
	"slices"
)

// This file holds the request-path lookups. They index tables built by New,
// take no lock and allocate nothing. An out-of-range partition gets the
// empty answer ("" or nil), as does every partition of an empty ring.

// Config returns the ring's configuration.
func (r *Ring) Config() Config { return r.cfg }

// Members returns a sorted copy of the ring's member names.
func (r *Ring) Members() []string { return slices.Clone(r.members) }

// Len returns the number of members.
func (r *Ring) Len() int { return r.m }

// Contains reports whether node is a ring member.
func (r *Ring) Contains(node string) bool {
	_, ok := slices.BinarySearch(r.members, node)
	return ok
}

// Degraded reports whether the ring has fewer members than the replication
// factor, so every partition is served by fewer than N replicas. An empty
// ring is degraded.
func (r *Ring) Degraded() bool { return r.m < r.cfg.ReplicationFactor }

// ReplicaCount returns how many replicas each partition has:
// min(ReplicationFactor, members).
func (r *Ring) ReplicaCount() int { return r.n }

// Partition returns the partition of key: Sum64(key) mod Partitions. It does
// not depend on membership.
func (r *Ring) Partition(key []byte) int {
	return int(Sum64(key) % uint64(r.cfg.Partitions))
}

// Owner returns the member that owns partition, the head of its preference
// list.
func (r *Ring) Owner(partition int) string {
	if !r.valid(partition) {
		return ""
	}
	return r.members[r.owners[partition]]
}

// Replicas returns the preference list of partition: its owner followed by
// the next distinct owners of the following partitions, min(N, members)
// names in all. The slice is shared; do not modify it.
func (r *Ring) Replicas(partition int) []string {
	if !r.valid(partition) {
		return nil
	}
	at := partition * r.m
	return r.walk[at : at+r.n : at+r.n]
}

// Fallbacks returns the members after the preference list in ring-walk
// order: the stand-ins, in order, that hinted handoff uses for replicas
// that are down. Empty when every member is a replica. The slice is shared;
// do not modify it.
func (r *Ring) Fallbacks(partition int) []string {
	if !r.valid(partition) {
		return nil
	}
	at, end := partition*r.m+r.n, (partition+1)*r.m
	return r.walk[at:end:end]
}

// Lookup returns the partition of key and its preference list (shared; do
// not modify).
func (r *Ring) Lookup(key []byte) (partition int, replicas []string) {
	partition = r.Partition(key)
	return partition, r.Replicas(partition)
}

// IsReplica reports whether node is in partition's preference list.
func (r *Ring) IsReplica(partition int, node string) bool {
	return slices.Contains(r.Replicas(partition), node)
}

// PartitionsOf returns, in ascending order, the partitions whose preference
// list includes node: what node should hold. It allocates a new slice.
func (r *Ring) PartitionsOf(node string) []int {
	var out []int
	for p := 0; p < r.cfg.Partitions; p++ {
		if r.IsReplica(p, node) {
			out = append(out, p)
		}
	}
	return out
}

// Equal reports whether r and o have the same config, members, zones and
// partition tables. Nil rings are equal only to each other.
func (r *Ring) Equal(o *Ring) bool {
	if r == nil || o == nil {
		return r == o
	}
	return r.fingerprint == o.fingerprint && r.cfg == o.cfg &&
		slices.Equal(r.members, o.members) && slices.Equal(r.owners, o.owners) &&
		slices.Equal(r.zones, o.zones)
}

// Fingerprint returns a hash of the ring's config, members, partition
// owners and zones, identical in every process that built the same ring. It is meant
// for logs and for cheap convergence checks between nodes; use Equal for a
// definitive comparison.
func (r *Ring) Fingerprint() uint64 { return r.fingerprint }

// With returns a new ring with node, in no zone, added to the members;
// the other members keep their zones (see WithZone).
func (r *Ring) With(node string) (*Ring, error) { return r.WithZone(node, "") }

// Without returns a new ring with node removed from the members.
func (r *Ring) Without(node string) (*Ring, error) {
	i, ok := slices.BinarySearch(r.members, node)
	if !ok {
		return nil, unknownNode(node)
	}
	return NewZoned(r.cfg, slices.Delete(slices.Clone(r.members), i, i+1), r.ZoneMap())
}

func (r *Ring) valid(partition int) bool {
	return r.m > 0 && partition >= 0 && partition < r.cfg.Partitions
}
