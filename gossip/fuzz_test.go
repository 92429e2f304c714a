package gossip

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseState feeds the ring-membership file read at start: no panic,
// and whatever is accepted is a valid, bounded map that saves and loads
// back unchanged.
func FuzzParseState(f *testing.F) {
	for _, m := range []Map{
		{},
		{"n1": {StatusJoined, 1, "127.0.0.1:7946"}, "n2": {StatusRemoved, 1893553445000, ""}},
		{"n1": {StatusLeaving, math.MaxUint64, "[::1]:1"}, "n3": {StatusLeft, 0, "h:2"}},
	} {
		b, err := json.MarshalIndent(stateFileBody{Format: stateFileFormat, Node: "n1", Members: m}, "", "  ")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":1,"node":"n1","members":null}`))
	f.Add([]byte(`{"format":1,"node":"n1","members":{"n1":{"status":"joined","version":-1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseState(b, "n1")
		if err != nil {
			return
		}
		if m == nil || len(m) > maxRows {
			t.Fatalf("accepted map of %d rows (nil %v)", len(m), m == nil)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid map: %v", err)
		}
		enc, err := json.Marshal(stateFileBody{Format: stateFileFormat, Node: "n1", Members: m})
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseState(enc, "n1")
		if err != nil {
			t.Fatalf("re-parse of a saved map failed: %v", err)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("parse(save(m)) != m:\n%s", diff)
		}
	})
}

// FuzzDelegateInput hands raw bytes to the delegate exactly as memberlist
// does: as a user message (NotifyMsg, from a datagram or a stream) and as
// push-pull state (MergeRemoteState). Whatever the bytes, no panic, no row
// ahead of the clock's limit, no name in the map that was neither there
// nor seen by memberlist, and pending and the map stay within bounds.
func FuzzDelegateInput(f *testing.F) {
	f.Add(encodeRowsMsg(Map{"peer": {StatusRemoved, 9, "127.0.0.1:7001"}}), false)
	f.Add(EncodeState(Map{"self": {StatusLeft, math.MaxUint64, "127.0.0.1:7000"}, "fake": {StatusJoined, 1, "10.0.0.1:1"}}), true)
	f.Add(EncodeState(Map{"member": {StatusJoined, 4, "127.0.0.1:7002"}}), true)
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
		ring := g.Ring()
		for name, e := range ring {
			switch name {
			case "self", "peer", "member":
			default:
				t.Errorf("name %q entered the map without joining memberlist", name)
			}
			if e.Version > limit {
				t.Errorf("row %q at version %d, limit %d", name, e.Version, limit)
			}
		}
		if err := ring.Validate(); err != nil {
			t.Errorf("map invalid after input: %v", err)
		}
		g.mu.Lock()
		pending := len(g.pending)
		g.mu.Unlock()
		if pending > maxPending || len(ring) > maxRows {
			t.Errorf("%d pending, %d rows", pending, len(ring))
		}
	})
}
