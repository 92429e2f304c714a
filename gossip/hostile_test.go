package gossip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/ring"
	"github.com/vmihailenco/msgpack/v5"
)

// testNow is the fixed wall clock of the hostile-input tests.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newHostileGossip returns a Gossip as mergeRemote sees it: self and peer
// are ring members (peer also known to memberlist), the clock is testNow
// and the first push-pull is over.
func newHostileGossip() *Gossip {
	g := newMergeGossip()
	g.cfg.Now = func() time.Time { return testNow }
	g.reassert = false
	g.ring = Map{"self": {StatusJoined, 3, g.addr, ""}, "peer": {StatusJoined, 2, "127.0.0.1:7001", ""}}
	g.applyEvent(nodeEvent{kind: evJoin, name: "peer", addr: "127.0.0.1:7001"})
	return g
}

// TestMergeRemoteRefusesFarFutureVersions: a row whose version is far ahead
// of the clock (2^64-1 above all) is refused, for this node's row and for a
// peer's, so it can neither pin a status forever nor wrap a counter.
func TestMergeRemoteRefusesFarFutureVersions(t *testing.T) {
	limit := versionAt(testNow) + maxVersionLead
	tests := []struct {
		name    string
		version uint64
		refused bool
	}{
		{"2^64-1", math.MaxUint64, true},
		{"just past the lead", limit + 1, true},
		{"at the lead", limit, false},
		{"an ordinary counter", 9, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range []string{"self", "peer"} {
				g := newHostileGossip()
				before := g.ring.Clone()
				g.mergeRemote(Map{target: {StatusRemoved, tc.version, before[target].Addr, ""}}, true)
				got := g.ring[target]
				if tc.refused && got != before[target] {
					t.Errorf("%s: row at version %d accepted: %+v", target, tc.version, got)
				}
				if !tc.refused && (got.Status != StatusRemoved || got.Version != tc.version) {
					t.Errorf("%s: row at version %d refused: %+v", target, tc.version, got)
				}
			}
		})
	}
}

// TestMapSetNeverWraps: a change made on top of the largest version keeps
// it (saturates) instead of wrapping to 0, and versions follow the clock.
func TestMapSetNeverWraps(t *testing.T) {
	m := Map{"x": {StatusRemoved, math.MaxUint64, "a:1", ""}}
	if got := m.Set("x", StatusJoined, "a:1", 0)["x"].Version; got != math.MaxUint64 {
		t.Errorf("Set on version 2^64-1 gave version %d", got)
	}
	if got := (Map{"x": {StatusJoined, 4, "", ""}}).Set("x", StatusLeft, "", 1000)["x"].Version; got != 1000 {
		t.Errorf("Set with clock 1000 over version 4 gave %d, want 1000", got)
	}
	if got := (Map{"x": {StatusJoined, 4000, "", ""}}).Set("x", StatusLeft, "", 1000)["x"].Version; got != 4001 {
		t.Errorf("Set with clock 1000 over version 4000 gave %d, want 4001", got)
	}
}

