package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/ring"
	"github.com/vmihailenco/msgpack/v5"
)

// bigPlan returns a plan of n members (and, if target, a target of n-1 of
// them) with names of nameLen bytes.
func bigPlan(n, nameLen int, target bool) ring.Plan {
	var members []string
	for i := range n {
		members = append(members, fmt.Sprintf("%0*d", nameLen, i))
	}
	p := ring.NewPlan(members, 5)
	if target {
		p = p.MoveTo(members[1:], 6)
	}
	return p
}

func TestCheckPlan(t *testing.T) {
	good := ring.NewPlan([]string{"a", "b"}, 7)
	tests := []struct {
		name string
		p    ring.Plan
		ok   bool
	}{
		{"zero plan", ring.Plan{}, true},
		{"stable", good, true},
		{"change in progress", good.MoveTo([]string{"a", "b", "c"}, 8), true},
		{"epoch 2^48", ring.Plan{Epoch: maxPlanEpoch, Version: 1, Members: []string{"a"}}, true},
		{"largest lists", bigPlan(ring.MaxPlanMembers, maxNameLen, true), true},
		{"unsorted members", ring.Plan{Epoch: 1, Members: []string{"b", "a"}}, false},
		{"duplicate members", ring.Plan{Epoch: 1, Members: []string{"a", "a"}}, false},
		{"unsorted target", ring.Plan{Epoch: 2, Members: []string{"a"}, Target: []string{"c", "b"}}, false},
		{"empty target", ring.Plan{Epoch: 2, Members: []string{"a"}, Target: []string{}}, false},
		{"no members", ring.Plan{Epoch: 1, Members: []string{}}, false},
		{"epoch 0 with members", ring.Plan{Members: []string{"a"}}, false},
		{"epoch past the bound", ring.Plan{Epoch: maxPlanEpoch + 1, Members: []string{"a"}}, false},
		{"epoch 2^64-1", ring.Plan{Epoch: math.MaxUint64, Members: []string{"a"}}, false},
		{"empty name", ring.Plan{Epoch: 1, Members: []string{""}}, false},
		{"slash in name", ring.Plan{Epoch: 1, Members: []string{"a/b"}}, false},
		{"control character", ring.Plan{Epoch: 1, Members: []string{"a\nb"}}, false},
		{"name too long for gossip", ring.Plan{Epoch: 1, Members: []string{strings.Repeat("x", maxNameLen+1)}}, false},
		{"invalid UTF-8", ring.Plan{Epoch: 1, Members: []string{"a\xff"}}, false},
		{"too many members", bigPlan(ring.MaxPlanMembers+1, 5, false), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPlan(tc.p)
			if tc.ok && err != nil {
				t.Fatalf("checkPlan = %v, want ok", err)
			}
			if !tc.ok && !errors.Is(err, ring.ErrBadPlan) {
				t.Fatalf("checkPlan = %v, want ring.ErrBadPlan", err)
			}
		})
	}
}

// newPlanGossip is newHostileGossip with a known plan installed.
func newPlanGossip(p ring.Plan) *Gossip {
	g := newHostileGossip()
	g.plan.Store(&p)
	return g
}

// drainDirty reports whether the event goroutine was woken, and clears it.
func drainDirty(g *Gossip) bool {
	select {
	case <-g.dirty:
		return true
	default:
		return false
	}
}

// TestMergePlanKeepsGreater: a peer's plan replaces ours only when it is
// greater under Plan.Compare; a taken plan is re-gossiped and wakes the
// event goroutine, an ignored one does neither.
func TestMergePlanKeepsGreater(t *testing.T) {
	now := versionAt(testNow)
	cur := ring.NewPlan([]string{"peer", "self"}, now-10)
	next := cur.MoveTo([]string{"new", "peer", "self"}, now)
	tests := []struct {
		name  string
		in    ring.Plan
		taken bool
	}{
		{"next epoch", next, true},
		{"same epoch, newer version", ring.NewPlan([]string{"peer", "self"}, now-9), true},
		{"same epoch and version, greater members", ring.NewPlan([]string{"peer", "self", "z"}, now-10), true},
		{"equal", cur, false},
		{"older version", ring.NewPlan([]string{"peer", "self"}, now-11), false},
		{"unknown plan", ring.Plan{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newPlanGossip(cur)
			g.mergePlan(tc.in, "test")
			want := cur
			if tc.taken {
				want = tc.in
			}
			if got := g.Plan(); !got.Equal(want) {
				t.Fatalf("plan = %+v, want %+v", got, want)
			}
			if woke := drainDirty(g); woke != tc.taken {
				t.Errorf("event goroutine woken = %v, want %v", woke, tc.taken)
			}
			if queued := g.bcast.NumQueued(); queued != map[bool]int{true: 1, false: 0}[tc.taken] {
				t.Errorf("%d broadcasts queued", queued)
			}
		})
	}
}

