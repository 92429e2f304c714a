package ring

import (
	"fmt"
	"slices"
)

// This file holds the capacity-planning view of one ring: plain structs
// that the node copies into the admin API's own types (package client).

// Inspection describes how a ring spreads the key space over its members.
type Inspection struct {
	// Partitions, ReplicationFactor, Load and VirtualNodes echo the Config.
	Partitions        int     `json:"partitions"`
	ReplicationFactor int     `json:"replication_factor"`
	Load              float64 `json:"load"`
	VirtualNodes      int     `json:"virtual_nodes"`
	// Replicas is the number of replicas each partition actually has,
	// min(ReplicationFactor, members).
	Replicas int `json:"replicas"`
	// Degraded is true when there are fewer members than ReplicationFactor.
	Degraded bool `json:"degraded"`
	// Fingerprint is Ring.Fingerprint in hex, equal on nodes that agree.
	Fingerprint string `json:"fingerprint"`
	// Nodes has one entry per member, sorted by name.
	Nodes []NodeInspection `json:"nodes"`
	// ZoneLimit is Ring.ZoneLimit, ceil(Replicas / zones), when some
	// member has a zone; 0 otherwise.
	ZoneLimit int `json:"zone_limit,omitempty"`
	// Zones has one entry per zone, sorted by name, when some member has a
	// zone; absent otherwise.
	Zones []ZoneInspection `json:"zones,omitempty"`
	// Warnings explains, one sentence each, how the zones spread replicas
	// unevenly (see zoneWarnings); absent when they do not.
	Warnings []string `json:"warnings,omitempty"`
}

// ZoneInspection describes how many replicas one zone holds.
type ZoneInspection struct {
	// Zone is the zone name; "" for the members that declare none.
	Zone string `json:"zone"`
	// Nodes is the number of members in the zone.
	Nodes int `json:"nodes"`
	// Replicated is the number of replica slots (partition, member) the
	// zone's members hold.
	Replicated int `json:"partitions_replicated"`
	// ReplicaShare is Replicated / (Partitions x Replicas).
	ReplicaShare float64 `json:"replica_share"`
	// MaxReplicas is the most replicas of one partition the zone holds:
	// losing the whole zone loses that many copies of some partition.
	MaxReplicas int `json:"max_replicas"`
	// OverLimit counts the partitions of which the zone holds more than
	// ZoneLimit replicas; 0 when placement spreads every partition evenly.
	OverLimit int `json:"partitions_over_limit"`
}

// NodeInspection describes one member's part of the ring.
type NodeInspection struct {
	// Node is the member name.
	Node string `json:"node"`
	// Owned is the number of partitions the node owns (heads the
	// preference list of).
	Owned int `json:"partitions_owned"`
	// Replicated is the number of partitions whose preference list includes
	// the node, owned ones included: what it stores.
	Replicated int `json:"partitions_replicated"`
	// KeySpaceShare is Owned / Partitions: the fraction of keys for which
	// the node is the first replica.
	KeySpaceShare float64 `json:"key_space_share"`
	// ReplicaShare is Replicated / (Partitions x Replicas): the node's
	// fraction of all stored replicas. Shares sum to 1 over the nodes.
	ReplicaShare float64 `json:"replica_share"`
	// HasStats is true when the stats callback knew the node; Keys and
	// Bytes are meaningful only then.
	HasStats bool `json:"has_stats"`
	// Zone is the member's zone; "" (absent in JSON) when it has none.
	Zone string `json:"zone,omitempty"`
	// Keys is the number of keys the node reports holding.
	Keys int64 `json:"keys"`
	// Bytes is the number of bytes the node reports holding.
	Bytes int64 `json:"bytes"`
}

