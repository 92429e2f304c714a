package replica

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// TestQuorumsFor: a read or write goes to Replicas then Pending, and
// needs R or W of each side, resolved against N and capped by the side's
// size; without a change in progress there is one side, exactly as before.
func TestQuorumsFor(t *testing.T) {
	abc, abd := []string{"a", "b", "c"}, []string{"a", "b", "d"}
	for _, tc := range []struct {
		name                   string
		w                      Quorum
		reps, pending, targets []string
		nodes                  []string
		curNeed, nextNeed      int
		nextNodes              []string // nil: no target side
		err                    error
	}{
		{name: "stable", w: QuorumMajority, reps: abc, targets: abc, nodes: abc, curNeed: 2},
		{name: "stable same set other order", w: 3, reps: abc, targets: []string{"c", "a", "b"}, nodes: abc, curNeed: 3},
		{name: "stable no targets", w: 1, reps: abc, nodes: abc, curNeed: 1},
		{name: "join", w: QuorumMajority, reps: abc, pending: []string{"d"}, targets: abd,
			nodes: []string{"a", "b", "c", "d"}, curNeed: 2, nextNeed: 2, nextNodes: abd},
		{name: "join all", w: QuorumAll, reps: abc, pending: []string{"d"}, targets: abd,
			nodes: []string{"a", "b", "c", "d"}, curNeed: 3, nextNeed: 3, nextNodes: abd},
		{name: "two new", w: QuorumOne, reps: abc, pending: []string{"d", "e"}, targets: []string{"a", "d", "e"},
			nodes: []string{"a", "b", "c", "d", "e"}, curNeed: 1, nextNeed: 1, nextNodes: []string{"a", "d", "e"}},
		{name: "shrink caps the target side", w: QuorumAll, reps: abc, targets: []string{"a", "b"},
			nodes: abc, curNeed: 3, nextNeed: 2, nextNodes: []string{"a", "b"}},
		{name: "pending repeated in replicas is sent once", w: 2, reps: abc, pending: []string{"c", "d"}, targets: []string{"c", "d", "a"},
			nodes: []string{"a", "b", "c", "d"}, curNeed: 2, nextNeed: 2, nextNodes: []string{"c", "d", "a"}},
		{name: "bad quorum", w: 4, reps: abc, pending: []string{"d"}, targets: abd, err: ErrBadQuorum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := quorumsFor(tc.w, QuorumMajority, 3, tc.reps, tc.pending, tc.targets)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.nodes, q.nodes); d != "" {
				t.Errorf("nodes (-want +got):\n%s", d)
			}
			if q.cur.need != tc.curNeed || !slices.Equal(q.cur.nodes, tc.reps) {
				t.Errorf("current side %+v, want need %d of %v", q.cur, tc.curNeed, tc.reps)
			}
			if q.joint() != (tc.nextNodes != nil) || q.next.need != tc.nextNeed || !slices.Equal(q.next.nodes, tc.nextNodes) {
				t.Errorf("target side %+v (joint %v), want need %d of %v", q.next, q.joint(), tc.nextNeed, tc.nextNodes)
			}
		})
	}
}

// TestJointTallyProperty checks a tally of two sides against a direct
// count: met when every side has need acks among its nodes, lost as soon
// as one side's remaining nodes cannot make its need, a node in both
// sides counting for both.
func TestJointTallyProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		total := rapid.IntRange(1, 7).Draw(t, "total")
		nodes := make([]string, total)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("n%d", i)
		}
		pick := func(label string) side {
			var s side
			for _, n := range nodes {
				if rapid.Bool().Draw(t, label+" has "+n) {
					s.nodes = append(s.nodes, n)
				}
			}
			if len(s.nodes) == 0 {
				s.nodes = nodes[:1]
			}
			s.need = rapid.IntRange(1, len(s.nodes)).Draw(t, label+" need")
			return s
		}
		sides := []side{pick("cur"), pick("next")}
		tl := newJointTally(nodes, sides[0], sides[1])
		acked, failed := map[string]bool{}, map[string]bool{}
		for _, node := range rapid.Permutation(nodes).Draw(t, "order") {
			if rapid.Bool().Draw(t, "ok") {
				tl.ack(node)
				tl.fail(node, errors.New("late")) // a later answer is ignored
				acked[node] = true
			} else {
				tl.fail(node, errors.New("x"))
				tl.ack(node)
				failed[node] = true
			}
			anyLost, allMet := false, true
			for _, s := range sides {
				a, f := 0, 0
				for _, n := range s.nodes {
					if acked[n] {
						a++
					}
					if failed[n] {
						f++
					}
				}
				anyLost = anyLost || len(s.nodes)-f < s.need
				allMet = allMet && a >= s.need
			}
			want := pending
			if anyLost {
				want = lost
			} else if allMet {
				want = met
			}
			if got := tl.state(); got != want {
				t.Fatalf("acked %v failed %v, sides %+v: state %d, want %d", acked, failed, sides, got, want)
			}
		}
	})
}

