package gossip

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/internal/testkit"
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
		testkit.Eventually(t, converge, "every declared zone on every node", func() bool {
			for _, n := range nodes {
				for name, z := range zones {
					if n.g.Ring()[name].Zone != z {
						return false
					}
				}
			}
			return true
		})
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

// TestZonesOnAfterLeave is the path to zones on an existing cluster: an
// unzoned member may not start with a zone while the plan places it, but
// once it has left (its persisted plan, the committed one, no longer
// places it) it starts with a zone, and the claimant gives it that zone
// as it joins again; no other member's zone changes.
func TestZonesOnAfterLeave(t *testing.T) {
	plan := ring.NewPlan([]string{"a", "b", "c", "d"}, 1)
	err := checkOwnZone(plan, "a", "z1")
	if !errors.Is(err, ErrZoneChanged) || !strings.Contains(err.Error(), "cannot be switched on in place") {
		t.Fatalf("checkOwnZone of an unzoned member = %v, want ErrZoneChanged saying how to switch on", err)
	}
	left := plan.MoveTo([]string{"b", "c", "d"}, 2).Commit(3)
	if err := checkOwnZone(left, "a", "z1"); err != nil {
		t.Fatalf("checkOwnZone after leaving = %v", err)
	}
	declared := map[string]string{"a": "z1", "b": "z2"} // b's row says z2, but b is in the plan
	next := left.MoveToZoned([]string{"a", "b", "c", "d"}, func(n string) string { return declared[n] }, 4)
	if want := map[string]string{"a": "z1"}; !maps.Equal(next.Zones, want) {
		t.Fatalf("re-join zones %v, want %v", next.Zones, want)
	}
	if err := checkOwnZone(next, "a", "z1"); err != nil {
		t.Fatalf("checkOwnZone once re-joined = %v", err)
	}
	if err := checkOwnZone(next, "b", "z2"); !errors.Is(err, ErrZoneChanged) {
		t.Fatalf("checkOwnZone of b in the plan without a zone = %v", err)
	}
}

// TestLargestPlanFitsTheCap: the largest plan Validate accepts, with a
// zone of the longest kind for every node, encodes within maxPlanBytes
// and decodes back, so a peer never refuses a plan the claimant made.
func TestLargestPlanFitsTheCap(t *testing.T) {
	name := func(prefix string, i int) string {
		s := fmt.Sprintf("%s%05d", prefix, i)
		return s + strings.Repeat("x", maxNameLen-len(s))
	}
	p := ring.Plan{Epoch: maxPlanEpoch, Version: 1 << 62, Zones: map[string]string{}}
	for i := range ring.MaxPlanMembers {
		p.Members = append(p.Members, name("m", i))
		p.Target = append(p.Target, name("t", i))
	}
	for i, n := range slices.Concat(p.Members, p.Target) {
		z := fmt.Sprintf("z%d", i)
		p.Zones[n] = z + strings.Repeat("y", ring.MaxZoneBytes-len(z))
	}
	if err := checkPlan(p); err != nil {
		t.Fatalf("the largest plan is not valid: %v", err)
	}
	msg := encodePlanMsg(p)
	if len(msg)-1 > maxPlanBytes {
		t.Fatalf("the largest zoned plan encodes to %d bytes, over the cap of %d", len(msg)-1, maxPlanBytes)
	}
	got, err := decodePlan(msg[1:])
	if err != nil || !got.Equal(p) || !maps.Equal(got.Zones, p.Zones) {
		t.Fatalf("decodePlan of the largest plan = %v (equal %v)", err, got.Equal(p))
	}
	t.Logf("largest zoned plan: %d bytes of %d", len(msg)-1, maxPlanBytes)
}
