package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

// TestBadTokensFileFailsFirst: a damaged auth.tokens_file fails New before
// anything is opened (no storage in the data directory, no gossip bound),
// so the operator sees the error at once and nothing needs closing.
func TestBadTokensFileFailsFirst(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.Auth.TokensFile = filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(cfg.Auth.TokensFile, []byte("ops admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(cfg, testkit.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "auth.tokens_file") || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("New = %v, want an error naming auth.tokens_file line 1", err)
	}
	ents, err := os.ReadDir(cfg.Node.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("data directory holds %v after the failed New, want it untouched", names)
	}
}

// TestWarnStorageTuning: snapshots turned off and segments below 1 MiB,
// which Validate accepts for benchmarks, are each warned of at start; the
// defaults are not.
func TestWarnStorageTuning(t *testing.T) {
	warnings := func(change func(*Config)) string {
		t.Helper()
		cfg := testConfig(t, "n1")
		change(&cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		var buf testkit.Buffer
		n, err := newNode(cfg, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err != nil {
			t.Fatal(err)
		}
		n.warnStorageTuning()
		return buf.String()
	}
	if got := warnings(func(*Config) {}); got != "" {
		t.Errorf("defaults warn: %s", got)
	}
	got := warnings(func(c *Config) { c.Storage.SnapshotBytes = -1 })
	if !strings.Contains(got, "storage.snapshot_bytes is negative") || strings.Contains(got, "segment_bytes is below") {
		t.Errorf("snapshots off: logged %q, want only the snapshot warning", got)
	}
	got = warnings(func(c *Config) { c.Storage.SegmentBytes, c.Storage.SnapshotBytes = 4096, 4096 })
	if !strings.Contains(got, "storage.segment_bytes is below 1 MiB") || strings.Contains(got, "snapshot_bytes is negative") {
		t.Errorf("4 KiB segments: logged %q, want only the segment warning", got)
	}
}
