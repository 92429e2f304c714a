package chaos

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

func TestScenarios(t *testing.T) {
	want := []string{"kill", "freeze", "isolate", "isolate-minority", "wipe", "membership"}
	got := Scenarios()
	if len(got) != len(want) {
		t.Fatalf("%d scenarios, want %d", len(got), len(want))
	}
	for i, s := range got {
		if s.Name != want[i] || s.Run == nil {
			t.Errorf("scenario %d = %q (run %v), want %q", i, s.Name, s.Run != nil, want[i])
		}
		byName, err := ScenarioByName(s.Name)
		if err != nil || byName.Name != s.Name {
			t.Errorf("ScenarioByName(%q) = %q, %v", s.Name, byName.Name, err)
		}
		if cuts := s.Name == "isolate" || s.Name == "isolate-minority"; s.NeedsCuts != cuts {
			t.Errorf("%s NeedsCuts = %v", s.Name, s.NeedsCuts)
		}
	}
	if _, err := ScenarioByName("flood"); err == nil {
		t.Error("ScenarioByName(flood) succeeded")
	}
}

func TestSchedule(t *testing.T) {
	// A deadline within the stop margin: the schedule is over already.
	ctx, cancel := context.WithTimeout(t.Context(), stopMargin/2)
	defer cancel()
	s := newSchedule(ctx)
	if s.left() != 0 {
		t.Errorf("left() = %s inside the stop margin", s.left())
	}
	if s.pause(time.Hour) {
		t.Error("pause past the stop reported the whole pause")
	}

	ctx, cancel = context.WithTimeout(t.Context(), stopMargin+time.Minute)
	defer cancel()
	s = newSchedule(ctx)
	if !s.pause(time.Millisecond) {
		t.Error("a short pause was cut short")
	}
	cancel()
	if s.pause(time.Hour) {
		t.Error("pause after cancel reported the whole pause")
	}

	rng := rand.New(rand.NewPCG(1, 1))
	for range 1000 {
		if d := between(rng, 2*time.Second, 5*time.Second); d < 2*time.Second || d >= 5*time.Second {
			t.Fatalf("between(2s, 5s) = %s", d)
		}
	}
}
