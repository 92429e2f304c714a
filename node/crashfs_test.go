package node

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/internal/vfs/vfstest"
)

// TestNodesOnCrashFS: three whole nodes run on in-memory filesystems
// (Deps.FS) and memory gossip. Storage, hint logs, gossip's ring file and
// the transfers file all go through Deps.FS, so nothing lands in the real
// data directories. Then every node "crashes" at once (each filesystem
// keeps only what was synced) and restarts from what is left: each node
// still holds every write it acknowledged.
func TestNodesOnCrashFS(t *testing.T) {
	c := &crashCluster{names: []string{"n1", "n2", "n3"}, cfgs: map[string]Config{}, gossipAddr: map[string]string{}}
	fss := map[string]*vfstest.CrashFS{}
	var nodes []*runningNode
	for _, name := range c.names {
		cfg := testConfig(t, name)
		// An acknowledged write must be on disk, not only in the OS.
		cfg.Storage.Fsync = "always"
		c.cfgs[name] = cfg
		fss[name] = vfstest.NewCrashFS()
		nodes = append(nodes, c.start(t, name, fss[name]))
	}
	waitConverged(t, nodes...)

	const keys = 20
	for i := range keys {
		via := nodes[i%len(nodes)]
		url := fmt.Sprintf("/v1/kv/crash%%2F%d?w=all", i)
		if code, _, body := do(t, "PUT", httpURL(via, url), fmt.Appendf(nil, "v%d", i), nil); code != 204 {
			t.Fatalf("PUT key %d via %s = %d %s", i, via.cfg.Node.Name, code, body)
		}
	}
	for _, name := range c.names {
		checkOnlyInMemory(t, c.cfgs[name].Node.DataDir, fss[name])
	}

	// The crash: what each disk would hold now. The old nodes then stop
	// on their own filesystems, which the restarted ones never see.
	crashed := map[string]*vfstest.CrashFS{}
	for _, name := range c.names {
		crashed[name] = fss[name].CrashClone()
	}
	for _, n := range nodes {
		if err := n.stop(t); err != nil {
			t.Errorf("stop %s: %v", n.cfg.Node.Name, err)
		}
	}
	c.restartAndVerify(t, crashed, keys)
}

// crashCluster starts the nodes of TestNodesOnCrashFS on memory gossip.
type crashCluster struct {
	mn    gossiptest.Network
	names []string
	cfgs  map[string]Config
	// gossipAddr holds each node's memory gossip address once it first
	// started, so that it restarts on it and n1 stays the seed.
	gossipAddr map[string]string
}

func (c *crashCluster) start(t *testing.T, name string, fsys *vfstest.CrashFS) *runningNode {
	t.Helper()
	tr, err := c.mn.NewTransport(c.gossipAddr[name])
	if err != nil {
		t.Fatal(err)
	}
	c.gossipAddr[name] = tr.Addr()
	cfg := c.cfgs[name]
	cfg.Listen.Gossip = tr.Addr()
	if name != "n1" {
		cfg.Seeds = []string{c.gossipAddr["n1"]}
	}
	return startNodeWith(t, cfg, Deps{GossipTransport: tr, FS: fsys})
}

// restartAndVerify starts every node on its crashed filesystem and checks
// that each holds the keys it acknowledged, both in its own engine and
// read back through the cluster, and that nothing reached the real disk.
func (c *crashCluster) restartAndVerify(t *testing.T, crashed map[string]*vfstest.CrashFS, keys int) {
	t.Helper()
	var nodes []*runningNode
	for _, name := range c.names {
		n := c.start(t, name, crashed[name])
		for i := range keys {
			key, want := fmt.Sprintf("crash/%d", i), fmt.Sprintf("v%d", i)
			if live := n.engine.Get([]byte(key)).Live(); len(live) != 1 || string(live[0].Value) != want {
				t.Errorf("%s after the crash holds %s = %v, want %q", name, key, live, want)
			}
		}
		nodes = append(nodes, n)
	}
	waitConverged(t, nodes...)
	for i := range keys {
		url, want := fmt.Sprintf("/v1/kv/crash%%2F%d?r=all", i), fmt.Sprintf("v%d", i)
		if code, _, body := do(t, "GET", httpURL(nodes[0], url), nil, nil); code != 200 || string(body) != want {
			t.Fatalf("GET key %d after the crash = %d %q, want 200 %q", i, code, body, want)
		}
	}
	for _, name := range c.names {
		checkOnlyInMemory(t, c.cfgs[name].Node.DataDir, crashed[name])
	}
}

// checkOnlyInMemory fails t unless the real directory dir is empty while
// fsys holds the node's data there: the WAL, the hint logs and gossip's
// ring file.
func checkOnlyInMemory(t *testing.T, dir string, fsys *vfstest.CrashFS) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("real data directory %s holds %s; every write should go to Deps.FS", dir, e.Name())
	}
	have, err := fsys.List(dir)
	if err != nil {
		t.Fatalf("memory filesystem: %v", err)
	}
	for _, sub := range []string{"wal", "hints"} {
		if _, err := fsys.List(filepath.Join(dir, sub)); err != nil {
			t.Errorf("memory filesystem lacks %s in %s (it holds %v): %v", sub, dir, have, err)
		}
	}
	if _, err := fsys.ReadFile(filepath.Join(dir, gossip.StateFile)); err != nil {
		t.Errorf("memory filesystem lacks %s in %s (it holds %v): %v", gossip.StateFile, dir, have, err)
	}
}
