package node

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/ring"
)

// TestZonesJoinThePlan: three nodes in three zones form a cluster; the
// plan every node installs carries each node's zone, so every partition's
// replicas are in three distinct zones everywhere; /v1/members lists the
// zones; a node restarted with another zone is refused.
func TestZonesJoinThePlan(t *testing.T) {
	zones := map[string]string{"n1": "za", "n2": "zb", "n3": "zc"}
	cfg1 := testConfig(t, "n1")
	cfg1.Node.Zone = "za"
	n1 := startNode(t, cfg1)
	cfg2 := testConfig(t, "n2", n1.Addrs().Gossip)
	cfg2.Node.Zone = "zb"
	n2 := startNode(t, cfg2)
	cfg3 := testConfig(t, "n3", n1.Addrs().Gossip)
	cfg3.Node.Zone = "zc"
	n3 := startNode(t, cfg3)
	nodes := []*runningNode{n1, n2, n3}
	waitConverged(t, nodes...)
	for _, n := range nodes {
		tr := n.place.Load()
		if got := tr.Plan().Zones; !maps.Equal(got, zones) {
			t.Fatalf("%s: plan zones %v, want %v", n.cfg.Node.Name, got, zones)
		}
		r := tr.Current()
		for p := range r.Config().Partitions {
			seen := map[string]bool{}
			for _, name := range r.Replicas(p) {
				seen[r.Zone(name)] = true
			}
			if len(seen) != 3 {
				t.Fatalf("%s: partition %d replicas %v in zones %v", n.cfg.Node.Name, p, r.Replicas(p), seen)
			}
		}
	}
	var members []client.Member
	getJSON(t, httpURL(n3, "/v1/members"), &members)
	for _, m := range members {
		if m.Zone != zones[m.Name] {
			t.Errorf("/v1/members: %s in zone %q, want %q", m.Name, m.Zone, zones[m.Name])
		}
	}
	// A what-if add on a zoned ring needs the added node's zone.
	if code, _, body := do(t, "GET", httpURL(n1, "/v1/ring?what_if=add:n9"), nil, nil); code != 400 || !strings.Contains(string(body), "give the added node's zone") {
		t.Errorf("what-if add without a zone = %d %s, want 400 asking for the zone", code, body)
	}
	if code, _, body := do(t, "GET", httpURL(n1, "/v1/ring?what_if=add:n9&zone=za"), nil, nil); code != 200 {
		t.Errorf("what-if add with a zone = %d %s", code, body)
	}
	if err := n2.stop(t); err != nil {
		t.Fatal(err)
	}
	moved := cfg2
	moved.Node.Zone = "zq"
	moved.Listen = ListenConfig{HTTP: "127.0.0.1:0", RESP: "127.0.0.1:0", RPC: "127.0.0.1:0", Gossip: "127.0.0.1:0"}
	if n, err := New(moved, testkit.Logger(t)); !errors.Is(err, gossip.ErrZoneChanged) {
		if n != nil {
			t.Error("New returned a node")
		}
		t.Fatalf("restart in another zone: %v, want ErrZoneChanged", err)
	}
}

// countHandler counts the records logged through it.
type countHandler struct{ n *atomic.Int64 }

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }

func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h countHandler) WithGroup(string) slog.Handler { return h }

// TestPlanZoneMismatchLoggedOnce: a node whose plan zone differs from
// node.zone logs it once, not on every plan it installs, and again only
// when the plan's zone for it changes.
func TestPlanZoneMismatchLoggedOnce(t *testing.T) {
	var logged atomic.Int64
	n := &Node{log: slog.New(countHandler{&logged})}
	n.cfg.Node.Name, n.cfg.Node.Zone = "n1", "z1"
	plan := ring.NewPlan([]string{"n1", "n2"}, 1) // n1 without a zone
	for range 5 {
		plan = plan.MoveTo(plan.Members, plan.Version+1)
		n.checkPlanZone(plan)
	}
	if got := logged.Load(); got != 1 {
		t.Fatalf("logged %d times over 5 plans, want once", got)
	}
	plan.Zones = map[string]string{"n1": "z2"}
	n.checkPlanZone(plan)
	n.checkPlanZone(plan)
	plan.Zones["n1"] = "z1"
	n.checkPlanZone(plan)
	if got := logged.Load(); got != 2 {
		t.Fatalf("logged %d times, want 2 (one more for the new plan zone, none once it matches)", got)
	}
}
