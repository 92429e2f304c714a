package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
)

// TestRESPDelRemovesValuesTheCoordinatorMissed: n3 is down while keys are
// SET through n1, comes back without them (the others keep no hint for it:
// their hint window is a nanosecond, and anti-entropy is off), and DEL
// through n3 removes them all the same. Before, n3's tombstone covered only
// what n3 held, and GET through n1 still returned the values.
func TestRESPDelRemovesValuesTheCoordinatorMissed(t *testing.T) {
	noRepair := func(c Config) Config {
		c.Hints.Window = time.Nanosecond
		c.AAE.Interval = 0
		return c
	}
	n1 := startNode(t, noRepair(testConfig(t, "n1")))
	seed := n1.Addrs().Gossip
	n2 := startNode(t, noRepair(testConfig(t, "n2", seed)))
	cfg3 := noRepair(testConfig(t, "n3", seed))
	n3 := startNode(t, cfg3)
	waitConverged(t, n1, n2, n3)
	if err := n3.stop(t); err != nil {
		t.Fatalf("stop n3: %v", err)
	}
	testkit.Eventually(t, 30*time.Second, "n3 seen down", func() bool { return n1.liveMembers() == 2 && n2.liveMembers() == 2 })
	c1 := dialRESP(t, n1.Addrs().RESP)
	const keys = 10
	for i := range keys {
		if got := c1.do(t, "SET", fmt.Sprint("k", i), "v"); got != "OK" {
			t.Fatalf("SET k%d = %v", i, got)
		}
	}
	cfg3.Listen.HTTP, cfg3.Listen.RESP = "127.0.0.1:0", "127.0.0.1:0"
	n3 = startNode(t, cfg3)
	waitConverged(t, n1, n2, n3)
	if n3.engine.Stats().Keys != 0 {
		t.Fatalf("n3 holds %d keys it was down for", n3.engine.Stats().Keys)
	}
	c3 := dialRESP(t, n3.Addrs().RESP)
	for i := range keys {
		if got := c3.do(t, "DEL", fmt.Sprint("k", i)); got != int64(1) {
			t.Fatalf("DEL k%d via n3 = %v, want 1", i, got)
		}
	}
	for i := range keys {
		if got := c1.do(t, "GET", fmt.Sprint("k", i)); got != (nilReply{}) {
			t.Errorf("GET k%d via n1 after DEL via n3 = %q, want nil", i, got)
		}
	}
}