// TestMergePlanRefusesFarFutureVersions: like rows, a plan whose version
// is more than maxVersionLead ahead of the clock is refused.
func TestMergePlanRefusesFarFutureVersions(t *testing.T) {
	limit := versionAt(testNow) + maxVersionLead
	for _, tc := range []struct {
		version uint64
		taken   bool
	}{{limit, true}, {limit + 1, false}, {math.MaxUint64, false}} {
		g := newHostileGossip()
		p := ring.NewPlan([]string{"self"}, tc.version)
		g.mergePlan(p, "test")
		if got := g.Plan().Equal(p); got != tc.taken {
			t.Errorf("plan at version %d (limit %d) taken = %v, want %v", tc.version, limit, got, tc.taken)
		}
	}
}

// TestPlanPushPull: two nodes exchange push-pull state through their
// delegates, as memberlist does; each ends with the greater plan, and the
// maps merge as before.
func TestPlanPushPull(t *testing.T) {
	now := versionAt(testNow)
	a := newPlanGossip(ring.NewPlan([]string{"peer", "self"}, now-5))
	b := newHostileGossip() // knows no plan yet
	b.ring = Map{"self": {StatusJoined, 1, b.addr, ""}, "peer": {StatusJoined, 9, "127.0.0.1:7001", ""}}
	da, db := &delegate{g: a}, &delegate{g: b}
	want := a.Plan()

	sa, sb := da.LocalState(false), db.LocalState(false)
	da.MergeRemoteState(sb, false)
	db.MergeRemoteState(sa, false)
	for name, g := range map[string]*Gossip{"a": a, "b": b} {
		if got := g.Plan(); !got.Equal(want) {
			t.Errorf("%s: plan after push-pull = %+v, want %+v", name, got, want)
		}
		if v := g.Ring()["peer"].Version; v != 9 {
			t.Errorf("%s: map not merged: peer row version %d", name, v)
		}
	}

	// b moves on; the next exchange brings a the newer plan.
	newer := want.MoveTo([]string{"self"}, now)
	b.mergePlan(newer, "test")
	da.MergeRemoteState(db.LocalState(false), false)
	if got := a.Plan(); !got.Equal(newer) {
		t.Errorf("a did not take the newer plan: %+v", got)
	}
	// The older plan coming back changes nothing.
	drainDirty(a)
	da.MergeRemoteState(EncodeState(a.Ring(), want), false)
	if got := a.Plan(); !got.Equal(newer) || drainDirty(a) {
		t.Errorf("an older plan by push-pull changed things: %+v", got)
	}
}