func TestJointTallyErr(t *testing.T) {
	nodes := []string{"a", "b", "c", "d"}
	tl := newJointTally(nodes, side{nodes: []string{"a", "b", "c"}, need: 2}, side{nodes: []string{"a", "b", "d"}, need: 2})
	tl.ack("a")
	tl.ack("c")
	tl.fail("b", errors.New("b broke"))
	tl.fail("d", errors.New("d broke"))
	if tl.state() != lost {
		t.Fatalf("state %d, want lost: the target side has only a", tl.state())
	}
	e := tl.err("put")
	if e.Need != 2 || e.Got != 2 || e.TargetNeed != 2 || e.TargetGot != 1 || len(e.Failures) != 2 {
		t.Fatalf("err %+v", e)
	}
	msg := e.Error()
	for _, s := range []string{"put quorum not reached", "need 2, got 2 of the current replicas", "need 2, got 1 of the replicas after the change", "d broke"} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q lacks %q", msg, s)
		}
	}
	one := newTally(2, []string{"a", "b", "c"})
	one.ack("a")
	one.fail("b", errors.New("x"))
	one.fail("c", errors.New("y"))
	if e := one.err("put"); e.TargetNeed != 0 || strings.Contains(e.Error(), "after the change") {
		t.Errorf("a stable write's error mentions a change: %v", e)
	}
}

// TestReachableSides: the unavailable pre-check counts each side on its
// own: its live nodes, and for a sloppy write as many of its down nodes as
// there are live stand-ins.
func TestReachableSides(t *testing.T) {
	ts := []target{{"a", actLocal}, {"b", actDown}, {"c", actSend}, {"d", actDown}}
	s, tg := []string{"a", "b", "c"}, []string{"a", "b", "d"}
	upSet := func(up ...string) func(string) bool {
		return func(n string) bool { return slices.Contains(up, n) }
	}
	for _, tc := range []struct {
		name      string
		side      []string
		fallbacks []string
		sloppy    bool
		alive     func(string) bool
		want      int
	}{
		{"all targets", nil, nil, false, upSet(), 2},
		{"current strict", s, []string{"x"}, false, upSet("x"), 2},
		{"target strict", tg, []string{"x"}, false, upSet("x"), 1},
		{"target one stand-in", tg, []string{"x"}, true, upSet("x"), 2},
		{"target two stand-ins", tg, []string{"x", "y"}, true, upSet("x", "y"), 3},
		{"target dead stand-in", tg, []string{"x", "y"}, true, upSet("y"), 2},
		{"all sloppy", nil, []string{"x", "y", "z"}, true, upSet("x", "y", "z"), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reachable(ts, tc.side, tc.fallbacks, tc.sloppy, tc.alive); got != tc.want {
				t.Fatalf("= %d, want %d", got, tc.want)
			}
		})
	}
}

// TestStandInPool: a node that gets its own copy of a write never keeps
// another's as a hint, so its acknowledgement cannot count twice.
func TestStandInPool(t *testing.T) {
	fb := []string{"x", "d", "y"}
	if got := standInPool(fb, []string{"a", "b", "c", "d"}); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("= %v, want [x y]", got)
	}
	if got := standInPool(fb, []string{"a"}); &got[0] != &fb[0] || len(got) != 3 {
		t.Errorf("nothing to remove: = %v, want fallbacks itself", got)
	}
	if got := standInPool(fb, []string{"x", "d", "y"}); len(got) != 0 {
		t.Errorf("= %v, want none", got)
	}
	if !slices.Equal(fb, []string{"x", "d", "y"}) {
		t.Errorf("fallbacks modified: %v", fb)
	}
}

