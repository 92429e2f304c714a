package replica

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/ringkv/ringkv/ring"
)

// TestStandInsPreferTheReplicasZone: with zones, a down replica's hint
// goes to the first live unused fallback of its zone, else to the first of
// any zone; each fallback is handed out once; without zones the order is
// the ring's.
func TestStandInsPreferTheReplicasZone(t *testing.T) {
	zone := map[string]string{"r1": "a", "r2": "b", "r3": "c", "f1": "b", "f2": "c", "f3": "a", "f4": "c"}
	down := map[string]bool{"f2": true}
	alive := func(n string) bool { return !down[n] }
	s := &standIns{list: []string{"f1", "f2", "f3", "f4"}, alive: alive, zoned: zoneTable(zone)}
	for _, step := range []struct{ target, want string }{
		{"r1", "f3"}, // zone a: f3
		{"r3", "f4"}, // zone c: f2 is down, f4
		{"r1", "f1"}, // no unused node of zone a left: the first unused one
		{"r2", ""},   // nothing left
	} {
		got, ok := s.take(step.target)
		if got != step.want || ok != (step.want != "") {
			t.Fatalf("take(%s) = %q, %v; want %q", step.target, got, ok, step.want)
		}
	}
	plain := &standIns{list: []string{"f1", "f2", "f3"}, alive: alive}
	for _, want := range []string{"f1", "f3", ""} {
		if got, _ := plain.take("r1"); got != want {
			t.Fatalf("without zones take = %q, want %q", got, want)
		}
	}
	// Lists longer than the bit mask still hand each fallback out once.
	var long []string
	for i := range 70 {
		long = append(long, fmt.Sprintf("g%02d", i))
	}
	ls := &standIns{list: long, alive: func(string) bool { return true }, zoned: zoneTable{}}
	seen := map[string]bool{}
	for range 70 {
		n, ok := ls.take("r1")
		if !ok || seen[n] {
			t.Fatalf("take gave %q (ok %v), seen before: %v", n, ok, seen[n])
		}
		seen[n] = true
	}
	if _, ok := ls.take("r1"); ok {
		t.Fatal("handed out more fallbacks than the list holds")
	}
	for _, zoned := range []ZonedPlacement{zoneTable(zone), nil} {
		reuse := &standIns{list: []string{"f1", "f2", "f3", "f4"}, alive: alive, zoned: zoned}
		if n := testing.AllocsPerRun(100, func() {
			reuse.used = 0
			reuse.take("r1")
			reuse.take("r2")
		}); n != 0 {
			t.Errorf("handing out stand-ins (zoned %v) allocates %v times", zoned != nil, n)
		}
	}
}

// zoneTable is a ZonedPlacement's zone half over a map.
type zoneTable map[string]string

func (z zoneTable) Zoned() bool { return true }

func (z zoneTable) Zone(node string) string { return z[node] }

// TestZonedRouteDoesNotAllocate: routing a key on a zoned *ring.Transition,
// the placement node serves, and handing out the route's zone-preferring
// stand-ins allocate nothing beyond an unzoned route (which allocates
// nothing either: the lists are the ring's own).
func TestZonedRouteDoesNotAllocate(t *testing.T) {
	cfg := ring.Config{Partitions: 61, ReplicationFactor: 3, Load: 1.25, VirtualNodes: 20}
	members := []string{"n1", "n2", "n3", "n4", "n5", "n6"}
	plan := ring.NewPlan(members, 1)
	plan.Zones = map[string]string{"n1": "a", "n2": "a", "n3": "b", "n4": "b", "n5": "c", "n6": "c"}
	plan = plan.MoveToZoned(members[:5], nil, 2) // a change in progress: pending and targets too
	tr, err := ring.NewTransition(cfg, plan)
	if err != nil {
		t.Fatal(err)
	}
	c := &Coordinator{cfg: Config{Placement: func() Placement { return tr }}}
	key := []byte("some key")
	rt, err := c.route(key)
	if err != nil || rt.zoned == nil {
		t.Fatalf("route = %+v, %v; want a zoned route", rt, err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := c.route(key); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("routing a key on a zoned ring allocates %v times", n)
	}
	s := &standIns{list: rt.fallbacks, alive: func(string) bool { return true }, zoned: rt.zoned}
	if n := testing.AllocsPerRun(100, func() {
		s.used = 0
		for _, r := range rt.reps {
			s.take(r)
		}
	}); n != 0 {
		t.Errorf("taking stand-ins on a zoned route allocates %v times", n)
	}
}

// TestStandInsWithoutZonesKeepRingOrder: on random rings and liveness,
// stand-ins are the live fallbacks in ring order, each once (what the
// unzoned path, gone since, handed out), whether the placement has no
// zones (nil) or is zoned with every node in zone "".
func TestStandInsWithoutZonesKeepRingOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		members := make([]string, rapid.IntRange(1, 12).Draw(t, "members"))
		for i := range members {
			members[i] = fmt.Sprintf("n%02d", i)
		}
		cfg := ring.Config{Partitions: 31, ReplicationFactor: rapid.IntRange(1, 5).Draw(t, "rf"), Load: 1.25, VirtualNodes: 10}
		tr, err := ring.NewTransition(cfg, ring.NewPlan(members, 1))
		if err != nil {
			t.Fatal(err)
		}
		part := rapid.IntRange(0, cfg.Partitions-1).Draw(t, "partition")
		reps, fallbacks := tr.Replicas(part), tr.Fallbacks(part)
		down := map[string]bool{}
		for _, f := range fallbacks {
			down[f] = rapid.Bool().Draw(t, "down "+f)
		}
		alive := func(n string) bool { return !down[n] }
		var want []string
		for _, f := range fallbacks {
			if alive(f) {
				want = append(want, f)
			}
		}
		targets := make([]string, len(fallbacks)+1)
		for i := range targets {
			targets[i] = rapid.SampledFrom(reps).Draw(t, "target")
		}
		for _, zoned := range []ZonedPlacement{nil, zoneTable{}} {
			s := &standIns{list: fallbacks, alive: alive, zoned: zoned}
			var got []string
			for _, target := range targets {
				if n, ok := s.take(target); ok {
					got = append(got, n)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("zoned %v: stand-ins %v, want %v (fallbacks %v, down %v)", zoned != nil, got, want, fallbacks, down)
			}
		}
	})
}
