package gossip

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
	"github.com/ringkv/ringkv/ring"
	"github.com/vmihailenco/msgpack/v5"
)

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Meta
	}{
		{"zero", Meta{}},
		{"typical", Meta{RPC: "10.0.0.1:9000", HTTP: "10.0.0.1:8080", RESP: "10.0.0.1:6379", Proto: 1}},
		{"ipv6", Meta{RPC: "[2001:db8::1]:9000", HTTP: "[2001:db8::1]:8080", RESP: "[2001:db8::1]:6379", Proto: 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeMeta(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			// Meta must stay well under memberlist's 512-byte limit.
			if len(b) > 128 {
				t.Errorf("encoded meta is %d bytes, want <= 128", len(b))
			}
			got, err := DecodeMeta(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.m, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMetaTooLarge(t *testing.T) {
	_, err := EncodeMeta(Meta{RPC: strings.Repeat("x", memberlist.MetaMaxSize)})
	if !errors.Is(err, ErrBadMeta) {
		t.Fatalf("EncodeMeta(huge) = %v, want ErrBadMeta", err)
	}
}

func TestDecodeMetaRejects(t *testing.T) {
	good, _ := EncodeMeta(Meta{RPC: "a:1"})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte{}, good...), 0xc0)},
		{"forged length", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"wrong type", []byte{0x01}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeMeta(tc.b); !errors.Is(err, ErrBadMeta) {
				t.Errorf("DecodeMeta = %v, want ErrBadMeta", err)
			}
		})
	}
}

func TestStateRoundTrip(t *testing.T) {
	m := Map{
		"n1": {StatusJoined, 3, "127.0.0.1:7946", ""},
		"n2": {StatusRemoved, 9, "", ""},
		"n3": {StatusLeaving, 1, "127.0.0.1:7947", ""},
	}
	p := ring.NewPlan([]string{"n1", "n3"}, 5)
	b := EncodeState(m, p)
	got, gotPlan, err := DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(p, gotPlan); diff != "" {
		t.Errorf("plan round trip (-want +got):\n%s", diff)
	}
	if got, gotPlan, err := DecodeState(EncodeState(Map{}, ring.Plan{})); err != nil || len(got) != 0 || gotPlan.Known() {
		t.Errorf("empty map round trip = %v, %+v, %v", got, gotPlan, err)
	}
	// Equal maps encode to equal bytes (rows sorted), whatever map order.
	if string(b) != string(EncodeState(m.Clone(), p)) {
		t.Error("encoding is not deterministic")
	}
}

func TestDecodeStateRejects(t *testing.T) {
	enc := func(ws any) []byte {
		b, err := msgpack.Marshal(ws)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := EncodeState(Map{"n1": {StatusJoined, 1, "a:1", ""}}, ring.NewPlan([]string{"n1"}, 1))
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-2]},
		{"trailing", append(append([]byte{}, good...), 0x00)},
		{"future format", enc(&wireState{Format: 3})},
		{"format 1 with a plan", enc(&wireState{Format: 1, Plan: &wirePlan{Epoch: 1, Members: []string{"a"}}})},
		{"format 2 without a plan field", enc(&wireStateV1{Format: 2})},
		{"not an array", enc(map[string]int{"Format": 2})},
		{"empty array", []byte{0x90}},
		{"format not a number", enc([]any{"2", nil, nil})},
		{"duplicate row", enc(&wireStateV1{Format: 1, Rows: []any{row{Name: "a", Status: StatusJoined}, row{Name: "a", Status: StatusLeft}}})},
		{"bad status", enc(&wireState{Format: 2, Rows: []any{row{Name: "a", Status: "zombie"}}})},
		{"bad name", enc(&wireStateV1{Format: 1, Rows: []any{row{Name: "", Status: StatusJoined}}})},
		{"unsorted plan", enc(&wireState{Format: 2, Plan: &wirePlan{Epoch: 1, Members: []string{"b", "a"}}})},
		{"plan with epoch 0", enc(&wireState{Format: 2, Plan: &wirePlan{Members: []string{"a"}}})},
		{"plan with bad name", enc(&wireState{Format: 2, Plan: &wirePlan{Epoch: 1, Members: []string{"a/b"}}})},
		{"forged array length", []byte{0x92, 0x01, 0xdd, 0x7f, 0xff, 0xff, 0xff}},
		{"oversized", make([]byte, maxStateBytes+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := DecodeState(tc.b); !errors.Is(err, ErrBadState) {
				t.Errorf("DecodeState = %v, want ErrBadState", err)
			}
		})
	}
}

