package node

import (
	"context"
	"testing"
	"time"

	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/internal/testkit"
)

// TestNodesOnMemoryGossip: three whole nodes run in this process with
// their gossip on an in-memory network (NewWith's Deps), join through the
// first, and serve a write at W=all that every node then reads at R=all.
// A gossip packet or stream never touches a socket, so the failure
// detector cannot be misled by a loaded machine's UDP.
func TestNodesOnMemoryGossip(t *testing.T) {
	var mn gossiptest.Network
	start := func(name string, seeds ...string) *runningNode {
		t.Helper()
		tr, err := mn.NewTransport("")
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(t, name, seeds...)
		cfg.Listen.Gossip = tr.Addr()
		n, err := NewWith(cfg, testkit.Logger(t).With("test_node", name), Deps{GossipTransport: tr})
		if err != nil {
			t.Fatalf("NewWith(%s): %v", name, err)
		}
		if got := n.Addrs().Gossip; got != tr.Addr() {
			t.Fatalf("%s gossips at %s, want the memory transport's %s", name, got, tr.Addr())
		}
		ctx, cancel := context.WithCancel(context.Background())
		rn := &runningNode{Node: n, cancel: cancel, done: make(chan error, 1)}
		go func() { rn.done <- n.Run(ctx) }()
		t.Cleanup(func() { rn.stop(t) })
		return rn
	}
	n1 := start("n1")
	n2 := start("n2", n1.Addrs().Gossip)
	n3 := start("n3", n1.Addrs().Gossip)
	nodes := []*runningNode{n1, n2, n3}
	waitConverged(t, nodes...)

	url := "/v1/kv/fake%2F1"
	if code, _, body := do(t, "PUT", httpURL(n2, url+"?w=all"), []byte("v1"), nil); code != 204 {
		t.Fatalf("PUT = %d %s", code, body)
	}
	for _, n := range nodes {
		if code, _, body := do(t, "GET", httpURL(n, url+"?r=all"), nil, nil); code != 200 || string(body) != "v1" {
			t.Fatalf("GET on %s = %d %q, want 200 v1", n.cfg.Node.Name, code, body)
		}
	}
	for _, n := range nodes {
		if err := n.stop(t); err != nil {
			t.Errorf("stop %s: %v", n.cfg.Node.Name, err)
		}
	}
}

// TestNewInstallsPlan: New installs the placement of the plan gossip read
// (here a bootstrap) itself, with gossip not yet started; Run starts it.
func TestNewInstallsPlan(t *testing.T) {
	var mn gossiptest.Network
	tr, err := mn.NewTransport("")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "n1")
	cfg.Listen.Gossip = tr.Addr()
	n, err := NewWith(cfg, testkit.Logger(t), Deps{GossipTransport: tr})
	if err != nil {
		t.Fatal(err)
	}
	if p := n.place.Load(); p == nil || p.Plan().Epoch != 1 {
		t.Fatalf("placement before Run: %+v, want the bootstrap plan", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &runningNode{Node: n, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- n.Run(ctx) }()
	t.Cleanup(func() { rn.stop(t) })
	testkit.Eventually(t, time.Minute, "the node to see itself alive", func() bool { return n.liveMembers() == 1 })
}
