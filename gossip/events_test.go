package gossip

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// newBareGossip returns a Gossip with just what the event goroutine's
// helpers use, for driving applyEvent directly.
func newBareGossip(onLiveness func(string, Liveness)) *Gossip {
	g := &Gossip{cfg: Config{Name: "self", OnLiveness: onLiveness}, log: discardLogger(), events: newEventQueue()}
	empty := map[string]peer{}
	g.peers.Store(&empty)
	return g
}

func TestApplyEventTransitions(t *testing.T) {
	meta, _ := EncodeMeta(Meta{RPC: "r:1", Proto: 2})
	join := nodeEvent{kind: evJoin, name: "p", addr: "127.0.0.1:7", meta: meta}
	ev := func(k evKind) nodeEvent { return nodeEvent{kind: k, name: "p"} }
	tests := []struct {
		name     string
		events   []nodeEvent
		want     Liveness
		reported []Liveness // what OnLiveness saw, in order
	}{
		{"join", []nodeEvent{join}, Alive, []Liveness{Alive}},
		{"join then failure", []nodeEvent{join, ev(evLeave)}, Dead, []Liveness{Alive, Dead}},
		{"suspect then dead", []nodeEvent{join, ev(evSuspect), ev(evLeave)}, Dead, []Liveness{Alive, Suspect, Dead}},
		{"suspect refuted by a probe", []nodeEvent{join, ev(evSuspect), ev(evPingOK)}, Alive, []Liveness{Alive, Suspect, Alive}},
		{"probe of a healthy node is silent", []nodeEvent{join, ev(evPingOK), ev(evPingOK)}, Alive, []Liveness{Alive}},
		{"probe never revives the dead", []nodeEvent{join, ev(evLeave), ev(evPingOK)}, Dead, []Liveness{Alive, Dead}},
		{"suspect of a dead node ignored", []nodeEvent{join, ev(evLeave), ev(evSuspect)}, Dead, []Liveness{Alive, Dead}},
		{"suspect of an unknown node ignored", []nodeEvent{ev(evSuspect)}, Dead, nil},
		{"rejoin after death", []nodeEvent{join, ev(evLeave), join}, Alive, []Liveness{Alive, Dead, Alive}},
		{"bye then leave", []nodeEvent{join, ev(evBye), ev(evLeave)}, Dead, []Liveness{Alive, Dead}},
		{"events about self ignored", []nodeEvent{{kind: evJoin, name: "self"}, {kind: evLeave, name: "self"}}, Dead, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Liveness
			g := newBareGossip(func(name string, l Liveness) {
				if name == "p" {
					got = append(got, l)
				}
			})
			for _, e := range tc.events {
				g.applyEvent(e)
			}
			if l := g.Liveness("p"); l != tc.want {
				t.Errorf("Liveness = %s, want %s", l, tc.want)
			}
			if diff := cmp.Diff(tc.reported, got); diff != "" {
				t.Errorf("OnLiveness calls (-want +got):\n%s", diff)
			}
			if !g.Alive("self") {
				t.Error("self is not alive to itself")
			}
		})
	}
}

func TestApplyEventMetaAndBye(t *testing.T) {
	g := newBareGossip(nil)
	meta, _ := EncodeMeta(Meta{RPC: "r:1", HTTP: "h:1", RESP: "s:1", Proto: 3})
	g.applyEvent(nodeEvent{kind: evJoin, name: "p", addr: "127.0.0.1:7", meta: meta})
	got, ok := g.Meta("p")
	if !ok || !cmp.Equal(got, Meta{RPC: "r:1", HTTP: "h:1", RESP: "s:1", Proto: 3}) {
		t.Errorf("Meta = %+v, %v", got, ok)
	}
	// Bad metadata in an update keeps the last good one.
	g.applyEvent(nodeEvent{kind: evUpdate, name: "p", meta: []byte{0xc1}})
	if got, _ := g.Meta("p"); got.RPC != "r:1" {
		t.Errorf("bad update replaced meta: %+v", got)
	}
	g.applyEvent(nodeEvent{kind: evBye, name: "p"})
	if !(*g.peers.Load())["p"].bye {
		t.Error("bye not recorded")
	}
	g.applyEvent(nodeEvent{kind: evJoin, name: "p", addr: "127.0.0.1:7"})
	if (*g.peers.Load())["p"].bye {
		t.Error("a rejoin did not clear bye")
	}
	if _, ok := g.Meta("never-seen"); ok {
		t.Error("Meta of an unknown node reported known")
	}
	if peers := g.reachablePeers(); len(peers) != 1 || peers[0].Name != "p" || peers[0].Port != 7 {
		t.Errorf("reachablePeers = %+v", peers)
	}
}

func TestAliveAllocatesNothing(t *testing.T) {
	g := newBareGossip(nil)
	g.applyEvent(nodeEvent{kind: evJoin, name: "p", addr: "127.0.0.1:7"})
	if n := testing.AllocsPerRun(100, func() { _ = g.Alive("p") }); n != 0 {
		t.Errorf("Alive allocates %v times per call", n)
	}
}

func BenchmarkAlive(b *testing.B) {
	g := newBareGossip(nil)
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		g.applyEvent(nodeEvent{kind: evJoin, name: name, addr: "127.0.0.1:7"})
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Alive("e")
	}
}
