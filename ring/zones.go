package ring

import (
	"fmt"
	"maps"
	"slices"
	"unicode"
	"unicode/utf8"
)

// This file holds zone-aware placement. A zone is a failure domain (a
// rack, a data centre, a cloud availability zone) that a member declares;
// a ring whose members have zones spreads each partition's replicas over
// as many zones as it can, so that losing every node of one zone loses at
// most ceil(N/zones) replicas of any partition (Cassandra's
// NetworkTopologyStrategy, Voldemort's zones).
//
// The walk order of a partition (see New) is kept as the basis: the
// replicas are taken from it in rounds. Round 1 takes, in walk order, the
// first node of every zone not used yet; round k takes nodes of zones that
// hold fewer than k replicas; rounds repeat until N replicas are chosen.
// With at least N zones this gives N distinct zones; with fewer, no zone
// holds more than ceil(N/zones) replicas as long as every zone has enough
// nodes. The owner (the walk's first node) stays first. The fallbacks
// are the remaining members in walk order. Without zones (every member in
// the unnamed zone "") the rounds take the walk order unchanged, so a ring
// without zones is exactly New's.

// MaxZoneBytes bounds a zone name.
const MaxZoneBytes = 64

// ValidZone checks a zone name: "" (no zone), or at most MaxZoneBytes bytes
// of valid UTF-8 with no spaces, slashes or control characters (zones are
// printed in tables and logs, and travel in gossip next to node names).
func ValidZone(zone string) error {
	if len(zone) > MaxZoneBytes {
		return fmt.Errorf("%w: %q... is %d bytes, at most %d", ErrZone, zone[:16], len(zone), MaxZoneBytes)
	}
	if !utf8.ValidString(zone) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrZone, zone)
	}
	for _, c := range zone {
		if c == '/' || c == '\\' || unicode.IsSpace(c) || unicode.IsControl(c) {
			return fmt.Errorf("%w: %q contains %q", ErrZone, zone, c)
		}
	}
	return nil
}

// NewZoned builds the ring of members spread over zones: zones maps a
// member's name to its zone. A member missing from zones, or mapped to "",
// is in the unnamed zone "", which counts as one more zone when other
// members have one. Names in zones that are not members are ignored, so a
// caller may pass one map for several rings. When no member has a zone the
// ring is identical to New's (same tables, same Fingerprint).
func NewZoned(cfg Config, members []string, zones map[string]string) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sorted, err := checkMembers(cfg, members)
	if err != nil {
		return nil, err
	}
	r := &Ring{cfg: cfg, members: sorted, m: len(sorted), n: min(cfg.ReplicationFactor, len(sorted))}
	if r.zones, err = memberZones(sorted, zones); err != nil {
		return nil, err
	}
	if r.m == 0 {
		r.fingerprint = fingerprint(cfg, nil, nil, nil)
		return r, nil
	}
	if err := checkCollisions(cfg, sorted); err != nil {
		return nil, err
	}
	r.owners, err = assignOwners(cfg, sorted)
	if err != nil {
		return nil, err
	}
	r.walk = buildWalk(sorted, r.owners)
	if r.zones != nil {
		spreadZones(r.walk, r.m, r.n, sorted, r.zones)
	}
	r.fingerprint = fingerprint(cfg, sorted, r.owners, r.zones)
	return r, nil
}

// memberZones returns the zone of each sorted member, or nil when none has
// a zone.
func memberZones(sorted []string, zones map[string]string) ([]string, error) {
	var out []string
	for i, name := range sorted {
		z := zones[name]
		if z == "" {
			continue
		}
		if err := ValidZone(z); err != nil {
			return nil, fmt.Errorf("node %q: %w", name, err)
		}
		if out == nil {
			out = make([]string, len(sorted))
		}
		out[i] = z
	}
	return out, nil
}

// spreadZones reorders every partition's row of walk (m members, the first
// n of them the replicas) so that the replicas span the zones, in the
// rounds described at the top of this file.
func spreadZones(walk []string, m, n int, members, zones []string) {
	// Zone numbers per member name, so the loop below compares ints.
	ids := map[string]int{}
	zoneOf := make(map[string]int, m)
	for i, name := range members {
		id, ok := ids[zones[i]]
		if !ok {
			id = len(ids)
			ids[zones[i]] = id
		}
		zoneOf[name] = id
	}
	counts := make([]int, len(ids))
	picked := make([]bool, m)
	out := make([]string, 0, m)
	for at := 0; at < len(walk); at += m {
		row := walk[at : at+m]
		out = out[:0]
		clear(counts)
		clear(picked)
		for round := 1; len(out) < n; round++ {
			for i, name := range row {
				if len(out) == n {
					break
				}
				if z := zoneOf[name]; !picked[i] && counts[z] < round {
					picked[i] = true
					counts[z]++
					out = append(out, name)
				}
			}
		}
		for i, name := range row {
			if !picked[i] {
				out = append(out, name)
			}
		}
		copy(row, out)
	}
}

// Zoned reports whether any member has a zone.
func (r *Ring) Zoned() bool { return r.zones != nil }

// Zone returns node's zone: "" when it has none or is not a member.
func (r *Ring) Zone(node string) string {
	i, ok := slices.BinarySearch(r.members, node)
	if !ok || r.zones == nil {
		return ""
	}
	return r.zones[i]
}

// ZoneMap returns a new map of every member with a zone to its zone; nil
// when no member has one.
func (r *Ring) ZoneMap() map[string]string {
	if r.zones == nil {
		return nil
	}
	out := make(map[string]string, r.m)
	for i, name := range r.members {
		if r.zones[i] != "" {
			out[name] = r.zones[i]
		}
	}
	return out
}

// Zones returns the distinct zones of the members, sorted ("" first when
// some member has none); nil when no member has a zone.
func (r *Ring) Zones() []string {
	if r.zones == nil {
		return nil
	}
	out := slices.Clone(r.zones)
	slices.Sort(out)
	return slices.Compact(out)
}

// ZoneLimit returns ceil(replicas / zones): the most replicas of one
// partition a zone should hold. It equals ReplicaCount on a ring without
// zones (one zone holds everything).
func (r *Ring) ZoneLimit() int {
	z := max(len(r.Zones()), 1)
	return (r.n + z - 1) / z
}

// WithZone returns a new ring with node, in zone, added to the members.
func (r *Ring) WithZone(node, zone string) (*Ring, error) {
	if r.Contains(node) {
		return nil, duplicateNode(node)
	}
	zones := r.ZoneMap()
	if zone != "" {
		zones = maps.Clone(zones)
		if zones == nil {
			zones = map[string]string{}
		}
		zones[node] = zone
	}
	return NewZoned(r.cfg, append(slices.Clone(r.members), node), zones)
}

// Zoned reports whether any member of the serving or target ring has a
// zone.
func (t *Transition) Zoned() bool { return t.cur.Zoned() || t.tgt.Zoned() }

// Zone returns node's zone in the plan: "" when it has none or is in
// neither ring. It does not allocate.
func (t *Transition) Zone(node string) string {
	if z := t.cur.Zone(node); z != "" {
		return z
	}
	return t.tgt.Zone(node)
}
