package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/ring"
)

func TestMembersZoneColumn(t *testing.T) {
	var out bytes.Buffer
	a := &app{stdout: &out}
	plain := []client.Member{{Name: "n1", Liveness: "alive", Status: "joined"}}
	if err := a.printMembers(plain, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "ZONE") {
		t.Fatalf("a ZONE column without zones:\n%s", out.String())
	}
	out.Reset()
	zoned := []client.Member{{Name: "n2", Zone: "zb", Liveness: "alive", Status: "joined"}, {Name: "n1", Liveness: "alive", Status: "joined"}}
	if err := a.printMembers(zoned, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(strings.Join(strings.Fields(lines[0]), " "), "NAME ZONE LIVENESS") {
		t.Fatalf("want a NAME ZONE header and two rows, got:\n%s", out.String())
	}
	if f := strings.Fields(lines[1]); f[0] != "n1" || f[1] != "-" {
		t.Errorf("n1 has no zone: row %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != "n2" || f[1] != "zb" {
		t.Errorf("n2 row %q", lines[2])
	}
}

// TestRingZonesTable prints a zoned ring's inspection: replicas per zone,
// and the inspection's warnings (a node holding every partition, a zone
// over ceil(N/zones)).
func TestRingZonesTable(t *testing.T) {
	cfg := ring.Config{Partitions: 31, ReplicationFactor: 3, Load: 1.25, VirtualNodes: 20}
	for _, tt := range []struct {
		name  string
		n     int
		zones map[string]string
		warn  string // "": no warning
	}{
		{"N=3 over 3+2", 3, map[string]string{"a": "z1", "b": "z1", "c": "z1", "d": "z2", "e": "z2"}, ""},
		// e, alone in z2, is in round 1 of every partition.
		{"N=3 one node in the second zone", 3, map[string]string{"a": "z1", "b": "z1", "c": "z1", "d": "z1", "e": "z2"},
			"warning: node e (zone z2) is a replica of every partition"},
		{"N=3 one node without a zone", 3, map[string]string{"a": "z1", "b": "z1", "c": "z2", "d": "z2"},
			"warning: 1 of 5 members have no zone"},
		// N=5 over two zones allows 3 per zone; z1 must hold 4.
		{"N=5 one node in the second zone", 5, map[string]string{"a": "z1", "b": "z1", "c": "z1", "d": "z1", "e": "z2"},
			"warning: zone z1 holds more than 3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cfg
			cfg.ReplicationFactor = tt.n
			r, err := ring.NewZoned(cfg, []string{"a", "b", "c", "d", "e"}, tt.zones)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			a := &app{stdout: &out}
			if err := a.printInspection(asClientRing(t, r)); err != nil {
				t.Fatal(err)
			}
			s := out.String()
			if !strings.Contains(s, "ZONE") || !strings.Contains(s, "z1") {
				t.Fatalf("no zone table:\n%s", s)
			}
			if tt.warn == "" && strings.Contains(s, "warning:") {
				t.Fatalf("a warning for even zones:\n%s", s)
			}
			if !strings.Contains(s, tt.warn) {
				t.Fatalf("want %q in:\n%s", tt.warn, s)
			}
		})
	}
	plain, err := ring.New(cfg, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (&app{stdout: &out}).printInspection(asClientRing(t, plain)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "ZONE") {
		t.Fatalf("a zone table without zones:\n%s", out.String())
	}
}

// asClientRing is r's inspection as GET /v1/ring gives it to the CLI: its
// JSON read into the client's type.
func asClientRing(t *testing.T, r *ring.Ring) client.Ring {
	t.Helper()
	b, err := json.Marshal(r.Inspect(nil))
	if err != nil {
		t.Fatal(err)
	}
	var out client.Ring
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
