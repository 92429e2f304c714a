package gossip

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/ring"
)

// waitPlan waits until OnPlanChange last reported want on every node, and
// their Plan() agrees.
func waitPlan(t *testing.T, what string, nodes []*testNode, want ring.Plan) {
	t.Helper()
	for _, n := range nodes {
		n.plans.wait(t, what+" on "+n.name, want, converge)
		if got := n.g.Plan(); !got.Equal(want) {
			t.Fatalf("%s: %s reported %+v but Plan() is %+v", what, n.name, want, got)
		}
	}
}

// TestPlanSpreads: a plan bootstrapped on one node reaches nodes that join
// it; a plan proposed on any node reaches the others; a lower proposal
// changes nothing; concurrent proposals from the same epoch converge on
// the greater; a restarted node has the plan before it hears from anyone.
func TestPlanSpreads(t *testing.T) { synctest.Test(t, testPlanSpreads) }

func testPlanSpreads(t *testing.T) {
	top := t
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	n1 := startNode(t, top, "n1", t.TempDir(), nodeOpts{net: mn, bootstrap: true})
	first := n1.g.Plan()
	if first.Epoch != 1 || len(first.Members) != 1 || first.Members[0] != "n1" {
		t.Fatalf("bootstrapped plan = %+v", first)
	}
	seed := []string{n1.addr}
	dirs := map[string]string{"n2": t.TempDir(), "n3": t.TempDir()}
	n2 := startNode(t, top, "n2", dirs["n2"], nodeOpts{net: mn, seeds: seed})
	n3 := startNode(t, top, "n3", dirs["n3"], nodeOpts{net: mn, seeds: seed})
	nodes := []*testNode{n1, n2, n3}

	step(t, "nodes that join learn the bootstrapped plan", func(t *testing.T) {
		waitPlan(t, "bootstrap", nodes, first)
		waitAlive(t, nodes)
	})

	next := first.MoveTo([]string{"n1", "n2", "n3"}, versionAt(time.Now()))
	step(t, "a proposed plan reaches every node", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := n2.g.Propose(ctx, next); err != nil {
			t.Fatalf("Propose = %v", err)
		}
		waitPlan(t, "propose", nodes, next)
	})

	step(t, "a lower proposal changes nothing", func(t *testing.T) {
		before := len(n1.plans.all())
		if err := n3.g.Propose(t.Context(), first); err != nil {
			t.Fatalf("Propose(lower) = %v", err)
		}
		time.Sleep(5 * time.Second) // fake time: many gossip and push-pull rounds
		synctest.Wait()
		for _, n := range nodes {
			if got := n.g.Plan(); !got.Equal(next) {
				t.Errorf("%s: plan %+v after a lower proposal", n.name, got)
			}
		}
		if got := len(n1.plans.all()); got != before {
			t.Errorf("n1 reported %d more plans after a lower proposal", got-before)
		}
	})

	step(t, "concurrent proposals from one epoch converge on the greater", func(t *testing.T) {
		now := versionAt(time.Now())
		commit := next.Commit(now)
		retarget := next.MoveTo([]string{"n1", "n3"}, now)
		want := commit
		if retarget.Compare(commit) > 0 {
			want = retarget
		}
		errs := make(chan error, 2)
		go func() { errs <- n1.g.Propose(t.Context(), commit) }()
		go func() { errs <- n3.g.Propose(t.Context(), retarget) }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("Propose = %v", err)
			}
		}
		waitPlan(t, "concurrent", nodes, want)
		next = want
	})

	step(t, "a restarted node knows the plan from disk", func(t *testing.T) {
		n2.crash(t)
		n2 = startNode(t, top, "n2", dirs["n2"], nodeOpts{net: mn, addr: n2.addr})
		if got := n2.g.Plan(); !got.Equal(next) {
			t.Errorf("restarted n2 loaded plan %+v, want %+v", got, next)
		}
		n2.plans.wait(t, "restart", next, converge)
	})
}
