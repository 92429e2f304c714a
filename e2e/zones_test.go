package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// zoneOf places six nodes in three zones of two.
var zoneOf = map[string]string{"n1": "za", "n2": "zb", "n3": "zc", "n4": "za", "n5": "zb", "n6": "zc"}

// TestZones runs six nodes in three zones with N=3: every key's replicas
// are in three distinct zones (as /v1/ring?key= reports them), and after a
// SIGKILL of both nodes of one zone every key written with W=2 is still
// readable with R=2 and new writes with W=2 succeed.
func TestZones(t *testing.T) {
	deadline := testDeadline(t, 5*time.Minute)
	names := []string{"n1", "n2", "n3", "n4", "n5", "n6"}
	c := newElasticCluster(t, names, "")
	c.partitions = 61
	c.zones = zoneOf
	c.form(t, deadline, names...)

	t.Run("ring reports zones", func(t *testing.T) {
		var in struct {
			Nodes []struct {
				Node string `json:"node"`
				Zone string `json:"zone"`
			} `json:"nodes"`
			ZoneLimit int `json:"zone_limit"`
			Zones     []struct {
				Zone      string `json:"zone"`
				OverLimit int    `json:"partitions_over_limit"`
			} `json:"zones"`
		}
		if err := getJSON(c.httpAddr("n2"), "/v1/ring", &in); err != nil {
			t.Fatal(err)
		}
		if len(in.Nodes) != 6 || in.ZoneLimit != 1 || len(in.Zones) != 3 {
			t.Fatalf("ring %+v: want 6 nodes, zone limit 1, 3 zones", in)
		}
		for _, n := range in.Nodes {
			if n.Zone != zoneOf[n.Node] {
				t.Errorf("%s in zone %q, want %q", n.Node, n.Zone, zoneOf[n.Node])
			}
		}
		for _, z := range in.Zones {
			if z.OverLimit != 0 {
				t.Errorf("zone %s over the limit in %d partitions", z.Zone, z.OverLimit)
			}
		}
	})

	t.Run("every node builds the same zoned ring", func(t *testing.T) {
		fps := map[string]string{}
		for _, n := range names {
			var in struct {
				Fingerprint string   `json:"fingerprint"`
				Warnings    []string `json:"warnings"`
			}
			if err := getJSON(c.httpAddr(n), "/v1/ring", &in); err != nil {
				t.Fatal(err)
			}
			if len(in.Warnings) != 0 {
				t.Errorf("%s warns about three even zones: %q", n, in.Warnings)
			}
			fps[n] = in.Fingerprint
		}
		for _, n := range names {
			if fps[n] != fps["n1"] {
				t.Fatalf("ring fingerprints differ: %v", fps)
			}
		}
	})

	const keys = 60
	key := func(i int) string { return fmt.Sprintf("zk-%d", i) }
	put := func(addr, k string) error {
		code, body, err := httpDo(http.MethodPut, "http://"+addr+"/v1/kv/"+url.PathEscape(k)+"?w=2", []byte("v-"+k))
		if err == nil && code != http.StatusNoContent {
			err = fmt.Errorf("PUT %s on %s: %d %s", k, addr, code, body)
		}
		return err
	}
	get := func(addr, k string) error {
		code, body, err := httpDo(http.MethodGet, "http://"+addr+"/v1/kv/"+url.PathEscape(k)+"?r=2", nil)
		if err == nil && (code != http.StatusOK || string(body) != "v-"+k) {
			err = fmt.Errorf("GET %s on %s: %d %q", k, addr, code, body)
		}
		return err
	}
	for i := range keys {
		addr := c.httpAddr(names[i%len(names)])
		eventually(t, deadline, "write "+key(i), func() error { return put(addr, key(i)) })
	}

	t.Run("replicas in distinct zones", func(t *testing.T) {
		for i := range keys {
			var kp struct {
				Replicas     []string `json:"replicas"`
				ReplicaZones []string `json:"replica_zones"`
			}
			if err := getJSON(c.httpAddr("n3"), "/v1/ring?key="+url.QueryEscape(key(i)), &kp); err != nil {
				t.Fatal(err)
			}
			zones := map[string]bool{}
			for j, r := range kp.Replicas {
				zones[zoneOf[r]] = true
				if j >= len(kp.ReplicaZones) || kp.ReplicaZones[j] != zoneOf[r] {
					t.Fatalf("%s: replicas %v reported in zones %v", key(i), kp.Replicas, kp.ReplicaZones)
				}
			}
			if len(kp.Replicas) != 3 || len(zones) != 3 {
				t.Fatalf("%s: replicas %v span zones %v, want 3 replicas in 3 zones", key(i), kp.Replicas, zones)
			}
		}
	})

	// Both nodes of zone za crash.
	c.server("n1").kill(t)
	c.server("n4").kill(t)
	survivors := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return zoneOf[n] == "za" })

	t.Run("keys readable with R=2 after losing a zone", func(t *testing.T) {
		for i := range keys {
			addr := c.httpAddr(survivors[i%len(survivors)])
			eventually(t, deadline, "read "+key(i), func() error { return get(addr, key(i)) })
		}
	})

	t.Run("writes with W=2 succeed after losing a zone", func(t *testing.T) {
		for i := keys; i < keys+30; i++ {
			addr := c.httpAddr(survivors[i%len(survivors)])
			if err := put(addr, key(i)); err != nil {
				t.Fatal(err)
			}
			if err := get(c.httpAddr(survivors[(i+1)%len(survivors)]), key(i)); err != nil {
				t.Fatal(err)
			}
		}
	})
	c.stopAll(t, survivors...)
}
