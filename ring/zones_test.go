package ring

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// zoneMap puts names round-robin into zones z1..zk: names[i] in z(i%k+1).
func zoneMap(members []string, k int) map[string]string {
	out := map[string]string{}
	for i, name := range members {
		out[name] = fmt.Sprintf("z%d", i%k+1)
	}
	return out
}

func mustZoned(t tb, cfg Config, members []string, zones map[string]string) *Ring {
	t.Helper()
	r, err := NewZoned(cfg, members, zones)
	if err != nil {
		t.Fatalf("NewZoned(%v, %v): %v", members, zones, err)
	}
	return r
}

// perZone counts partition p's replicas by zone.
func perZone(r *Ring, p int) map[string]int {
	out := map[string]int{}
	for _, name := range r.Replicas(p) {
		out[r.Zone(name)]++
	}
	return out
}

func TestZonedWithoutZonesIsNew(t *testing.T) {
	cfg := smallConfig()
	members := names("n", 7)
	want := mustNew(t, cfg, members)
	for name, zones := range map[string]map[string]string{
		"nil":         nil,
		"all empty":   {"n1": "", "n2": ""},
		"non-members": {"x": "z1", "y": "z2"},
	} {
		t.Run(name, func(t *testing.T) {
			got := mustZoned(t, cfg, members, zones)
			if !got.Equal(want) || got.Fingerprint() != want.Fingerprint() || got.Zoned() {
				t.Fatalf("ring differs from New's (zoned %v)", got.Zoned())
			}
			if !slices.Equal(got.walk, want.walk) {
				t.Fatal("walk tables differ from New's")
			}
		})
	}
}

func TestZonedDistinctZones(t *testing.T) {
	cfg := DefaultConfig()
	members := names("n", 9)
	tests := []struct {
		name  string
		zones map[string]string
	}{
		{"3 zones of 3", zoneMap(members, 3)},
		{"4 uneven zones", map[string]string{"n1": "a", "n2": "a", "n3": "a", "n4": "a", "n5": "a", "n6": "b", "n7": "c", "n8": "d", "n9": "d"}},
		{"one node without zone", map[string]string{"n1": "a", "n2": "a", "n3": "b", "n4": "b", "n5": "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustZoned(t, cfg, members, tt.zones)
			plain := mustNew(t, cfg, members)
			for p := range cfg.Partitions {
				if z := perZone(r, p); len(z) != 3 {
					t.Fatalf("partition %d: replicas %v span zones %v, want 3 distinct", p, r.Replicas(p), z)
				}
				if r.Owner(p) != plain.Owner(p) || r.Replicas(p)[0] != plain.Owner(p) {
					t.Fatalf("partition %d: owner %s, first replica %s, want %s", p, r.Owner(p), r.Replicas(p)[0], plain.Owner(p))
				}
			}
			in := r.Inspect(nil)
			if in.ZoneLimit != 1 {
				t.Fatalf("zone limit %d, want 1", in.ZoneLimit)
			}
			for _, zi := range in.Zones {
				if zi.OverLimit != 0 || zi.MaxReplicas != 1 {
					t.Fatalf("zone %+v: want at most one replica per partition", zi)
				}
			}
		})
	}
}

func TestZonedCeilRule(t *testing.T) {
	tests := []struct {
		name      string
		n, nodes  int
		zones     map[string]string
		limit     int
		overZone  string // zone holding more than limit of every partition; "" for none
		overCount int
	}{
		{name: "N=3 two zones", n: 3, nodes: 6, limit: 2},
		{name: "N=5 two zones", n: 5, nodes: 8, limit: 3},
		{name: "N=5 three zones", n: 5, nodes: 9, limit: 2},
		{name: "N=5 zone b too small", n: 5, nodes: 5,
			zones: map[string]string{"n1": "a", "n2": "a", "n3": "a", "n4": "a", "n5": "b"},
			limit: 3, overZone: "a", overCount: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallConfig()
			cfg.ReplicationFactor = tt.n
			members := names("n", tt.nodes)
			zones := tt.zones
			if zones == nil {
				zones = zoneMap(members, (tt.n+tt.limit-1)/tt.limit)
			}
			r := mustZoned(t, cfg, members, zones)
			if r.ZoneLimit() != tt.limit {
				t.Fatalf("ZoneLimit %d, want %d", r.ZoneLimit(), tt.limit)
			}
			for _, zi := range r.Inspect(nil).Zones {
				over := 0
				if zi.Zone == tt.overZone {
					over = cfg.Partitions
				}
				if zi.OverLimit != over {
					t.Fatalf("zone %+v: %d partitions over the limit, want %d", zi, zi.OverLimit, over)
				}
				if zi.Zone == tt.overZone && zi.MaxReplicas != tt.overCount {
					t.Fatalf("zone %+v: max replicas %d, want %d", zi, zi.MaxReplicas, tt.overCount)
				}
			}
		})
	}
}