// TestUnavailableJoint: the pre-check error names both sides.
func TestUnavailableJoint(t *testing.T) {
	ts := []target{{"a", actLocal}, {"b", actSend}, {"c", actDown}, {"d", actDown}}
	e := unavailable("put", 2, 2, ts)
	e.TargetNeed, e.TargetReachable = 2, 1
	msg := e.Error()
	for _, s := range []string{"put unavailable", "need 2, only 2 reachable of the current replicas", "need 2, only 1 reachable of the replicas after the change", "nothing was sent", "c:", "d:"} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q lacks %q", msg, s)
		}
	}
}

// TestJointQuorumErrorWire: a joint quorum error keeps both sides across
// the wire, and ErrDropAborted keeps its identity.
func TestJointQuorumErrorWire(t *testing.T) {
	qe := &QuorumError{Op: "put", Need: 2, Got: 2, TargetNeed: 2, TargetGot: 1, Failures: map[string]error{"d": ErrReplicaDown}}
	b, err := MarshalReply(Response{}, qe)
	if err != nil {
		t.Fatal(err)
	}
	_, err = UnmarshalReply("peer", b)
	var got *QuorumError
	if !errors.As(err, &got) || got.TargetNeed != 2 || got.TargetGot != 1 || got.Need != 2 || got.Got != 2 {
		t.Fatalf("round trip: %#v", err)
	}
	b, err = MarshalReply(Response{}, fmt.Errorf("dropping: %w", ErrDropAborted))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalReply("peer", b); !errors.Is(err, ErrDropAborted) {
		t.Fatalf("err = %v, want ErrDropAborted", err)
	}
}

// TestRefuses: the stale check refuses only a node that is neither a
// current nor a pending replica in a known plan not older than the
// sender's.
func TestRefuses(t *testing.T) {
	reps, pending := []string{"a", "b", "c"}, []string{"d"}
	for _, tc := range []struct {
		self      string
		own, sent uint64
		want      bool
	}{
		{"a", 5, 4, false}, // a replica
		{"d", 5, 4, false}, // a pending replica
		{"x", 5, 4, true},  // sender behind
		{"x", 5, 5, true},  // same plan: the sender should not have asked
		{"x", 5, 0, true},  // sender without a plan
		{"x", 5, 6, false}, // sender ahead: this node is behind
		{"x", 0, 0, false}, // no plan here: nothing to judge by
	} {
		if got := refuses(tc.self, reps, pending, tc.own, tc.sent); got != tc.want {
			t.Errorf("refuses(%s, own %d, sent %d) = %v, want %v", tc.self, tc.own, tc.sent, got, tc.want)
		}
	}
}

