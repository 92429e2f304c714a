package node

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
)

// TestRESPProtectedModeBeforeLookup: protected mode refuses a remote peer
// whatever it sends first, an unknown command or a known one with the
// wrong number of arguments included, and closes the connection.
func TestRESPProtectedModeBeforeLookup(t *testing.T) {
	for _, args := range [][]string{{"NOSUCHCOMMAND"}, {"GET"}, {"ECHO", "a", "b"}} {
		t.Run(args[0], func(t *testing.T) {
			m := newMetrics(metricSources{})
			g := newGate(nil, true, "0.0.0.0:6380", m, testkit.Logger(t))
			g.loopbackPeer = func(string) bool { return false } // every peer is remote
			c := dialRESP(t, startRESPGate(t, g, m))
			r := c.do(t, args...)
			if e, _ := r.(respError); !strings.HasPrefix(string(e), "DENIED ") {
				t.Fatalf("%v from a remote peer in protected mode: %v, want DENIED", args, r)
			}
			if err := c.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.rd.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("connection still open after DENIED: %v", err)
			}
			if got := refusedCount(t, m, "resp", refuseProtected); got != 1 {
				t.Errorf("refused{resp,protected_mode} = %v, want 1", got)
			}
		})
	}
}
