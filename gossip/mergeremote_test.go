package gossip

import (
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// newMergeGossip returns a Gossip with what mergeRemote uses: a map in
// which self is joined at version 3 on addr.
func newMergeGossip() *Gossip {
	g := newBareGossip(nil)
	g.addr = "127.0.0.1:7000"
	g.ring = Map{"self": {StatusJoined, 3, g.addr, ""}}
	g.reassert = true
	g.dirty = make(chan struct{}, 1)
	g.bcast = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 3 }, RetransmitMult: 2}
	// A clock at the epoch keeps versions plain counters here, and "peer"
	// has joined memberlist, so its rows are taken.
	g.cfg.Now = func() time.Time { return time.UnixMilli(0) }
	g.applyEvent(nodeEvent{kind: evJoin, name: "peer", addr: "127.0.0.1:7001"})
	return g
}

func TestMergeRemoteSelfRows(t *testing.T) {
	tests := []struct {
		name     string
		reassert bool
		remote   Entry // the peer's row for self
		want     Entry
	}{
		{"stale remove before first sync is overruled", true,
			Entry{StatusRemoved, 5, "127.0.0.1:7000", ""}, Entry{StatusJoined, 6, "127.0.0.1:7000", ""}},
		{"stale leave before first sync is overruled", true,
			Entry{StatusLeft, 4, "127.0.0.1:7000", ""}, Entry{StatusJoined, 5, "127.0.0.1:7000", ""}},
		{"remove while running is accepted", false,
			Entry{StatusRemoved, 5, "127.0.0.1:7000", ""}, Entry{StatusRemoved, 5, "127.0.0.1:7000", ""}},
		{"old address at a newer version is re-stamped", false,
			Entry{StatusJoined, 9, "127.0.0.1:6999", ""}, Entry{StatusJoined, 10, "127.0.0.1:7000", ""}},
		{"older row changes nothing", true,
			Entry{StatusRemoved, 2, "127.0.0.1:7000", ""}, Entry{StatusJoined, 3, "127.0.0.1:7000", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newMergeGossip()
			g.reassert = tc.reassert
			g.mergeRemote(Map{"self": tc.remote, "peer": {StatusJoined, 1, "127.0.0.1:7001", ""}}, false)
			if got := g.ring["self"]; got != tc.want {
				t.Errorf("self row = %+v, want %+v", got, tc.want)
			}
			if got := g.ring["peer"]; got.Version != 1 {
				t.Errorf("peer row not merged: %+v", got)
			}
			select {
			case <-g.dirty:
			default:
				t.Error("a changed map did not wake the event goroutine")
			}
		})
	}
}

func TestMergeRemoteFullSyncEndsReassert(t *testing.T) {
	g := newMergeGossip()
	g.mergeRemote(Map{"peer": {StatusJoined, 1, "127.0.0.1:7001", ""}}, true)
	if g.reassert {
		t.Fatal("a push-pull did not end the reassert window")
	}
	g.mergeRemote(Map{"self": {StatusRemoved, 4, g.addr, ""}}, false)
	if st := g.ring["self"].Status; st != StatusRemoved {
		t.Errorf("after the first sync a removal must stick, got %q", st)
	}
	// Nothing new: no broadcast, no wake-up.
	<-g.dirty
	queued := g.bcast.NumQueued()
	g.mergeRemote(Map{"self": {StatusRemoved, 4, g.addr, ""}}, true)
	if g.bcast.NumQueued() != queued {
		t.Error("merging known rows queued a broadcast")
	}
	select {
	case <-g.dirty:
		t.Error("merging known rows woke the event goroutine")
	default:
	}
}
