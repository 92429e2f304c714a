package gossip

import (
	"context"
	"errors"
	"maps"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/ring"
)

// TestZonesSpreadAndPersist: the zone a node declares reaches every node
// in its row; the bootstrapped plan carries the first node's zone; a plan
// with zones reaches every node; a restarted node has the plan's zones
// from disk, and a node restarted with another zone than its plan gives
// it is refused.
func TestZonesSpreadAndPersist(t *testing.T) { synctest.Test(t, testZonesSpreadAndPersist) }

func testZonesSpreadAndPersist(t *testing.T) {
	top := t
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	zones := map[string]string{"n1": "z1", "n2": "z2", "n3": "z3"}
	n1 := startNode(t, top, "n1", t.TempDir(), nodeOpts{net: mn, bootstrap: true, zone: "z1"})
	first := n1.g.Plan()
	if !maps.Equal(first.Zones, map[string]string{"n1": "z1"}) {
		t.Fatalf("bootstrapped plan zones %v", first.Zones)
	}
	seed := []string{n1.addr}
	dir2 := t.TempDir()
	n2 := startNode(t, top, "n2", dir2, nodeOpts{net: mn, seeds: seed, zone: "z2"})
	n3 := startNode(t, top, "n3", t.TempDir(), nodeOpts{net: mn, seeds: seed, zone: "z3"})
	nodes := []*testNode{n1, n2, n3}

	step(t, "every node learns every declared zone", func(t *testing.T) {
		waitFor(t, converge, func() bool {
			for _, n := range nodes {
				for name, z := range zones {
					if n.g.Ring()[name].Zone != z {
						return false
					}
				}
			}
			return true
		}, func() string { return "zones not spread" })
		for _, m := range n3.g.Members() {
			if m.Zone != zones[m.Name] {
				t.Errorf("n3 lists %s in zone %q, want %q", m.Name, m.Zone, zones[m.Name])
			}
		}
	})

	rows := n1.g.Ring()
	next := first.MoveToZoned([]string{"n1", "n2", "n3"}, func(n string) string { return rows[n].Zone }, versionAt(time.Now()))
	step(t, "a plan with zones reaches every node", func(t *testing.T) {
		if !maps.Equal(next.Zones, zones) {
			t.Fatalf("plan zones %v, want %v", next.Zones, zones)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := n1.g.Propose(ctx, next); err != nil {
			t.Fatal(err)
		}
		waitPlan(t, "propose", nodes, next)
	})

	step(t, "a restart keeps the zones; another zone is refused", func(t *testing.T) {
		n2.crash(t)
		cfg := LocalConfig()
		cfg.Name, cfg.Dir, cfg.Zone, cfg.Logger = "n2", dir2, "z9", discardLogger()
		tr, err := mn.NewTransport(n2.addr)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Transport = tr
		if g, err := New(cfg); !errors.Is(err, ErrZoneChanged) {
			if g != nil {
				_ = g.Shutdown()
			}
			t.Fatalf("New with another zone = %v, want ErrZoneChanged", err)
		}
		_ = tr.Shutdown()
		n2 = startNode(t, top, "n2", dir2, nodeOpts{net: mn, addr: n2.addr, zone: "z2"})
		if got := n2.g.Plan(); !got.Equal(next) || !maps.Equal(got.Zones, zones) {
			t.Fatalf("restarted n2 loaded plan %+v, want %+v", got, next)
		}
	})
}

func TestZonedStateRoundTrip(t *testing.T) {
	m := Map{"n1": {StatusJoined, 2, "127.0.0.1:1", "z1"}, "n2": {StatusLeft, 3, "", ""}}
	p := ring.NewPlan([]string{"n1", "n2"}, 9)
	p.Zones = map[string]string{"n1": "z1"}
	gm, gp, err := DecodeState(EncodeState(m, p))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, gm); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if !gp.Equal(p) {
		t.Errorf("plan %+v, want %+v", gp, p)
	}
	msg := encodePlanMsg(p)
	if got, err := decodePlan(msg[1:]); err != nil || !got.Equal(p) {
		t.Errorf("plan message: %+v, %v", got, err)
	}
	// Without zones, rows and plans keep the shape older builds read.
	plain := ring.NewPlan([]string{"n1"}, 9)
	if b := mustMarshal(toWirePlan(plain)); b[0] != fixArray(4) {
		t.Errorf("a plan without zones starts %#x, want a 4-item array", b[0])
	}
	for _, r := range wireRows(Map{"n1": {StatusJoined, 1, "a", ""}, "n2": {StatusJoined, 1, "b", "z"}}) {
		b := mustMarshal(r)
		if want := map[bool]byte{false: fixArray(4), true: fixArray(5)}[r == any(zonedRow{Name: "n2", Status: StatusJoined, Version: 1, Addr: "b", Zone: "z"})]; b[0] != want {
			t.Errorf("row %+v starts %#x, want %#x", r, b[0], want)
		}
	}
	// Persisted zones come back.
	dir := t.TempDir()
	if err := saveState(vfs.OSFS{}, dir, "n1", m, p); err != nil {
		t.Fatal(err)
	}
	lm, lp, err := loadState(vfs.OSFS{}, dir, "n1")
	if err != nil || !cmp.Equal(lm, m) || !lp.Equal(p) {
		t.Fatalf("loadState = %v %+v %v", lm, lp, err)
	}
}

func TestZonedStateRejects(t *testing.T) {
	bad := func(zones []string) []byte {
		return mustMarshal(&zonedPlan{Epoch: 1, Version: 1, Members: []string{"a", "b"}, Zones: zones})
	}
	for name, b := range map[string][]byte{
		"odd zone fields":      bad([]string{"a"}),
		"zone of a non-member": bad([]string{"x", "z1"}),
		"bad zone":             bad([]string{"a", "z 1"}),
		"duplicate zone":       bad([]string{"a", "z1", "a", "z2"}),
	} {
		if _, err := decodePlan(b); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: decodePlan = %v, want ErrBadState", name, err)
		}
	}
	row := mustMarshal(&wireStateV1{Format: 1, Rows: []any{zonedRow{Name: "a", Status: StatusJoined, Zone: "bad/zone"}}})
	if _, _, err := DecodeState(row); !errors.Is(err, ErrBadState) {
		t.Errorf("row with a bad zone: %v, want ErrBadState", err)
	}
}