// Inspect returns per-node ownership and replica counts. stats, when not
// nil, is asked once per member for the keys and bytes it holds; ok=false
// means unknown (for example a node that is down).
func (r *Ring) Inspect(stats func(node string) (keys, bytes int64, ok bool)) Inspection {
	in := Inspection{
		Partitions:        r.cfg.Partitions,
		ReplicationFactor: r.cfg.ReplicationFactor,
		Load:              r.cfg.Load,
		VirtualNodes:      r.cfg.VirtualNodes,
		Replicas:          r.n,
		Degraded:          r.Degraded(),
		Fingerprint:       fmt.Sprintf("%016x", r.fingerprint),
		Nodes:             make([]NodeInspection, r.m),
	}
	owned, replicated := r.counts()
	for i, name := range r.members {
		ni := NodeInspection{
			Node:          name,
			Owned:         owned[i],
			Replicated:    replicated[i],
			KeySpaceShare: float64(owned[i]) / float64(r.cfg.Partitions),
			ReplicaShare:  float64(replicated[i]) / float64(r.cfg.Partitions*r.n),
		}
		if stats != nil {
			ni.Keys, ni.Bytes, ni.HasStats = stats(name)
		}
		if r.zones != nil {
			ni.Zone = r.zones[i]
		}
		in.Nodes[i] = ni
	}
	if r.zones != nil {
		in.ZoneLimit = r.ZoneLimit()
		in.Zones = r.inspectZones(replicated)
		in.Warnings = zoneWarnings(in)
	}
	return in
}

// inspectZones sums replicated (per member) by zone and finds, for each
// zone, its most replicas of one partition and the partitions over the
// limit.
func (r *Ring) inspectZones(replicated []int) []ZoneInspection {
	names := r.Zones()
	out := make([]ZoneInspection, len(names))
	idx := make([]int, r.m) // zone index of each member
	for i, z := range r.zones {
		idx[i], _ = slices.BinarySearch(names, z)
		out[idx[i]].Nodes++
		out[idx[i]].Replicated += replicated[i]
	}
	limit := r.ZoneLimit()
	per := make([]int, len(names))
	for p := 0; p < r.cfg.Partitions; p++ {
		clear(per)
		for _, name := range r.Replicas(p) {
			i, _ := slices.BinarySearch(r.members, name)
			per[idx[i]]++
		}
		for z, c := range per {
			out[z].MaxReplicas = max(out[z].MaxReplicas, c)
			if c > limit {
				out[z].OverLimit++
			}
		}
	}
	for z := range out {
		out[z].Zone = names[z]
		out[z].ReplicaShare = float64(out[z].Replicated) / float64(r.cfg.Partitions*r.n)
	}
	return out
}

// counts returns, per member index, the partitions owned and replicated.
func (r *Ring) counts() (owned, replicated []int) {
	owned, replicated = make([]int, r.m), make([]int, r.m)
	for _, o := range r.owners {
		owned[o]++
	}
	for p := 0; p < r.cfg.Partitions && r.m > 0; p++ {
		for _, name := range r.Replicas(p) {
			i, _ := slices.BinarySearch(r.members, name)
			replicated[i]++
		}
	}
	return owned, replicated
}

// KeyPlacement is where one key lives: the answer to `ring --key`.
type KeyPlacement struct {
	// Partition is the key's partition.
	Partition int `json:"partition"`
	// Replicas is the preference list, owner first.
	Replicas []string `json:"replicas"`
	// Fallbacks are the hinted-handoff stand-ins, in the order they are used.
	Fallbacks []string `json:"fallbacks"`
	// ReplicaZones holds the zone of each replica, in Replicas' order,
	// when some member has a zone; absent otherwise.
	ReplicaZones []string `json:"replica_zones,omitempty"`
}

// Preference returns the placement of key. Its slices are fresh copies the
// caller may keep or modify.
func (r *Ring) Preference(key []byte) KeyPlacement {
	p := r.Partition(key)
	kp := KeyPlacement{
		Partition: p,
		Replicas:  nonNil(slices.Clone(r.Replicas(p))),
		Fallbacks: nonNil(slices.Clone(r.Fallbacks(p))),
	}
	if r.zones != nil {
		for _, name := range kp.Replicas {
			kp.ReplicaZones = append(kp.ReplicaZones, r.Zone(name))
		}
	}
	return kp
}

// nonNil makes empty lists print as [] rather than null in JSON.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