func TestPlanWireRoundTrip(t *testing.T) {
	m := Map{"n1": {StatusJoined, 3, "127.0.0.1:7946", ""}}
	for _, p := range []ring.Plan{
		{},
		ring.NewPlan([]string{"n1"}, 0),
		ring.NewPlan([]string{"n1", "n2"}, 9).MoveTo([]string{"n2", "n3"}, 10),
		bigPlan(ring.MaxPlanMembers, maxNameLen, true),
	} {
		gotMap, gotPlan, err := DecodeState(EncodeState(m, p))
		if err != nil {
			t.Fatalf("DecodeState(EncodeState(plan %d)) = %v", p.Epoch, err)
		}
		if diff := cmp.Diff(m, gotMap); diff != "" {
			t.Errorf("map round trip (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(p, gotPlan); diff != "" {
			t.Errorf("plan round trip (-want +got):\n%s", diff)
		}
		if !p.Known() {
			continue
		}
		msg := encodePlanMsg(p)
		if msg[0] != msgPlan {
			t.Fatalf("plan message type %d", msg[0])
		}
		got, err := decodePlan(msg[1:])
		if err != nil {
			t.Fatalf("decodePlan = %v", err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("plan message round trip (-want +got):\n%s", diff)
		}
	}
}

// TestDecodeStateFormat1: the push-pull state of a node from before plans
// ([1, rows]) is still read, with no plan; row deltas are still sent in
// that format, so such nodes keep reading them.
func TestDecodeStateFormat1(t *testing.T) {
	m := Map{"n1": {StatusJoined, 3, "127.0.0.1:7946", ""}, "n2": {StatusLeft, 4, "", ""}}
	v1, err := msgpack.Marshal(&wireStateV1{Format: 1, Rows: []any{
		row{Name: "n1", Status: StatusJoined, Version: 3, Addr: "127.0.0.1:7946"},
		row{Name: "n2", Status: StatusLeft, Version: 4},
	}})
	if err != nil {
		t.Fatal(err)
	}
	gotMap, gotPlan, err := DecodeState(v1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, gotMap); diff != "" || gotPlan.Known() {
		t.Errorf("format 1: plan %+v, map diff:\n%s", gotPlan, diff)
	}
	if msg := encodeRowsMsg(m); string(msg[1:]) != string(v1) {
		t.Errorf("row deltas are not sent in format 1: %x", msg[1:])
	}
}

func TestDecodePlanRejects(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := encodePlanMsg(ring.NewPlan([]string{"a"}, 1))[1:]
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"nil", []byte{0xc0}},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte{}, good...), 0xc0)},
		{"three fields", enc([]any{1, 1, []string{"a"}})},
		{"unknown plan", enc(&wirePlan{})},
		{"unsorted", enc(&wirePlan{Epoch: 1, Members: []string{"b", "a"}})},
		{"bad name", enc(&wirePlan{Epoch: 1, Members: []string{"a/b"}})},
		{"empty target", enc(&wirePlan{Epoch: 1, Members: []string{"a"}, Target: []string{}})},
		{"huge epoch", enc(&wirePlan{Epoch: math.MaxUint64, Members: []string{"a"}})},
		{"too many members", enc(&wirePlan{Epoch: 1, Members: bigPlan(ring.MaxPlanMembers+1, 4, false).Members})},
		{"forged array length", []byte{0x94, 0x01, 0x01, 0xdd, 0x7f, 0xff, 0xff, 0xff}},
		{"oversized", make([]byte, maxPlanBytes+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := decodePlan(tc.b); !errors.Is(err, ErrBadState) {
				t.Errorf("decodePlan = %+v, %v; want ErrBadState", p, err)
			}
		})
	}
}

// TestHostilePlansRefused: plans a rogue could send (by broadcast, direct
// message or push-pull) that are malformed, far in the future or oversized
// are refused, logged sparingly, and the node still takes a good plan
// afterwards.
func TestHostilePlansRefused(t *testing.T) {
	now := versionAt(testNow)
	cur := ring.NewPlan([]string{"peer", "self"}, now)
	g := newPlanGossip(cur)
	lg, w := newTestLogger(t, slog.LevelInfo)
	g.log = lg
	d := &delegate{g: g}
	raw := func(p wirePlan) []byte {
		b, err := msgpack.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{msgPlan}, b...)
	}
	state := func(p wirePlan) []byte {
		b, err := msgpack.Marshal(&wireState{Format: stateFormat, Rows: []any{}, Plan: &p})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hostile := []wirePlan{
		{Epoch: cur.Epoch + 1, Version: now, Members: []string{"self", "peer"}},              // unsorted
		{Epoch: cur.Epoch + 1, Version: math.MaxUint64, Members: []string{"peer", "self"}},   // far future
		{Epoch: cur.Epoch + 1, Version: now + maxVersionLead + 1, Members: []string{"self"}}, // just past the lead
		{Epoch: math.MaxUint64, Version: now, Members: []string{"self"}},                     // epoch that would wrap
		{Epoch: cur.Epoch + 1, Version: now, Members: []string{"a/b"}},                       // bad name
		{Epoch: cur.Epoch + 1, Version: now, Members: []string{"x\x00"}},                     // control character
		{Epoch: cur.Epoch + 1, Version: now, Members: bigPlan(ring.MaxPlanMembers+1, 8, false).Members},
		{Epoch: cur.Epoch + 1, Version: now, Members: []string{"self"}, Target: []string{}},
	}
	for _, p := range hostile {
		d.NotifyMsg(raw(p))
		d.MergeRemoteState(state(p), false)
	}
	d.NotifyMsg(append([]byte{msgPlan}, make([]byte, maxPlanBytes+1)...))
	d.NotifyMsg([]byte{msgPlan})
	if got := g.Plan(); !got.Equal(cur) {
		t.Fatalf("a hostile plan was taken: %+v", got)
	}
	if drainDirty(g) || g.bcast.NumQueued() != 0 {
		t.Error("a hostile plan woke the event goroutine or was re-gossiped")
	}
	if !w.contains("level=WARN", "refusing a cluster plan") {
		t.Error("refused plans were not logged")
	}
	w.mu.Lock()
	lines := len(w.lines)
	w.mu.Unlock()
	if lines > 2 {
		t.Errorf("%d hostile plans logged %d lines, want at most 2 (one per limiter)", 2*len(hostile)+2, lines)
	}
	good := cur.MoveTo([]string{"new", "peer", "self"}, now+1)
	d.NotifyMsg(encodePlanMsg(good))
	if got := g.Plan(); !got.Equal(good) {
		t.Errorf("after hostile plans a good one was not taken: %+v", got)
	}
}

