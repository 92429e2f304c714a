package node

import (
	"fmt"
	"slices"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/ring"
)

// The admin API answers with the client package's types, not the ring
// package's: the ring may change its structs, and the JSON stays. These
// functions copy one into the other, field by field.

// ringBody is the answer of GET /v1/ring: r's inspection with the keys and
// bytes from stats, the plan (nil outside a change) and each node's
// transfer progress.
func ringBody(r *ring.Ring, plan *ring.Plan, stats map[string]client.NodeStats) client.Ring {
	in := r.Inspect(func(node string) (int64, int64, bool) {
		s, ok := stats[node]
		return s.Keys, s.Bytes, ok
	})
	out := client.Ring{
		Partitions: in.Partitions, ReplicationFactor: in.ReplicationFactor, Load: in.Load,
		VirtualNodes: in.VirtualNodes, Replicas: in.Replicas, Degraded: in.Degraded,
		Fingerprint: in.Fingerprint, Nodes: make([]client.RingNode, len(in.Nodes)),
		ZoneLimit: in.ZoneLimit, Warnings: in.Warnings, Transfers: map[string]client.Transfer{}, AAE: map[string]client.AAETotals{},
	}
	for i, n := range in.Nodes {
		out.Nodes[i] = client.RingNode{Node: n.Node, Owned: n.Owned, Replicated: n.Replicated,
			KeySpaceShare: n.KeySpaceShare, ReplicaShare: n.ReplicaShare,
			HasStats: n.HasStats, Zone: n.Zone, Keys: n.Keys, Bytes: n.Bytes}
	}
	if in.Zones != nil {
		out.Zones = make([]client.RingZone, len(in.Zones))
	}
	for i, z := range in.Zones {
		out.Zones[i] = client.RingZone{Zone: z.Zone, Nodes: z.Nodes, Replicated: z.Replicated,
			ReplicaShare: z.ReplicaShare, MaxReplicas: z.MaxReplicas, OverLimit: z.OverLimit}
	}
	if plan != nil {
		out.Plan = &client.Plan{Epoch: plan.Epoch, Version: plan.Version, Members: plan.Members, Target: plan.Target}
	}
	for name, st := range stats {
		if st.Transfer != nil {
			out.Transfers[name] = *st.Transfer
		}
		if st.AAE != nil {
			out.AAE[name] = *st.AAE
		}
	}
	return out
}

// placementBody is the answer of GET /v1/ring?key=K.
func placementBody(kp ring.KeyPlacement) client.KeyPlacement {
	return client.KeyPlacement{Partition: kp.Partition, Replicas: kp.Replicas, Fallbacks: kp.Fallbacks,
		ReplicaZones: kp.ReplicaZones}
}

// whatIfBody is the answer of GET /v1/ring?what_if=op:NAME.
func whatIfBody(w ring.WhatIf) client.WhatIf {
	out := client.WhatIf{Op: w.Op, Node: w.Node, Zone: w.Zone, MembersBefore: w.MembersBefore, MembersAfter: w.MembersAfter,
		ChangedPartitions: w.ChangedPartitions, TotalSlots: w.TotalSlots, MovedSlots: w.MovedSlots,
		MovedFraction: w.MovedFraction, OptimalFraction: w.OptimalFraction,
		HasBytes: w.HasBytes, MovedBytes: w.MovedBytes}
	if w.Moves != nil {
		out.Moves = make([]client.PartitionMove, len(w.Moves))
	}
	for i, m := range w.Moves {
		out.Moves[i] = client.PartitionMove{Partition: m.Partition, Before: m.Before, After: m.After,
			Added: m.Added, Dropped: m.Dropped}
	}
	if w.Shares != nil {
		out.Shares = make([]client.ShareChange, len(w.Shares))
	}
	for i, s := range w.Shares {
		out.Shares[i] = client.ShareChange{Node: s.Node, OwnedBefore: s.OwnedBefore, OwnedAfter: s.OwnedAfter,
			ReplicatedBefore: s.ReplicatedBefore, ReplicatedAfter: s.ReplicatedAfter,
			ShareBefore: s.ShareBefore, ShareAfter: s.ShareAfter}
	}
	return out
}

// partitionsBody is the answer of GET /v1/ring/partitions: every
// partition's replicas on r.
func partitionsBody(r *ring.Ring) client.Partitions {
	n := r.Config().Partitions
	out := client.Partitions{Fingerprint: fmt.Sprintf("%016x", r.Fingerprint()), Members: r.Members(), Partitions: make([][]string, n)}
	for p := range n {
		out.Partitions[p] = slices.Clone(r.Replicas(p))
		if out.Partitions[p] == nil {
			out.Partitions[p] = []string{}
		}
	}
	return out
}