// TestZonedProperties checks, over random clusters, what the zone rounds
// promise: every row is a permutation of the members, the owner leads,
// the replicas span min(N, zones) zones, no zone exceeds ceil(N/zones)
// when every zone has that many nodes, and the member order and zone map
// order do not matter.
func TestZonedProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		seed := rapid.Uint64().Draw(rt, "seed")
		cfg := Config{Partitions: 31, ReplicationFactor: rapid.IntRange(1, 5).Draw(rt, "n"), Load: 1.25, VirtualNodes: 20}
		m := rapid.IntRange(1, 12).Draw(rt, "members")
		k := rapid.IntRange(1, 5).Draw(rt, "zones")
		members := names("m", m)
		zones := map[string]string{}
		for _, name := range members {
			zones[name] = fmt.Sprintf("z%d", rapid.IntRange(1, k).Draw(rt, "zone of "+name))
		}
		r := mustZoned(rt, cfg, members, zones)
		shuffled := slices.Clone(members)
		rand.New(rand.NewPCG(seed, 0)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if !mustZoned(rt, cfg, shuffled, zones).Equal(r) {
			rt.Fatalf("member order changed the ring")
		}
		plain := mustZoned(rt, cfg, members, nil)
		used := len(r.Zones())
		sizes := map[string]int{}
		for _, z := range zones {
			sizes[z]++
		}
		smallest := m
		for _, c := range sizes {
			smallest = min(smallest, c)
		}
		for p := range cfg.Partitions {
			row := slices.Concat(r.Replicas(p), r.Fallbacks(p))
			slices.Sort(row)
			if !slices.Equal(row, sortedCopy(members)) {
				rt.Fatalf("partition %d: row %v is not a permutation of %v", p, row, members)
			}
			if r.Replicas(p)[0] != plain.Owner(p) {
				rt.Fatalf("partition %d: first replica %s, owner %s", p, r.Replicas(p)[0], plain.Owner(p))
			}
			pz := perZone(r, p)
			if len(pz) != min(r.ReplicaCount(), used) {
				rt.Fatalf("partition %d: replicas span %d zones, want %d", p, len(pz), min(r.ReplicaCount(), used))
			}
			for z, c := range pz {
				if smallest >= r.ZoneLimit() && c > r.ZoneLimit() {
					rt.Fatalf("partition %d: zone %s holds %d replicas, limit %d", p, z, c, r.ZoneLimit())
				}
			}
		}
	})
}

func TestValidZone(t *testing.T) {
	for _, z := range []string{"", "eu-west-1a", "rack_7", "zone.b", "ζώνη"} {
		if err := ValidZone(z); err != nil {
			t.Errorf("ValidZone(%q) = %v", z, err)
		}
	}
	for _, z := range []string{"a b", "a/b", "a\\b", "a\tb", "x\x00", strings.Repeat("z", MaxZoneBytes+1), "\xff"} {
		if err := ValidZone(z); !errors.Is(err, ErrZone) {
			t.Errorf("ValidZone(%q) = %v, want ErrZone", z, err)
		}
	}
	if _, err := NewZoned(smallConfig(), []string{"a", "b"}, map[string]string{"a": "bad zone"}); !errors.Is(err, ErrZone) {
		t.Fatalf("NewZoned with a bad zone: %v, want ErrZone", err)
	}
}

func TestZonedWithWithout(t *testing.T) {
	cfg := smallConfig()
	members := names("n", 6)
	r := mustZoned(t, cfg, members, zoneMap(members, 3))
	added, err := r.WithZone("n7", "z2")
	if err != nil {
		t.Fatal(err)
	}
	zones := zoneMap(members, 3)
	zones["n7"] = "z2"
	if want := mustZoned(t, cfg, append(slices.Clone(members), "n7"), zones); !added.Equal(want) {
		t.Fatal("WithZone differs from NewZoned of the same members")
	}
	removed, err := added.Without("n7")
	if err != nil {
		t.Fatal(err)
	}
	if !removed.Equal(r) {
		t.Fatal("Without did not give back the zoned ring")
	}
	w, err := r.WhatIfAddZone("n7", "z2")
	if err != nil {
		t.Fatal(err)
	}
	if w.Zone != "z2" || w.MovedSlots == 0 {
		t.Fatalf("what-if %+v", w)
	}
	for p := range cfg.Partitions {
		if z := perZone(added, p); len(z) != 3 {
			t.Fatalf("partition %d after the add: zones %v, want 3 distinct", p, z)
		}
	}
}
