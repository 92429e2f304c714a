package ring

import (
	"fmt"
	"slices"
	"strings"
)

// This file holds the claimant's decision: given the plan, who wants to be
// in the ring and who is up, what plan comes next. It is pure; node runs
// it in a loop on every process and only the claimant publishes the
// result. Safety does not rest on there being a single claimant: a commit
// needs every pending pair complete for the plan's epoch, and gossip keeps
// the greater of two plans proposed from the same epoch.

// Situation is what the claimant knows when it decides.
type Situation struct {
	// Plan is the cluster's current plan as this node knows it.
	Plan Plan
	// Desired holds the names whose gossip row is "joined": the nodes that
	// want to be in the ring. Any order; repeats and Gone names are
	// ignored.
	Desired []string
	// Gone reports a node whose row is removed or left: it is never
	// required to be up and is never the claimant. Nil means none is.
	Gone func(name string) bool
	// Alive is the failure detector; the deciding node reports itself
	// alive. Nil means nobody is known alive, so nothing happens.
	Alive func(name string) bool
	// Complete reports whether node holds a full copy of partition for the
	// Plan's epoch. Nil means nothing is complete.
	Complete func(node string, partition int) bool
	// Zone gives the zone a node declares (its gossip row's), used for
	// nodes new to the plan; nodes in the plan keep the plan's zone. Nil
	// means no node declares one.
	Zone func(name string) string
	// Now is the deciding node's clock in milliseconds, the new plan's
	// Version.
	Now uint64
	// Transition optionally carries the placement of Plan, which the
	// caller usually holds already; Decide builds one when it is nil or of
	// another plan.
	Transition *Transition
}

func (s Situation) gone(name string) bool  { return s.Gone != nil && s.Gone(name) }
func (s Situation) alive(name string) bool { return s.Alive != nil && s.Alive(name) }
func (s Situation) complete(node string, partition int) bool {
	return s.Complete != nil && s.Complete(node, partition)
}

// desired returns Desired sorted, distinct and without Gone names.
func (s Situation) desired() []string {
	out := slices.DeleteFunc(sortedCopy(s.Desired), s.gone)
	if len(out) == 0 {
		return nil
	}
	return out
}

// involved returns Members ∪ Target ∪ desired without Gone names: the
// nodes that must be up for a change to start or commit.
func (s Situation) involved(desired []string) []string {
	all := slices.Concat(s.Plan.Members, s.Plan.Target, desired)
	slices.Sort(all)
	return slices.DeleteFunc(slices.Compact(all), s.gone)
}

// Claimant returns the node that acts on the cluster's behalf: the
// lowest-named node of Members ∪ Target ∪ Desired that is not Gone, "" when
// there is none. Liveness does not choose it: two nodes that disagree about
// who is alive would otherwise both act from the same epoch, and plans
// proposed concurrently could undo each other (a retarget racing a
// commit). While the claimant is down nothing changes, which costs
// nothing extra: a change can start or commit only with everyone up
// anyway, and removing the down claimant (it is then Gone) hands the role
// to the next node.
func Claimant(s Situation) string {
	best := ""
	for _, list := range [][]string{s.Plan.Members, s.Plan.Target, s.Desired} {
		for _, name := range list {
			if name != "" && (best == "" || name < best) && !s.gone(name) {
				best = name
			}
		}
	}
	return best
}

