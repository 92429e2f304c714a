package ring

import (
	"strings"
	"testing"
)

// TestZoneWarnings: the inspection warns about the spreads that make a
// node hold a full copy (the report's two examples: nine unzoned nodes
// and one zoned, and zones of 3, 3 and 1 nodes) and about a zone over
// ceil(N/zones), and says nothing about even zones or a ring without any.
func TestZoneWarnings(t *testing.T) {
	cfg := Config{Partitions: 31, ReplicationFactor: 3, Load: 1.25, VirtualNodes: 20}
	ten := names("n", 10)
	sevenZones := map[string]string{}
	for i, n := range ten[:7] {
		sevenZones[n] = []string{"z1", "z1", "z1", "z2", "z2", "z2", "z3"}[i]
	}
	for _, tt := range []struct {
		name    string
		members []string
		n       int
		zones   map[string]string
		want    []string // substrings, one per warning, in order
	}{
		{"no zones", ten, 3, nil, nil},
		{"three even zones", names("n", 9), 3, zoneMap(names("n", 9), 3), nil},
		{"nine unzoned, one zoned", ten, 3, map[string]string{"n10": "z1"},
			[]string{"9 of 10 members have no zone", "node n10 (zone z1) is a replica of every partition"}},
		{"zones of 3, 3 and 1", ten[:7], 3, sevenZones,
			[]string{"node n7 (zone z3) is a replica of every partition"}},
		{"N=5 over 4+1", ten[:5], 5, map[string]string{"n1": "z1", "n2": "z1", "n3": "z1", "n4": "z1", "n5": "z2"},
			[]string{"zone z1 holds more than 3 replica(s)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.ReplicationFactor = tt.n
			r, err := NewZoned(c, tt.members, tt.zones)
			if err != nil {
				t.Fatal(err)
			}
			got := r.Inspect(nil).Warnings
			if len(got) != len(tt.want) {
				t.Fatalf("warnings %q, want %d matching %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