// TestRestartAfterMaxVersionRow: a data directory whose map holds this
// node removed at 2^64-1 (written before versions were bounded) no longer
// makes the restarted node's own row wrap to 0 and lose forever: rows from
// the far future are brought back to the clock, and the node's joined row
// is newer than all of them.
func TestRestartAfterMaxVersionRow(t *testing.T) {
	dir := t.TempDir()
	body, err := json.Marshal(stateFileBody{Format: stateFileFormat, Node: "n1", Members: Map{
		"n1": {StatusRemoved, math.MaxUint64, "127.0.0.1:20001", ""},
		"n2": {StatusRemoved, math.MaxUint64, "127.0.0.1:20002", ""},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), body, 0o644); err != nil {
		t.Fatal(err)
	}
	var mn gossiptest.Network
	tr, err := mn.NewTransport("127.0.0.1:20001")
	if err != nil {
		t.Fatal(err)
	}
	cfg := LocalConfig()
	cfg.Name, cfg.Dir, cfg.Transport = "n1", dir, tr
	cfg.Now = func() time.Time { return testNow }
	cfg.Logger, _ = newTestLogger(t, -4)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown()
	now, limit := versionAt(testNow), versionAt(testNow)+maxVersionLead
	self := g.Ring()["n1"]
	if self.Status != StatusJoined || self.Version <= now || self.Version > limit {
		t.Errorf("own row after restart = %+v, want joined with a version in (%d, %d]", self, now, limit)
	}
	if v := g.Ring()["n2"].Version; v > limit {
		t.Errorf("n2's row kept version %d, beyond %d", v, limit)
	}
	// A removal made by a peer before this start (at any version the peer
	// could have held) does not beat the fresh join.
	g.mergeRemote(Map{"n1": {StatusRemoved, now, "127.0.0.1:20001", ""}}, true)
	if st := g.Ring()["n1"].Status; st != StatusJoined {
		t.Errorf("an older removal beat the restart: %s", st)
	}
}

// TestFakeMembersStayOutOfTheRing: rows for names memberlist never saw join
// (40 in one broadcast, 40 more in one push-pull) are held pending, not put
// in the ring; a pending name that then joins memberlist enters the ring.
func TestFakeMembersStayOutOfTheRing(t *testing.T) {
	g := newHostileGossip()
	d := &delegate{g: g}
	fakes := func(prefix string) Map {
		m := Map{}
		for i := range 40 {
			m[fmt.Sprintf("%s%02d", prefix, i)] = Entry{StatusJoined, 1, fmt.Sprintf("10.9.9.%d:7946", i), ""}
		}
		return m
	}
	d.NotifyMsg(encodeRowsMsg(fakes("bcast")))
	d.MergeRemoteState(EncodeState(fakes("pushpull"), ring.Plan{}), false)
	want := []string{"peer", "self"}
	if got := g.RingMembers(); !slices.Equal(got, want) {
		t.Fatalf("ring after fake rows = %v, want %v", got, want)
	}
	if n := len(g.Ring()); n != 2 {
		t.Errorf("map grew to %d rows", n)
	}
	if n := len(g.pending); n > maxPending {
		t.Errorf("%d pending rows, limit %d", n, maxPending)
	}
	// Pending is full of fakes: a real node's row that arrives before its
	// memberlist join is dropped, and the next push-pull after the join
	// brings it.
	lateRow := Map{"late": {StatusJoined, 1, "127.0.0.1:7002", ""}}
	d.MergeRemoteState(EncodeState(lateRow, ring.Plan{}), false)
	g.applyEvent(nodeEvent{kind: evJoin, name: "late", addr: "127.0.0.1:7002"})
	d.MergeRemoteState(EncodeState(lateRow, ring.Plan{}), false)
	if got := g.RingMembers(); !slices.Equal(got, []string{"late", "peer", "self"}) {
		t.Errorf("after late joined memberlist the ring is %v", got)
	}
	// With room in pending, a held row enters the ring as soon as its name
	// completes memberlist's join.
	g = newHostileGossip()
	d = &delegate{g: g}
	d.NotifyMsg(encodeRowsMsg(lateRow))
	if slices.Contains(g.RingMembers(), "late") {
		t.Fatal("row for a name memberlist has not seen was put in the ring")
	}
	g.applyEvent(nodeEvent{kind: evJoin, name: "late", addr: "127.0.0.1:7002"})
	if got := g.RingMembers(); !slices.Equal(got, []string{"late", "peer", "self"}) {
		t.Errorf("held row not promoted on join: ring is %v", got)
	}
	// Rows for names memberlist knows go straight in.
	g.applyEvent(nodeEvent{kind: evJoin, name: "known", addr: "127.0.0.1:7003"})
	d.NotifyMsg(encodeRowsMsg(Map{"known": {StatusJoined, 1, "127.0.0.1:7003", ""}}))
	if !slices.Contains(g.RingMembers(), "known") {
		t.Errorf("row for a memberlist member not merged: %v", g.RingMembers())
	}
}

// TestMapRowLimit: a message with more than maxRows rows is refused whole,
// and the map never grows past maxRows names.
func TestMapRowLimit(t *testing.T) {
	big := Map{}
	for i := range maxRows + 1 {
		big[fmt.Sprintf("n%05d", i)] = Entry{StatusRemoved, 1, "", ""}
	}
	if _, _, err := DecodeState(EncodeState(big, ring.Plan{})); !errors.Is(err, ErrBadState) {
		t.Errorf("DecodeState(%d rows) = %v, want ErrBadState", len(big), err)
	}
	delete(big, "n00000")
	if _, _, err := DecodeState(EncodeState(big, ring.Plan{})); err != nil {
		t.Errorf("DecodeState(%d rows) = %v", len(big), err)
	}

	g := newHostileGossip()
	full := g.ring.Clone()
	for i := len(full); i < maxRows; i++ {
		full[fmt.Sprintf("m%05d", i)] = Entry{StatusRemoved, 1, "", ""}
	}
	g.ring = full
	g.applyEvent(nodeEvent{kind: evJoin, name: "extra", addr: "127.0.0.1:7009"})
	g.mergeRemote(Map{"extra": {StatusJoined, 1, "127.0.0.1:7009", ""}}, false)
	if _, ok := g.ring["extra"]; ok || len(g.ring) != maxRows {
		t.Errorf("map with %d rows took a new name (now %d rows)", maxRows, len(g.ring))
	}
}

// rogueDelegate is a memberlist delegate that answers every push-pull and
// piggybacks on every gossip packet a hostile ring map.
type rogueDelegate struct{ msg []byte }

func (r *rogueDelegate) NodeMeta(int) []byte                 { return nil }
func (r *rogueDelegate) NotifyMsg([]byte)                    {}
func (r *rogueDelegate) GetBroadcasts(int, int) [][]byte     { return [][]byte{r.msg} }
func (r *rogueDelegate) LocalState(bool) []byte              { return r.msg[1:] }
func (r *rogueDelegate) MergeRemoteState(buf []byte, _ bool) {}

// TestHostileRowsLeaveTheRingAlone: a rogue memberlist node joins a
// three-node cluster without encryption and pushes, by push-pull, by
// piggybacked broadcast and by direct datagrams, 40 fake members and rows
// removing every real node at version 2^64-1. The ring does not change,
// and removing a crashed node still works afterwards.
func TestHostileRowsLeaveTheRingAlone(t *testing.T) {
	synctest.Test(t, testHostileRowsLeaveTheRingAlone)
}

func testHostileRowsLeaveTheRingAlone(t *testing.T) {
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	var nodes []*testNode
	for i := 1; i <= 3; i++ {
		var seeds []string
		if i > 1 {
			seeds = []string{nodes[0].addr}
		}
		nodes = append(nodes, startNode(t, t, fmt.Sprintf("n%d", i), t.TempDir(), nodeOpts{net: mn, seeds: seeds, bootstrap: i == 1}))
	}
	all := names(nodes)
	waitRing(t, nodes, all)
	waitAlive(t, nodes)
	before := nodes[0].ring.Load()
	plan := nodes[0].g.Plan()
	waitPlan(t, "bootstrap", nodes, plan)

	hostile := Map{}
	for i := range 40 {
		hostile[fmt.Sprintf("fake%02d", i)] = Entry{StatusJoined, 1, fmt.Sprintf("10.9.9.%d:7946", i), ""}
	}
	for _, n := range nodes {
		hostile[n.name] = Entry{StatusRemoved, math.MaxUint64, n.addr, ""}
	}
	msg := encodeRowsMsg(hostile)
	tr, err := mn.NewTransport("")
	if err != nil {
		t.Fatal(err)
	}
	mc := memberlist.DefaultLocalConfig()
	mc.Name, mc.Transport, mc.Delegate = "rogue", tr, &rogueDelegate{msg: msg}
	mc.Logger = log.New(io.Discard, "", 0)
	rogue, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Shutdown()
	if _, err := rogue.Join([]string{nodes[0].addr}); err != nil {
		t.Fatalf("rogue join: %v", err)
	}
	for _, n := range nodes {
		if err := rogue.SendToAddress(memberlist.Address{Addr: n.addr, Name: n.name}, msg); err != nil {
			t.Fatal(err)
		}
	}
	// Several push-pull rounds (2 s each in the local profile) and many
	// gossip rounds carry the rogue's map to every node.
	time.Sleep(10 * time.Second)
	synctest.Wait()

	limit := versionAt(time.Now()) + maxVersionLead
	for _, n := range nodes {
		if !n.g.Alive("rogue") {
			t.Errorf("%s does not see the rogue alive; the test did not exercise memberlist's join", n.name)
		}
		for name, e := range n.g.Ring() {
			if !slices.Contains(all, name) || e.Version > limit || e.Status != StatusJoined {
				t.Errorf("%s took hostile row %q = %+v", n.name, name, e)
			}
		}
		if !n.ring.Load().Equal(before) {
			t.Errorf("%s's ring changed: %v", n.name, n.ringMembers())
		}
	}
	if !nodes[0].logw.contains("refusing ring-membership rows with a version far ahead") {
		t.Error("n1 did not log the refused rows")
	}

	// Plans no honest node makes, by datagram and by direct stream: all
	// refused, and the nodes keep the plan they had.
	wire := func(p wirePlan) []byte {
		b, err := msgpack.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{msgPlan}, b...)
	}
	now := versionAt(time.Now())
	for _, bad := range [][]byte{
		wire(wirePlan{Epoch: plan.Epoch + 1, Version: math.MaxUint64, Members: []string{"rogue"}}),
		wire(wirePlan{Epoch: math.MaxUint64, Version: now, Members: []string{"rogue"}}),
		wire(wirePlan{Epoch: plan.Epoch + 1, Version: now, Members: []string{"n2", "n1"}}),
		wire(wirePlan{Epoch: plan.Epoch + 1, Version: now, Members: []string{"rogue/x"}}),
		append([]byte{msgPlan}, bytes.Repeat([]byte{0x91}, 5000)...),
	} {
		for _, n := range nodes {
			if err := rogue.SendToAddress(memberlist.Address{Addr: n.addr, Name: n.name}, bad); err != nil {
				t.Fatal(err)
			}
			host, port, _ := net.SplitHostPort(n.addr)
			pn, _ := strconv.Atoi(port)
			if err := rogue.SendReliable(&memberlist.Node{Name: n.name, Addr: net.ParseIP(host), Port: uint16(pn)}, bad); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(2 * time.Second)
	synctest.Wait()
	for _, n := range nodes {
		if got := n.g.Plan(); !got.Equal(plan) {
			t.Errorf("%s took a hostile plan: %+v", n.name, got)
		}
	}
	if !nodes[1].logw.contains("refusing a cluster plan") {
		t.Error("n2 did not log the refused plans")
	}

	// remove NODE for a dead node still works.
	nodes[2].crash(t)
	testkit.Eventually(t, converge, "n1 to see n3 dead", func() bool { return nodes[0].g.Liveness("n3") == Dead })
	if err := nodes[0].g.Remove(t.Context(), "n3"); err != nil {
		t.Fatalf("Remove(n3) = %v", err)
	}
	waitRing(t, nodes[:2], []string{"n1", "n2"})
}

// TestRefusedRowsLogSparingly: a flood of refused rows logs one line per
// logEvery, saying how many messages it did not log.
func TestRefusedRowsLogSparingly(t *testing.T) {
	g := newHostileGossip()
	lg, w := newTestLogger(t, slog.LevelInfo)
	g.log = lg
	now := testNow
	g.cfg.Now = func() time.Time { return now }
	bad := Map{"peer": {StatusRemoved, math.MaxUint64, "", ""}}
	for range 100 {
		g.mergeRemote(bad, false)
	}
	now = now.Add(logEvery)
	g.mergeRemote(bad, false)
	w.mu.Lock()
	lines := slices.Clone(w.lines)
	w.mu.Unlock()
	if len(lines) != 2 || !strings.Contains(lines[1], "messages_not_logged=99") {
		t.Errorf("100+1 refused messages logged %d lines: %q", len(lines), lines)
	}
}

// deepMsgpack returns the msgpack map {"Zzz": [[[...nil...]]]} with depth
// nested one-element arrays: an unknown field whose value memberlist's
// decoder must skip.
func deepMsgpack(depth int) []byte {
	b := []byte{0x81, 0xa3, 'Z', 'z', 'z'}
	b = append(b, bytes.Repeat([]byte{0x91}, depth)...)
	return append(b, 0xc0)
}

// TestDeepMsgpackOnGossipPort: memberlist decodes its own messages with
// go-msgpack, whose decoder refuses nesting deeper than 1024 (its default
// MaxDepth) with an error instead of recursing until the stack overflows.
// A push-pull stream and a ping datagram nested 2,000 deep are refused and
// the node keeps gossiping. The depth stays small enough that, were the
// limit ever gone, the decode would succeed (and this test fail) rather
// than crash the test process.
func TestDeepMsgpackOnGossipPort(t *testing.T) { synctest.Test(t, testDeepMsgpackOnGossipPort) }

func testDeepMsgpackOnGossipPort(t *testing.T) {
	const depth = 2000
	top := t
	lingerInBubble(t)
	n1, rogue, joinAfter := rogueTarget(t, top, nodeOpts{})

	conn, err := rogue.DialTimeout(n1.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() { _, _ = conn.Write(append([]byte{mlPushPullMsg}, deepMsgpack(depth)...)) }()
	reply, err := io.ReadAll(conn)
	if err != nil || len(reply) != 0 {
		t.Errorf("deep push-pull answered %d bytes, err %v; want the stream closed unanswered", len(reply), err)
	}
	if !n1.logw.contains("Failed to read remote state", "maximum decoding depth exceeded") {
		t.Error("n1 did not log the refused push-pull")
	}

	if _, err := rogue.WriteTo(append([]byte{mlPingMsg}, deepMsgpack(depth)...), n1.addr); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	if !n1.logw.contains("Failed to decode ping request", "maximum decoding depth exceeded") {
		t.Error("n1 did not log the refused ping")
	}

	joinAfter()
}