// TestPlanBroadcastIsNamed: a newer plan replaces an older one still
// queued for gossip, and a plan too large for a gossip packet is not
// queued at all (push-pull and direct sends carry it).
func TestPlanBroadcastIsNamed(t *testing.T) {
	now := versionAt(testNow)
	g := newHostileGossip()
	p1 := ring.NewPlan([]string{"self"}, now-2)
	p2 := p1.MoveTo([]string{"peer", "self"}, now-1)
	g.mergePlan(p1, "test")
	g.mergePlan(p2, "test")
	if n := g.bcast.NumQueued(); n != 1 {
		t.Fatalf("%d broadcasts queued after two plans, want 1", n)
	}
	msgs := g.bcast.GetBroadcasts(0, 1400)
	if len(msgs) != 1 || string(msgs[0]) != string(encodePlanMsg(p2)) {
		t.Fatalf("queued broadcast is not the newer plan: %x", msgs)
	}

	g = newHostileGossip()
	big := bigPlan(100, 40, false)
	big.Version = now
	if len(encodePlanMsg(big)) <= maxPlanBroadcast {
		t.Fatal("test plan fits a gossip packet")
	}
	g.mergePlan(big, "test")
	if !g.Plan().Equal(big) || g.bcast.NumQueued() != 0 {
		t.Errorf("oversized plan: taken %v, %d broadcasts queued", g.Plan().Equal(big), g.bcast.NumQueued())
	}
}

// TestPlanStats: Stats reports the plan's epoch.
func TestPlanStats(t *testing.T) {
	g := newHostileGossip()
	if e := g.Stats().PlanEpoch; e != 0 {
		t.Errorf("PlanEpoch without a plan = %d", e)
	}
	g.mergePlan(ring.Plan{Epoch: 7, Version: 1, Members: []string{"self"}}, "test")
	if e := g.Stats().PlanEpoch; e != 7 {
		t.Errorf("PlanEpoch = %d, want 7", e)
	}
}

// TestPlanRefusalLogIsRateLimited pins the limiter to the clock.
func TestPlanRefusalLogIsRateLimited(t *testing.T) {
	g := newHostileGossip()
	lg, w := newTestLogger(t, slog.LevelInfo)
	g.log = lg
	now := testNow
	g.cfg.Now = func() time.Time { return now }
	bad := ring.NewPlan([]string{"self"}, math.MaxUint64)
	for range 50 {
		g.mergePlan(bad, "test")
	}
	now = now.Add(logEvery)
	g.mergePlan(bad, "test")
	w.mu.Lock()
	lines := slices.Clone(w.lines)
	w.mu.Unlock()
	if len(lines) != 2 || !strings.Contains(lines[1], "messages_not_logged=49") {
		t.Errorf("51 refused plans logged %d lines: %q", len(lines), lines)
	}
}