// Decide returns the plan the claimant should publish next, and ok false
// when there is nothing to do; reason says why in either case, for logs.
// The rules, in order:
//
//  1. No plan known (epoch 0): nothing; bootstrap makes the first plan.
//  2. Stable plan, desired differs from Members, everyone up: start moving
//     to desired.
//  3. Change in progress and a node of Target is no longer desired: move
//     to desired (retarget). Everyone need not be up: the serving ring
//     does not change and no data is dropped during a change. Nodes that
//     want to join while a change is in progress wait for its commit
//     unless a retarget happens anyway, which takes the whole desired set.
//  4. Change in progress, everyone up and every Move complete: commit.
//
// "Everyone up" means every node of Members ∪ Target ∪ desired that is not
// Gone is Alive. A desired set that New would refuse (too many nodes, a bad
// name) or that is empty keeps the plan.
func Decide(cfg Config, s Situation) (next Plan, reason string, ok bool) {
	plan := s.Plan
	if !plan.Known() {
		return Plan{}, "no plan known yet", false
	}
	if err := plan.Validate(); err != nil {
		return Plan{}, fmt.Sprintf("cannot decide: %v", err), false
	}
	desired := s.desired()
	down := slices.DeleteFunc(s.involved(desired), s.alive)

	if plan.Stable() {
		if slices.Equal(desired, plan.Members) {
			return Plan{}, fmt.Sprintf("stable at epoch %d", plan.Epoch), false
		}
		if why := refuseCheap(cfg, desired); why != "" {
			return Plan{}, why, false
		}
		if len(down) > 0 {
			return Plan{}, fmt.Sprintf("waiting to move to %s: %s", nameList(desired), isDown(down)), false
		}
		next := plan.MoveToZoned(desired, s.Zone, s.Now)
		if why := refuse(cfg, desired, next.Zones); why != "" {
			return Plan{}, why, false
		}
		return next, fmt.Sprintf("start moving to %s: %s", nameList(desired), s.changes(plan.Members, desired)), true
	}

	if dropped := minus(plan.Target, desired); len(dropped) > 0 {
		next := plan.MoveToZoned(desired, s.Zone, s.Now)
		if why := refuse(cfg, desired, next.Zones); why != "" {
			return Plan{}, why, false
		}
		return next, fmt.Sprintf("retarget to %s: %s", nameList(desired), s.leaving(dropped)), true
	}
	if len(down) > 0 {
		return Plan{}, fmt.Sprintf("epoch %d: waiting to commit: %s", plan.Epoch, isDown(down)), false
	}
	t := s.Transition
	if t == nil || !t.Plan().Equal(plan) || t.Current().Config() != cfg {
		var err error
		if t, err = NewTransition(cfg, plan); err != nil {
			return Plan{}, fmt.Sprintf("cannot decide: %v", err), false
		}
	}
	left := 0
	for _, mv := range t.moves {
		if !s.complete(mv.To, mv.Partition) {
			left++
		}
	}
	if left > 0 {
		return Plan{}, fmt.Sprintf("epoch %d: waiting for %d of %d transfers", plan.Epoch, left, len(t.moves)), false
	}
	return plan.Commit(s.Now), fmt.Sprintf("commit epoch %d: %s serve", plan.Epoch, nameList(plan.Target)), true
}

// refuseCheap explains why desired cannot be the next target, or returns
// "", checking names and counts only; it runs on every call.
func refuseCheap(cfg Config, desired []string) string {
	if len(desired) == 0 {
		return "no node wants to be in the ring: keeping the plan"
	}
	err := cfg.Validate()
	if err == nil {
		_, err = checkMembers(cfg, desired)
	}
	if err != nil {
		return fmt.Sprintf("cannot move to %s: %v", nameList(desired), err)
	}
	return ""
}

// refuse is refuseCheap plus building the ring of desired in zones, to
// catch hash collisions and bad zones; it runs only before acting.
func refuse(cfg Config, desired []string, zones map[string]string) string {
	if why := refuseCheap(cfg, desired); why != "" {
		return why
	}
	if _, err := NewZoned(cfg, desired, zones); err != nil {
		return fmt.Sprintf("cannot move to %s: %v", nameList(desired), err)
	}
	return ""
}

// minus returns the names of a not in b, in a's order; nil when none.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// changes describes the move from members to desired: "d joins; c leaves".
func (s Situation) changes(members, desired []string) string {
	var parts []string
	if joins := minus(desired, members); len(joins) > 0 {
		parts = append(parts, verb(joins, "joins", "join"))
	}
	var leaves, gone []string
	for _, x := range minus(members, desired) {
		if s.gone(x) {
			gone = append(gone, x)
		} else {
			leaves = append(leaves, x)
		}
	}
	if len(leaves) > 0 {
		parts = append(parts, verb(leaves, "leaves", "leave"))
	}
	if len(gone) > 0 {
		parts = append(parts, verb(gone, "is gone", "are gone"))
	}
	return strings.Join(parts, "; ")
}

// leaving describes target nodes no longer desired: "c is leaving".
func (s Situation) leaving(dropped []string) string {
	var leaving, gone []string
	for _, x := range dropped {
		if s.gone(x) {
			gone = append(gone, x)
		} else {
			leaving = append(leaving, x)
		}
	}
	var parts []string
	if len(leaving) > 0 {
		parts = append(parts, verb(leaving, "is leaving", "are leaving"))
	}
	if len(gone) > 0 {
		parts = append(parts, verb(gone, "is gone", "are gone"))
	}
	return strings.Join(parts, "; ")
}

func isDown(down []string) string { return verb(down, "is down", "are down") }

// maxListed bounds the names a reason lists, so that a cluster of hundreds
// of nodes still logs one short line.
const maxListed = 10

// verb joins names with the singular or plural form of a verb.
func verb(names []string, one, many string) string {
	if len(names) == 1 {
		return names[0] + " " + one
	}
	if len(names) > maxListed {
		return fmt.Sprintf("%s and %d more %s", strings.Join(names[:maxListed], ", "), len(names)-maxListed, many)
	}
	return strings.Join(names, ", ") + " " + many
}

// nameList prints names as fmt's %v does, shortened past maxListed.
func nameList(names []string) string {
	if len(names) > maxListed {
		return fmt.Sprintf("[%s ... %d in all]", strings.Join(names[:maxListed], " "), len(names))
	}
	return fmt.Sprint(names)
}