// TestCheckReach: the pre-check refuses when either side is short, and
// says which; a stable write is judged as before.
func TestCheckReach(t *testing.T) {
	alive := func(n string) bool { return n != "c" && n != "d" }
	stable, err := quorumsFor(QuorumMajority, QuorumMajority, 3, []string{"a", "b", "c"}, nil, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if qe := checkReach("put", stable, plan(stable.nodes, "a", alive), nil, true, alive); qe != nil {
		t.Errorf("stable, c down: %v", qe)
	}
	join, err := quorumsFor(QuorumMajority, QuorumMajority, 3, []string{"a", "b", "c"}, []string{"d"}, []string{"b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	ts := plan(join.nodes, "a", alive)
	qe := checkReach("put", join, ts, nil, true, alive)
	if qe == nil || !qe.Unavailable || qe.Reachable != 2 || qe.TargetNeed != 2 || qe.TargetReachable != 1 || len(qe.Failures) != 2 {
		t.Fatalf("join, c and d down: %+v", qe)
	}
	// A live stand-in takes one down replica's copy: enough for the target side.
	if qe := checkReach("put", join, ts, []string{"x"}, true, func(n string) bool { return alive(n) || n == "x" }); qe != nil {
		t.Errorf("join with a stand-in: %v", qe)
	}
	if qe := checkReach("put", join, ts, []string{"x"}, false, func(n string) bool { return alive(n) || n == "x" }); qe == nil {
		t.Error("join with a stand-in under strict quorum passed")
	}
}

// TestJointReadTally: a read during a change (S = n1 n2 n3 moving to T =
// n1 n2 n4) asks n1 n2 n3 n4 and is met only when R of S and R of T
// answered. Two answers from S alone (the retiring n3 and n2) meet R=2 of
// S but not of T: a write acknowledged by W=2 of T (n1 and n4) may be on
// neither, so the read waits. Without a change the same answers meet it,
// as before.
func TestJointReadTally(t *testing.T) {
	s, tg := []string{"n3", "n1", "n2"}, []string{"n4", "n1", "n2"}
	for _, tc := range []struct {
		name    string
		r       Quorum
		targets []string
		pending []string
		acks    []string
		fails   []string
		want    outcome
	}{
		{"stable two", 2, s, nil, []string{"n3", "n2"}, nil, met},
		{"stable two failed", 2, s, nil, []string{"n3"}, []string{"n1", "n2"}, lost},
		{"retiring and a shared node", 2, tg, []string{"n4"}, []string{"n3", "n2"}, nil, pending},
		{"then the pending node", 2, tg, []string{"n4"}, []string{"n3", "n2", "n4"}, nil, met},
		{"shared nodes count for both", 2, tg, []string{"n4"}, []string{"n1", "n2"}, nil, met},
		{"target side lost", 2, tg, []string{"n4"}, []string{"n3", "n2"}, []string{"n1", "n4"}, lost},
		{"current side lost", 2, tg, []string{"n4"}, []string{"n4", "n2"}, []string{"n1", "n3"}, lost},
		{"one: the retiring node is not enough", 1, tg, []string{"n4"}, []string{"n3"}, nil, pending},
		{"one: a shared node is", 1, tg, []string{"n4"}, []string{"n1"}, nil, met},
		{"one: pending and retiring", 1, tg, []string{"n4"}, []string{"n4", "n3"}, nil, met},
		{"all", QuorumAll, tg, []string{"n4"}, []string{"n1", "n2", "n3"}, nil, pending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := quorumsFor(tc.r, QuorumMajority, 3, s, tc.pending, tc.targets)
			if err != nil {
				t.Fatal(err)
			}
			if tc.pending != nil && !slices.Equal(q.nodes, []string{"n3", "n1", "n2", "n4"}) {
				t.Fatalf("asks %v, want every current and pending replica", q.nodes)
			}
			tl := q.tally()
			for _, n := range tc.acks {
				tl.ack(n)
			}
			for _, n := range tc.fails {
				tl.fail(n, errors.New("x"))
			}
			if got := tl.state(); got != tc.want {
				t.Fatalf("state %d, want %d", got, tc.want)
			}
			if tc.want == lost && q.joint() {
				if e := tl.err("get"); e.TargetNeed == 0 || !strings.Contains(e.Error(), "get quorum not reached") {
					t.Errorf("err %v does not describe both sides", e)
				}
			}
		})
	}
}

// TestJointReadReach: a read's pre-check (no stand-ins, never sloppy)
// refuses when either side has fewer than R live nodes, and otherwise
// counts exactly as the single-side check always did.
func TestJointReadReach(t *testing.T) {
	s, tg := []string{"n3", "n1", "n2"}, []string{"n4", "n1", "n2"}
	down := func(ds ...string) func(string) bool {
		return func(n string) bool { return !slices.Contains(ds, n) }
	}
	for _, tc := range []struct {
		name          string
		r             Quorum
		targets       []string
		pending       []string
		alive         func(string) bool
		ok            bool
		reach, treach int
	}{
		{"stable all up", 2, s, nil, down(), true, 0, 0},
		{"stable one down", 2, s, nil, down("n2"), true, 0, 0},
		{"stable two down", 2, s, nil, down("n1", "n2"), false, 1, 0},
		{"change all up", 2, tg, []string{"n4"}, down(), true, 0, 0},
		{"change retiring only down", 2, tg, []string{"n4"}, down("n3"), true, 0, 0},
		{"change target side short", 2, tg, []string{"n4"}, down("n1", "n4"), false, 2, 1},
		{"change current side short", 2, tg, []string{"n4"}, down("n1", "n2"), false, 1, 1},
		{"change one, only the coordinator up", 1, tg, []string{"n4"}, down("n1", "n2", "n4"), false, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := quorumsFor(tc.r, QuorumMajority, 3, s, tc.pending, tc.targets)
			if err != nil {
				t.Fatal(err)
			}
			qe := checkReach("get", q, plan(q.nodes, "n3", tc.alive), nil, false, tc.alive)
			if tc.ok {
				if qe != nil {
					t.Fatalf("refused: %v", qe)
				}
				return
			}
			if qe == nil || !qe.Unavailable || qe.Reachable != tc.reach || qe.TargetReachable != tc.treach || qe.Op != "get" {
				t.Fatalf("= %+v, want unavailable with %d and %d reachable", qe, tc.reach, tc.treach)
			}
		})
	}
}
