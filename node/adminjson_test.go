package node

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/ring"
	"github.com/ringkv/ringkv/vclock"
)

var rewriteGolden = flag.Bool("rewrite-golden", false, "rewrite node/testdata/golden from the current code")

// TestAdminJSONGolden holds the JSON of GET /v1/ring (plain, ?key= and
// ?what_if=, with and without zones), GET /v1/members, the console's
// routes (GET /v1/ring/partitions, /v1/versions, /v1/whoami) to files
// written by the code from before the admin API got types of its own, so
// that no field name, order or omission changes.
func TestAdminJSONGolden(t *testing.T) {
	cfg := ring.DefaultConfig()
	cfg.Partitions, cfg.ReplicationFactor = 31, 3
	r, err := ring.New(cfg, []string{"n1", "n2", "n3"})
	if err != nil {
		t.Fatal(err)
	}
	plan := ring.Plan{Epoch: 3, Version: 1700000000, Members: []string{"n1", "n2", "n3"}, Target: []string{"n1", "n2", "n3", "n4"}}
	stats := map[string]client.NodeStats{
		"n1": {Node: "n1", Keys: 10, Bytes: 1000, Transfer: &client.Transfer{Epoch: 3, Pending: 1, InFlight: 2, Done: 3, Keys: 4, Bytes: 5,
			NewBytes: 6, BytesLeft: 7, RateBytes: 8.5, Failures: 9, KeysSent: 10, BytesSent: 11}},
		"n2": {Node: "n2", Keys: 20, Bytes: 2000},
	}
	add, err := r.WhatIfAdd("n4")
	if err != nil {
		t.Fatal(err)
	}
	add.EstimateBytes(func(int) int64 { return 100 })
	remove, err := r.WhatIfRemove("n2")
	if err != nil {
		t.Fatal(err)
	}
	members := []client.Member{
		{Name: "n1", Gossip: "127.0.0.1:9001", HTTP: "127.0.0.1:8001", RESP: "127.0.0.1:6380", RPC: "127.0.0.1:7001",
			Liveness: "alive", Status: "joined", PendingHints: 2, PendingHintBytes: 200},
		{Name: "n2", Gossip: "127.0.0.1:9002", Liveness: "dead", Status: "joining"},
	}
	cases := map[string]any{
		"ring.json":               ringBody(r, &plan, stats),
		"ring_stable.json":        ringBody(r, nil, map[string]client.NodeStats{}),
		"ring_key.json":           placementBody(r.Preference([]byte("greeting"))),
		"ring_whatif_add.json":    whatIfBody(add),
		"ring_whatif_remove.json": whatIfBody(remove),
		"members.json":            members,
	}
	maps.Copy(cases, zonedGoldenCases(t, cfg, plan))
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", name)
			if *rewriteGolden {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("%s changed:\n got: %s\nwant: %s", name, buf.Bytes(), want)
			}
		})
	}
}

// zonedGoldenCases are the answers that carry zones and anti-entropy
// totals, and the console's: n1 to n4 over two zones and n5 in none, two
// nodes reporting anti-entropy totals.
func zonedGoldenCases(t *testing.T, cfg ring.Config, plan ring.Plan) map[string]any {
	t.Helper()
	zones := map[string]string{"n1": "za", "n2": "zb", "n3": "za", "n4": "zb"}
	zr, err := ring.NewZoned(cfg, []string{"n1", "n2", "n3", "n4", "n5"}, zones)
	if err != nil {
		t.Fatal(err)
	}
	stats := map[string]client.NodeStats{
		"n1": {Node: "n1", Keys: 10, Bytes: 1000, AAE: &client.AAETotals{Exchanges: 1, ExchangeFailures: 2, KeysRepaired: 3, BytesRepaired: 4,
			Partitions: 5, PartitionsSynced: 6, PartitionsInSync: 7, LastFullPass: "2024-01-02T03:04:05Z", TombstonesCollected: 8, ContextsPruned: 9}},
		"n4": {Node: "n4", Keys: 40, Bytes: 4000, AAE: &client.AAETotals{}},
	}
	add, err := zr.WhatIfAddZone("n6", "zc")
	if err != nil {
		t.Fatal(err)
	}
	add.EstimateBytes(func(int) int64 { return 50 })
	members := []client.Member{
		{Name: "n1", Gossip: "127.0.0.1:9001", Zone: "za", Liveness: "alive", Status: "joined"},
		{Name: "n5", Gossip: "127.0.0.1:9005", Liveness: "suspect", Status: "leaving", PendingHints: 1, PendingHintBytes: 10},
	}
	_, live := vclock.Mint(nil, "n1", vclock.Write{Value: []byte("one"), WallTime: 1e9})
	_, tomb := vclock.Mint(nil, "n3", vclock.Write{Tombstone: true, WallTime: 3e9})
	return map[string]any{
		"ring_zones.json":           ringBody(zr, &plan, stats),
		"ring_key_zones.json":       placementBody(zr.Preference([]byte("greeting"))),
		"ring_whatif_add_zone.json": whatIfBody(add),
		"members_zones.json":        members,
		"partitions.json":           partitionsBody(zr),
		"versions.json": client.Versions{Placement: placementBody(zr.Preference([]byte("greeting"))),
			Versions: versionsBody(vclock.Merge(live, tomb)), Context: "ctx"},
		"whoami.json": client.WhoAmI{Auth: true, Role: "read", Name: "reader"},
	}
}
