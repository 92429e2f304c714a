package gossip

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ringkv/ringkv/ring"
)

// TestDelegateRecoversPanic: a panic while the delegate handles a peer's
// bytes (here from an injected clock, which mergeRemote reads first) is
// recovered, logged at error level and counted, and the next message is
// taken as usual.
func TestDelegateRecoversPanic(t *testing.T) {
	log, w := newTestLogger(t, slog.LevelDebug)
	g := newMergeGossip()
	g.log = log
	d := &delegate{g: g}
	now := g.cfg.Now
	g.cfg.Now = func() time.Time { panic("injected bug") }
	rows := Map{"peer": {StatusJoined, 1, "127.0.0.1:7001", ""}}

	d.NotifyMsg(encodeRowsMsg(rows))
	d.MergeRemoteState(EncodeState(rows, ring.Plan{}), false)
	if got := g.Stats().RecoveredPanics; got != 2 {
		t.Fatalf("RecoveredPanics = %d, want 2", got)
	}
	for _, in := range []string{"NotifyMsg", "MergeRemoteState"} {
		if !w.contains("level=ERROR", `msg="panic recovered"`, "in="+in, `panic="injected bug"`, "stack=") {
			t.Errorf("no error line for the panic in %s", in)
		}
	}

	g.cfg.Now = now
	d.MergeRemoteState(EncodeState(rows, ring.Plan{}), false)
	if _, ok := g.Ring()["peer"]; !ok {
		t.Fatalf("a merge after the recovered panics was not taken: %v", g.Ring())
	}
}
