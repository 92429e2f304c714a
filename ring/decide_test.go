package ring

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// isOneOf returns a predicate true for exactly the given names.
func isOneOf(set ...string) func(string) bool {
	return func(name string) bool { return slices.Contains(set, name) }
}

func all(string) bool { return true }

func nobody(string) bool { return false }

func allComplete(string, int) bool { return true }

func noneComplete(string, int) bool { return false }

// allBut is true for every name except the given ones.
func allBut(set ...string) func(string) bool {
	return func(name string) bool { return !slices.Contains(set, name) }
}

func TestClaimant(t *testing.T) {
	change := NewPlan([]string{"b", "c", "d"}, 1).MoveTo([]string{"c", "d", "e"}, 2)
	tests := []struct {
		name string
		s    Situation
		want string
	}{
		{"lowest member", Situation{Plan: NewPlan([]string{"b", "a", "c"}, 1), Desired: []string{"a", "b", "c"}, Gone: nobody, Alive: all}, "a"},
		{"lowest is down: still the claimant", Situation{Plan: NewPlan([]string{"a", "b", "c"}, 1), Desired: []string{"a", "b", "c"}, Gone: nobody, Alive: allBut("a")}, "a"},
		{"lowest is gone", Situation{Plan: NewPlan([]string{"a", "b", "c"}, 1), Desired: []string{"b", "c"}, Gone: isOneOf("a"), Alive: all}, "b"},
		{"joining node is lowest", Situation{Plan: NewPlan([]string{"b", "c"}, 1), Desired: []string{"a", "b", "c"}, Gone: nobody, Alive: all}, "a"},
		{"liveness does not matter", Situation{Plan: change, Desired: []string{"c", "d", "e"}, Gone: nobody, Alive: isOneOf("e")}, "b"},
		{"target only", Situation{Plan: change, Desired: []string{"c", "d", "e"}, Gone: isOneOf("b", "c", "d"), Alive: all}, "e"},
		{"member leaving still counts", Situation{Plan: change, Desired: []string{"c", "d", "e"}, Gone: nobody, Alive: all}, "b"},
		{"no one alive", Situation{Plan: change, Desired: []string{"c"}, Gone: nobody, Alive: nobody}, "b"},
		{"everyone gone", Situation{Plan: change, Desired: []string{"c"}, Gone: all}, ""},
		{"nil Gone", Situation{Plan: change, Desired: []string{"c"}, Alive: all}, "b"},
		{"zero plan, desired only", Situation{Desired: []string{"z", "y"}, Alive: all}, "y"},
		{"empty", Situation{Alive: all}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Claimant(tt.s); got != tt.want {
				t.Fatalf("Claimant = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	cfg := transitionConfig()
	abc, abcd := []string{"a", "b", "c"}, []string{"a", "b", "c", "d"}
	stable := NewPlan(abc, 10)
	joining := stable.MoveTo(abcd, 20)           // d joins
	leaving := NewPlan(abcd, 10).MoveTo(abc, 20) // d leaves
	first := firstMove(t, cfg, joining)
	const now = 1000
	tests := []struct {
		name string
		s    Situation
		// want is the expected next plan; the zero Plan means no action.
		want   Plan
		reason string // a substring of the reason
	}{
		// Nothing known, nothing to do.
		{"zero plan", Situation{Desired: abc, Gone: nobody, Alive: all, Complete: allComplete, Now: now}, Plan{}, "no plan"},
		{"invalid plan", Situation{Plan: Plan{Epoch: 3, Members: []string{"b", "a"}}, Desired: abc, Gone: nobody, Alive: all, Complete: allComplete, Now: now}, Plan{}, "invalid plan"},
		{"stable, desired equal", Situation{Plan: stable, Desired: []string{"c", "a", "b", "a"}, Gone: nobody, Alive: all, Complete: allComplete, Now: now}, Plan{}, "stable"},
		{"stable, desired equal, someone down", Situation{Plan: stable, Desired: abc, Gone: nobody, Alive: allBut("b"), Complete: allComplete, Now: now}, Plan{}, "stable"},

		// Rule 2: stable plan, desired differs, everyone up.
		{"join", Situation{Plan: stable, Desired: abcd, Gone: nobody, Alive: all, Complete: noneComplete, Now: now}, stable.MoveTo(abcd, now), "d joins"},
		{"join, unsorted duplicated desired", Situation{Plan: stable, Desired: []string{"d", "c", "b", "a", "d"}, Gone: nobody, Alive: all, Complete: noneComplete, Now: now}, stable.MoveTo(abcd, now), "d joins"},
		{"two join", Situation{Plan: stable, Desired: []string{"a", "b", "c", "d", "e"}, Gone: nobody, Alive: all, Complete: noneComplete, Now: now}, stable.MoveTo([]string{"a", "b", "c", "d", "e"}, now), "d, e join"},
		{"join, joiner down", Situation{Plan: stable, Desired: abcd, Gone: nobody, Alive: allBut("d"), Complete: noneComplete, Now: now}, Plan{}, "d is down"},
		{"join, member down", Situation{Plan: stable, Desired: abcd, Gone: nobody, Alive: allBut("b"), Complete: noneComplete, Now: now}, Plan{}, "b is down"},
		{"many down, reason stays short", Situation{Plan: NewPlan(names("n", 12), 10), Desired: names("n", 13), Gone: nobody, Alive: nobody, Complete: noneComplete, Now: now}, Plan{}, "... 13 in all]: n1, n10, n11, n12, n13, n2, n3, n4, n5, n6 and 3 more are down"},
		{"join, nil Alive", Situation{Plan: stable, Desired: abcd, Gone: nobody, Complete: noneComplete, Now: now}, Plan{}, "down"},
		{"leave", Situation{Plan: NewPlan(abcd, 10), Desired: abc, Gone: nobody, Alive: all, Complete: noneComplete, Now: now}, NewPlan(abcd, 10).MoveTo(abc, now), "d leaves"},
		{"leave, leaver down", Situation{Plan: NewPlan(abcd, 10), Desired: abc, Gone: nobody, Alive: allBut("d"), Complete: noneComplete, Now: now}, Plan{}, "d is down"},
		{"remove a down node", Situation{Plan: NewPlan(abcd, 10), Desired: abc, Gone: isOneOf("d"), Alive: allBut("d"), Complete: noneComplete, Now: now}, NewPlan(abcd, 10).MoveTo(abc, now), "d is gone"},
		{"remove, another down", Situation{Plan: NewPlan(abcd, 10), Desired: abc, Gone: isOneOf("d"), Alive: allBut("d", "a"), Complete: noneComplete, Now: now}, Plan{}, "a is down"},
		{"gone node in desired is ignored", Situation{Plan: stable, Desired: abcd, Gone: isOneOf("d"), Alive: all, Complete: noneComplete, Now: now}, Plan{}, "stable"},
		{"replace", Situation{Plan: stable, Desired: []string{"a", "b", "d"}, Gone: isOneOf("c"), Alive: allBut("c"), Complete: noneComplete, Now: now}, stable.MoveTo([]string{"a", "b", "d"}, now), "d joins; c is gone"},
		{"too many nodes", Situation{Plan: stable, Desired: names("n", 32), Gone: nobody, Alive: all, Complete: noneComplete, Now: now}, Plan{}, "too many nodes"},
		{"invalid name", Situation{Plan: stable, Desired: []string{"a", "b", "c", ""}, Gone: nobody, Alive: all, Complete: noneComplete, Now: now}, Plan{}, "empty node name"},
		{"everyone leaves", Situation{Plan: stable, Desired: nil, Gone: nobody, Alive: all, Complete: noneComplete, Now: now}, Plan{}, "no node wants"},
		{"everyone removed", Situation{Plan: stable, Desired: nil, Gone: all, Alive: nobody, Complete: noneComplete, Now: now}, Plan{}, "no node wants"},
		{"clock behind", Situation{Plan: stable, Desired: abcd, Gone: nobody, Alive: all, Complete: noneComplete, Now: 1}, stable.MoveTo(abcd, 1), "d joins"},

		// Rule 3: a target node is no longer desired: retarget, even when
		// not everyone is up.
		{"joiner removed", Situation{Plan: joining, Desired: abc, Gone: isOneOf("d"), Alive: allBut("d"), Complete: noneComplete, Now: now}, joining.MoveTo(abc, now), "retarget to [a b c]: d is gone"},
		{"joiner leaves while a member is down", Situation{Plan: joining, Desired: abc, Gone: nobody, Alive: allBut("b", "d"), Complete: noneComplete, Now: now}, joining.MoveTo(abc, now), "d is leaving"},
		{"member leaves during join", Situation{Plan: joining, Desired: []string{"a", "b", "d"}, Gone: nobody, Alive: all, Complete: allComplete, Now: now}, joining.MoveTo([]string{"a", "b", "d"}, now), "c is leaving"},
		{"retarget takes waiting joins", Situation{Plan: joining, Desired: []string{"a", "b", "c", "e"}, Gone: isOneOf("d"), Alive: allBut("d"), Complete: noneComplete, Now: now}, joining.MoveTo([]string{"a", "b", "c", "e"}, now), "d is gone"},
		{"retarget to too many", Situation{Plan: joining, Desired: slices.Concat(abc, names("n", 29)), Gone: isOneOf("d"), Alive: all, Complete: noneComplete, Now: now}, Plan{}, "too many nodes"},
		{"retarget to nobody", Situation{Plan: joining, Desired: nil, Gone: nobody, Alive: all, Complete: allComplete, Now: now}, Plan{}, "no node wants"},

		// Rule 4: change in progress, everyone up, every move complete.
		{"commit join", Situation{Plan: joining, Desired: abcd, Gone: nobody, Alive: all, Complete: allComplete, Now: now}, joining.Commit(now), "commit epoch 2"},
		{"commit leave", Situation{Plan: leaving, Desired: abc, Gone: nobody, Alive: all, Complete: allComplete, Now: now}, leaving.Commit(now), "commit epoch 2"},
		{"commit leave, leaver down", Situation{Plan: leaving, Desired: abc, Gone: nobody, Alive: allBut("d"), Complete: allComplete, Now: now}, Plan{}, "d is down"},
		{"commit removal", Situation{Plan: leaving, Desired: abc, Gone: isOneOf("d"), Alive: allBut("d"), Complete: allComplete, Now: now}, leaving.Commit(now), "commit epoch 2"},
		{"commit waits for a member", Situation{Plan: joining, Desired: abcd, Gone: nobody, Alive: allBut("a"), Complete: allComplete, Now: now}, Plan{}, "a is down"},
		{"commit waits for transfers", Situation{Plan: joining, Desired: abcd, Gone: nobody, Alive: all, Complete: noneComplete, Now: now}, Plan{}, "transfers"},
		{"commit waits for one transfer", Situation{Plan: joining, Desired: abcd, Gone: nobody, Alive: all, Complete: func(node string, p int) bool { return p != first.Partition || node != first.To }, Now: now}, Plan{}, "1 of"},
		{"commit with the caller's transition", Situation{Plan: joining, Desired: abcd, Gone: nobody, Alive: all, Complete: allComplete, Now: now, Transition: mustTransition(t, cfg, joining)}, joining.Commit(now), "commit epoch 2"},
		{"transition of another plan is ignored", Situation{Plan: joining, Desired: abcd, Gone: nobody, Alive: all, Complete: noneComplete, Now: now, Transition: mustTransition(t, cfg, stable)}, Plan{}, "waiting for 23 of 23"},
		{"commit, nil Complete", Situation{Plan: joining, Desired: abcd, Gone: nobody, Alive: all, Now: now}, Plan{}, "transfers"},
		{"join waits for the change in progress", Situation{Plan: joining, Desired: []string{"a", "b", "c", "d", "e"}, Gone: nobody, Alive: all, Complete: noneComplete, Now: now}, Plan{}, "transfers"},
		{"commit without the waiting join", Situation{Plan: joining, Desired: []string{"a", "b", "c", "d", "e"}, Gone: nobody, Alive: all, Complete: allComplete, Now: now}, joining.Commit(now), "commit epoch 2"},
		{"commit waits for a waiting joiner", Situation{Plan: joining, Desired: []string{"a", "b", "c", "d", "e"}, Gone: nobody, Alive: allBut("e"), Complete: allComplete, Now: now}, Plan{}, "e is down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, reason, ok := Decide(cfg, tt.s)
			t.Logf("reason: %s", reason)
			if want := tt.want.Known(); ok != want {
				t.Fatalf("Decide ok = %v (%s), want %v", ok, reason, want)
			}
			if ok && !next.Equal(tt.want) {
				t.Fatalf("Decide = %+v, want %+v", next, tt.want)
			}
			if !ok && next.Known() {
				t.Fatalf("Decide answered plan %+v with ok false", next)
			}
			if ok {
				if err := next.Validate(); err != nil {
					t.Fatalf("Decide gave an invalid plan: %v", err)
				}
				if next.Epoch != tt.s.Plan.Epoch+1 || next.Version <= tt.s.Plan.Version {
					t.Fatalf("Decide plan epoch %d version %d after %d, %d", next.Epoch, next.Version, tt.s.Plan.Epoch, tt.s.Plan.Version)
				}
			}
			if !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q does not say %q", reason, tt.reason)
			}
		})
	}
}

func firstMove(t *testing.T, cfg Config, p Plan) Move {
	t.Helper()
	moves := mustTransition(t, cfg, p).Moves()
	if len(moves) == 0 {
		t.Fatalf("plan %+v moves nothing", p)
	}
	return moves[0]
}

// cluster simulates the claimant loop: it applies Decide until nothing is
// left to do, and completes one transfer of the current epoch each time
// Decide waits, so a commit can only follow every move's completion.
type pair struct {
	partition int
	to        string
}

type cluster struct {
	cfg     Config
	plan    Plan
	desired []string
	done    map[pair]bool // the moves of plan's epoch that completed
	steps   []string
}

func (c *cluster) complete(node string, p int) bool { return c.done[pair{p, node}] }

// run returns once Decide has nothing to do and no transfer is left, or
// fails after limit steps.
func (c *cluster) run(t tb, limit int, onStep func(step int)) {
	t.Helper()
	if c.done == nil {
		c.done = map[pair]bool{}
	}
	for step := range limit {
		if onStep != nil {
			onStep(step)
		}
		next, reason, ok := Decide(c.cfg, Situation{Plan: c.plan, Desired: c.desired, Gone: nobody, Alive: all, Complete: c.complete, Now: uint64(step)})
		if ok {
			if !c.plan.Stable() && next.Stable() && slices.Equal(next.Members, c.plan.Target) {
				// A commit: every move of the old epoch must have completed.
				for _, mv := range mustTransition(t, c.cfg, c.plan).Moves() {
					if !c.complete(mv.To, mv.Partition) {
						t.Fatalf("step %d: committed epoch %d with %d -> %s incomplete", step, c.plan.Epoch, mv.Partition, mv.To)
					}
				}
			}
			c.steps = append(c.steps, reason)
			c.plan, c.done = next, map[pair]bool{}
			continue
		}
		pending := false
		for _, mv := range mustTransition(t, c.cfg, c.plan).Moves() {
			key := pair{mv.Partition, mv.To}
			if !c.done[key] {
				c.done[key], pending = true, true
				break
			}
		}
		if !pending {
			if !c.plan.Stable() {
				t.Fatalf("step %d: change in progress, every move complete, yet %q", step, reason)
			}
			return
		}
	}
	t.Fatalf("no stable plan after %d steps: %+v (steps %q)", limit, c.plan, c.steps)
}

// TestDecideConverges applies Decide repeatedly, with every transfer
// completing, from [a b c] until the plan is stable at [a b c d e].
func TestDecideConverges(t *testing.T) {
	cfg := transitionConfig()
	want := []string{"a", "b", "c", "d", "e"}
	t.Run("both join at once", func(t *testing.T) {
		c := &cluster{cfg: cfg, plan: NewPlan([]string{"a", "b", "c"}, 0), desired: want}
		c.run(t, 1000, nil)
		if !c.plan.Stable() || !slices.Equal(c.plan.Members, want) || c.plan.Epoch != 3 {
			t.Fatalf("final plan %+v after %q", c.plan, c.steps)
		}
	})
	t.Run("second joins during the first", func(t *testing.T) {
		c := &cluster{cfg: cfg, plan: NewPlan([]string{"a", "b", "c"}, 0), desired: []string{"a", "b", "c", "d"}}
		c.run(t, 1000, func(step int) {
			if step == 2 {
				c.desired = want
			}
		})
		// Joins are serialised: d's change commits before e's starts.
		if !c.plan.Stable() || !slices.Equal(c.plan.Members, want) || c.plan.Epoch != 5 {
			t.Fatalf("final plan %+v after %q", c.plan, c.steps)
		}
	})
}

// TestDecideConvergesProperty checks that, with everyone up and every
// transfer completing, Decide reaches a stable plan whose members are the
// desired set from any start, in a bounded number of steps.
func TestDecideConvergesProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := transitionConfig()
		pool := names("n", 8)
		start := rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 1, len(pool), rapid.ID[string]).Draw(rt, "start")
		desired := rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 1, len(pool), rapid.ID[string]).Draw(rt, "desired")
		c := &cluster{cfg: cfg, plan: NewPlan(start, 0), desired: desired}
		c.run(rt, 10*cfg.Partitions*cfg.ReplicationFactor, nil)
		if !c.plan.Stable() || !slices.Equal(c.plan.Members, slices.Sorted(slices.Values(desired))) {
			rt.Fatalf("final plan %+v, desired %v", c.plan, desired)
		}
		if len(c.steps) > 2 {
			rt.Fatalf("%d plan changes for one change of membership: %s", len(c.steps), fmt.Sprint(c.steps))
		}
	})
}
