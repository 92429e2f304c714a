package replica

import (
	"fmt"
	"testing"
)

// TestStandInsPreferTheReplicasZone: with zones, a down replica's hint
// goes to the first live unused fallback of its zone, else to the first of
// any zone; each fallback is handed out once; without zones the order is
// the ring's.
func TestStandInsPreferTheReplicasZone(t *testing.T) {
	zone := map[string]string{"r1": "a", "r2": "b", "r3": "c", "f1": "b", "f2": "c", "f3": "a", "f4": "c"}
	down := map[string]bool{"f2": true}
	alive := func(n string) bool { return !down[n] }
	s := &standIns{list: []string{"f1", "f2", "f3", "f4"}, alive: alive, zoneOf: func(n string) string { return zone[n] }}
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
	ls := &standIns{list: long, alive: func(string) bool { return true }, zoneOf: func(string) string { return "" }}
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
	reuse := &standIns{list: []string{"f1", "f2", "f3", "f4"}, alive: alive, zoneOf: func(n string) string { return zone[n] }}
	if n := testing.AllocsPerRun(100, func() {
		reuse.used = 0
		reuse.take("r1")
		reuse.take("r2")
	}); n != 0 {
		t.Errorf("handing out stand-ins with zones allocates %v times", n)
	}
}