// FuzzDecodeState feeds push-pull state and row deltas, with and without
// a plan: no panic, errors wrap ErrBadState, and whatever is accepted is
// a valid map and a plan that passes checkPlan, which encode and decode
// back unchanged.
func FuzzDecodeState(f *testing.F) {
	plan := ring.NewPlan([]string{"n1", "n2"}, 1893553445000)
	f.Add(EncodeState(Map{}, ring.Plan{}))
	f.Add(EncodeState(Map{"n1": {StatusJoined, 1, "127.0.0.1:1", ""}, "n2": {StatusRemoved, 4, "", ""}}, plan))
	f.Add(EncodeState(Map{"n1": {StatusLeaving, 1, "127.0.0.1:1", ""}}, plan.MoveTo([]string{"n2", "n3"}, 1893553445001)))
	f.Add(encodeRowsMsg(Map{"x": {StatusLeft, 2, "h:2", ""}})[1:])
	f.Add(encodePlanMsg(plan)[1:])
	zoned := plan
	zoned.Zones = map[string]string{"n1": "z1", "n2": "z2"}
	f.Add(EncodeState(Map{"n1": {StatusJoined, 1, "127.0.0.1:1", "z1"}, "n2": {StatusJoined, 2, "127.0.0.1:2", ""}}, zoned))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, p, err := DecodeState(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			return
		}
		if err := checkPlan(p); err != nil {
			t.Fatalf("accepted a bad plan %+v: %v", p, err)
		}
		again, againPlan, err := DecodeState(EncodeState(m, p))
		if err != nil {
			t.Fatalf("re-decode of a decoded state failed: %v", err)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("decode(encode(m)) != m:\n%s", diff)
		}
		if diff := cmp.Diff(p, againPlan); diff != "" {
			t.Fatalf("decode(encode(plan)) != plan:\n%s", diff)
		}
	})
}

// FuzzDecodePlan feeds the body of a plan message: no panic, errors wrap
// ErrBadState, and an accepted plan is known, passes checkPlan and encodes
// and decodes back unchanged.
func FuzzDecodePlan(f *testing.F) {
	plan := ring.NewPlan([]string{"n1", "n2"}, 1893553445000)
	f.Add(encodePlanMsg(plan)[1:])
	f.Add(encodePlanMsg(plan.MoveTo([]string{"n3"}, 1893553445001))[1:])
	zoned := plan
	zoned.Zones = map[string]string{"n2": "z2"}
	f.Add(encodePlanMsg(zoned)[1:])
	f.Add([]byte{0x95, 0x01, 0x01, 0x91, 0xa1, 'a', 0xc0, 0x92, 0xa1, 'a', 0xa1, 'z'})
	f.Add([]byte{0x94, 0x01, 0x01, 0x91, 0xa1, 'a', 0xc0})
	f.Add([]byte{0x94, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x91, 0xa1, 'a', 0x90})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePlan(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			return
		}
		if err := checkPlan(p); err != nil || !p.Known() {
			t.Fatalf("accepted plan %+v: %v", p, err)
		}
		again, err := decodePlan(encodePlanMsg(p)[1:])
		if err != nil {
			t.Fatalf("re-decode of a decoded plan failed: %v", err)
		}
		if diff := cmp.Diff(p, again); diff != "" {
			t.Fatalf("decode(encode(plan)) != plan:\n%s", diff)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	b, _ := EncodeMeta(Meta{RPC: "127.0.0.1:9000", HTTP: "127.0.0.1:8080", RESP: "127.0.0.1:6379", Proto: 1})
	f.Add(b)
	f.Add([]byte{0x81, 0xa1, 'p', 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("error %v does not wrap ErrBadMeta", err)
			}
			return
		}
		enc, err := EncodeMeta(m)
		if err != nil {
			// A decodable meta that no longer fits would be a bug.
			t.Fatalf("re-encode failed: %v", err)
		}
		again, err := DecodeMeta(enc)
		if err != nil || !cmp.Equal(m, again) {
			t.Fatalf("decode(encode(m)) = %+v, %v; want %+v", again, err, m)
		}
	})
}

// TestNotifyMsgIgnoresGarbage checks the delegate survives hostile user
// messages: unknown types and undecodable rows change nothing.
func TestNotifyMsgIgnoresGarbage(t *testing.T) {
	g := newBareGossip(nil)
	g.ring, g.dirty = Map{}, make(chan struct{}, 1)
	g.bcast = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 1 }, RetransmitMult: 1}
	g.applyEvent(nodeEvent{kind: evJoin, name: "other", addr: "h:1"})
	d := &delegate{g: g}
	for _, msg := range [][]byte{nil, {0}, {99, 1, 2}, {msgRows}, {msgRows, 0xdd, 0xff, 0xff, 0xff, 0xff}} {
		d.NotifyMsg(msg)
		d.MergeRemoteState(msg, false)
	}
	if len(g.ring) != 0 {
		t.Fatalf("garbage changed the map: %v", g.ring)
	}
	d.NotifyMsg(encodeRowsMsg(Map{"other": {StatusJoined, 1, "h:1", ""}}))
	if got := g.ring["other"]; got != (Entry{StatusJoined, 1, "h:1", ""}) {
		t.Fatalf("valid row not merged: %+v", got)
	}
	if g.bcast.NumQueued() != 1 {
		t.Errorf("new row was not queued for re-gossip: %d queued", g.bcast.NumQueued())
	}
}
