package gossip

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/ring"
)

// FuzzParseState feeds the ring-membership file read at start: no panic,
// and whatever is accepted is a valid, bounded map that saves and loads
// back unchanged.
func FuzzParseState(f *testing.F) {
	for _, m := range []Map{
		{},
		{"n1": {StatusJoined, 1, "127.0.0.1:7946", ""}, "n2": {StatusRemoved, 1893553445000, "", ""}},
		{"n1": {StatusLeaving, math.MaxUint64, "[::1]:1", ""}, "n3": {StatusLeft, 0, "h:2", ""}},
	} {
		b, err := json.MarshalIndent(stateFileBody{Format: stateFileFormat, Node: "n1", Members: m}, "", "  ")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	plan := ring.NewPlan([]string{"n1", "n2"}, 7).MoveTo([]string{"n2"}, 8)
	b, err := json.MarshalIndent(stateFileBody{Format: stateFileFormat, Node: "n1", Members: Map{}, Plan: &plan}, "", "  ")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":1,"node":"n1","members":null}`))
	f.Add([]byte(`{"format":1,"node":"n1","members":{"n1":{"status":"joined","version":-1}}}`))
	f.Add([]byte(`{"format":2,"node":"n1","members":{},"plan":{"epoch":0,"version":3,"members":[]}}`))
	f.Add([]byte(`{"format":2,"node":"n1","members":{},"plan":{"epoch":2,"version":3,"members":["a"],"target":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, p, err := parseState(b, "n1")
		if err != nil {
			return
		}
		if m == nil || len(m) > maxRows {
			t.Fatalf("accepted map of %d rows (nil %v)", len(m), m == nil)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid map: %v", err)
		}
		if err := checkPlan(p); err != nil || (!p.Known() && !cmp.Equal(p, ring.Plan{})) {
			t.Fatalf("accepted plan %+v: %v", p, err)
		}
		enc, err := encodeStateFile("n1", m, p)
		if err != nil {
			t.Fatal(err)
		}
		again, againPlan, err := parseState(enc, "n1")
		if err != nil {
			t.Fatalf("re-load of a saved state failed: %v", err)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("load(save(m)) != m:\n%s", diff)
		}
		if diff := cmp.Diff(p, againPlan); diff != "" {
			t.Fatalf("load(save(plan)) != plan:\n%s", diff)
		}
	})
}

// FuzzDelegateInput hands raw bytes to the delegate exactly as memberlist
// does: as a user message (NotifyMsg, from a datagram or a stream) and as
// push-pull state (MergeRemoteState). Whatever the bytes, no panic, no row
// ahead of the clock's limit, no name in the map that was neither there
// nor seen by memberlist, pending and the map stay within bounds, and the
// plan held is none or one this node accepts (checkPlan, version bound).
func FuzzDelegateInput(f *testing.F) {
	f.Add(encodeRowsMsg(Map{"peer": {StatusRemoved, 9, "127.0.0.1:7001", ""}}), false)
	f.Add(EncodeState(Map{"self": {StatusLeft, math.MaxUint64, "127.0.0.1:7000", ""}, "fake": {StatusJoined, 1, "10.0.0.1:1", ""}}, ring.Plan{}), true)
	f.Add(EncodeState(Map{"member": {StatusJoined, 4, "127.0.0.1:7002", ""}}, ring.NewPlan([]string{"member", "self"}, 5)), true)
	f.Add(encodePlanMsg(ring.NewPlan([]string{"peer"}, math.MaxUint64)), false)
	f.Add(encodePlanMsg(ring.NewPlan([]string{"a", "b"}, 9).MoveTo([]string{"b", "c"}, 10)), false)
	f.Add(append([]byte{msgBye}, "peer"...), false)
	f.Add([]byte{msgRows, 0x92, 0x01, 0xdd, 0x7f, 0xff, 0xff, 0xff}, false)
	f.Fuzz(func(t *testing.T, b []byte, pushPull bool) {
		g := newHostileGossip()
		g.applyEvent(nodeEvent{kind: evJoin, name: "member", addr: "127.0.0.1:7002"})
		d := &delegate{g: g}
		if pushPull {
			d.MergeRemoteState(b, false)
		} else {
			d.NotifyMsg(b)
		}
		limit := versionAt(testNow) + maxVersionLead
		rows := g.Ring()
		for name, e := range rows {
			switch name {
			case "self", "peer", "member":
			default:
				t.Errorf("name %q entered the map without joining memberlist", name)
			}
			if e.Version > limit {
				t.Errorf("row %q at version %d, limit %d", name, e.Version, limit)
			}
		}
		if err := rows.Validate(); err != nil {
			t.Errorf("map invalid after input: %v", err)
		}
		g.mu.Lock()
		pending := len(g.pending)
		g.mu.Unlock()
		if pending > maxPending || len(rows) > maxRows {
			t.Errorf("%d pending, %d rows", pending, len(rows))
		}
		if p := g.Plan(); p.Known() {
			if err := g.acceptable(p); err != nil {
				t.Errorf("took plan %+v: %v", p, err)
			}
		} else if !cmp.Equal(p, ring.Plan{}) {
			t.Errorf("unknown plan is not the zero Plan: %+v", p)
		}
	})
}
