package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/ring"
)

// converge is how long (in the bubble's fake time) any cluster-wide
// condition may take to hold; the local profile needs about two seconds.
const converge = 15 * time.Second

// testNode is one gossip node plus what its callbacks reported, mirroring
// how the node package wires gossip to ring/.
type testNode struct {
	name string
	dir  string
	addr string // gossip address on the in-memory network
	g    *Gossip
	logw *testLogWriter

	ring  atomic.Pointer[ring.Ring] // rebuilt by OnRingChange
	plans *planRecorder             // what OnPlanChange reported

	mu       sync.Mutex // guards liveness, history and ringErr
	liveness map[string]Liveness
	history  map[string][]Liveness
	ringErr  error
}

type nodeOpts struct {
	net    *gossiptest.Network // required
	addr   string              // empty: a fresh address on net
	seeds  []string
	key    []byte
	keys   [][]byte // Config.Keys
	rejoin time.Duration
	// maxStreams is Config.MaxConcurrentStreams; 0 keeps the default.
	maxStreams int
	bootstrap  bool // Config.Bootstrap
	zone       string
}

// startNode starts a node with the local profile on an in-memory network;
// call it inside a synctest bubble, so that the failure detector's timers
// run on fake time that only moves when every goroutine waits, and no
// outcome depends on how loaded the machine is. Its shutdown and log
// capture are tied to owner (the top-level test, so a node started in one
// subtest outlives it); failures are reported on t. Logs go to t.Log at Info.
func startNode(t, owner *testing.T, name, dir string, o nodeOpts) *testNode {
	t.Helper()
	lg, w := newTestLogger(owner, slog.LevelInfo)
	n := &testNode{name: name, dir: dir, logw: w, plans: newPlanRecorder(), liveness: map[string]Liveness{}, history: map[string][]Liveness{}}
	tr, err := o.net.NewTransport(o.addr)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	cfg := LocalConfig()
	cfg.Name, cfg.Dir, cfg.Transport, cfg.Seeds, cfg.SecretKey = name, dir, tr, o.seeds, o.key
	cfg.RejoinInterval = o.rejoin
	cfg.Keys = o.keys
	cfg.MaxConcurrentStreams = o.maxStreams
	cfg.Bootstrap = o.bootstrap
	cfg.Zone = o.zone
	cfg.OnPlanChange = n.plans.record
	cfg.Meta = Meta{RPC: "rpc-" + name, HTTP: "http-" + name, RESP: "resp-" + name, Proto: 1}
	cfg.Logger = lg.With("test_node", name)
	cfg.OnRingChange = func(members []string) {
		r, err := ring.New(ring.DefaultConfig(), members)
		n.mu.Lock()
		n.ringErr = err
		n.mu.Unlock()
		if err == nil {
			n.ring.Store(r)
		}
	}
	cfg.OnLiveness = func(peer string, l Liveness) {
		n.mu.Lock()
		n.liveness[peer] = l
		n.history[peer] = append(n.history[peer], l)
		n.mu.Unlock()
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	n.g, n.addr = g, g.LocalAddr()
	owner.Cleanup(func() { _ = g.Shutdown() })
	if err := g.Start(owner.Context()); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return n
}

// crash stops the node without announcing anything, like kill -9.
func (n *testNode) crash(t *testing.T) {
	t.Helper()
	if err := n.g.halt(false); err != nil {
		t.Fatalf("crash %s: %v", n.name, err)
	}
}

// reported returns the liveness OnLiveness last reported for peer.
func (n *testNode) reported(peer string) (Liveness, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.liveness[peer]
	return l, ok
}

// ringMembersOf returns the members of the ring built by OnRingChange.
func (n *testNode) ringMembers() []string {
	if r := n.ring.Load(); r != nil {
		return r.Members()
	}
	return nil
}

func names(nodes []*testNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.name)
	}
	slices.Sort(out)
	return out
}

// waitRing waits until every node's ring map and the ring its callback
// built have exactly want as members, then checks the rings are identical.
func waitRing(t *testing.T, nodes []*testNode, want []string) {
	t.Helper()
	testkit.Eventually(t, converge, fmt.Sprintf("ring %v on every node", want), func() error {
		var b strings.Builder
		done := true
		for _, n := range nodes {
			m, cb := n.g.RingMembers(), n.ringMembers()
			done = done && slices.Equal(m, want) && slices.Equal(cb, want)
			fmt.Fprintf(&b, " %s: map %v callback %v;", n.name, m, cb)
		}
		if done {
			return nil
		}
		return errors.New(b.String())
	})
	first := nodes[0].ring.Load()
	for _, n := range nodes[1:] {
		if !n.ring.Load().Equal(first) {
			t.Fatalf("ring tables differ: %s fingerprint %x, %s fingerprint %x",
				nodes[0].name, first.Fingerprint(), n.name, n.ring.Load().Fingerprint())
		}
	}
}

// waitAlive waits until every node sees every other one as alive.
func waitAlive(t *testing.T, nodes []*testNode) {
	t.Helper()
	testkit.Eventually(t, converge, "every node to see every other one alive", func() error {
		var b strings.Builder
		done := true
		for _, a := range nodes {
			fmt.Fprintf(&b, "%s sees:", a.name)
			for _, m := range a.g.Members() {
				fmt.Fprintf(&b, " %s=%s/%s", m.Name, m.Liveness, m.Status)
			}
			b.WriteString("; ")
			for _, o := range nodes {
				done = done && a.g.Alive(o.name)
			}
		}
		if done {
			return nil
		}
		return errors.New(b.String())
	})
}

// TestCluster walks five nodes through the membership life cycle:
// convergence, a crash that does not change the ring, a restart that
// rejoins with the same ring, remove, a restart after remove, and leave.
func TestCluster(t *testing.T) { synctest.Test(t, testCluster) }

// step logs the start of one stage of a bubble test (which cannot use
// t.Run) and runs it.
func step(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	t.Logf("=== step: %s", name)
	f(t)
}

func testCluster(t *testing.T) {
	top := t
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	var nodes []*testNode
	dirs := map[string]string{}
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("n%d", i)
		dirs[name] = t.TempDir()
		var seeds []string
		if i > 1 {
			seeds = []string{nodes[0].g.LocalAddr()}
		}
		nodes = append(nodes, startNode(t, top, name, dirs[name], nodeOpts{net: mn, seeds: seeds}))
	}
	all := names(nodes)
	n1, n5 := nodes[0], nodes[4]
	seed := []string{n1.g.LocalAddr()}

	step(t, "five nodes converge on the same ring", func(t *testing.T) {
		waitRing(t, nodes, all)
		waitAlive(t, nodes)
		for _, n := range nodes {
			for _, peer := range nodes {
				meta, ok := n.g.Meta(peer.name)
				if !ok || meta.RPC != "rpc-"+peer.name || meta.Proto != 1 {
					t.Errorf("%s sees meta of %s = %+v, %v", n.name, peer.name, meta, ok)
				}
			}
		}
		if got := len(n1.g.Members()); got != 5 {
			t.Errorf("Members() has %d entries, want 5", got)
		}
	})

	versionBefore := n1.g.Ring()["n5"].Version

	step(t, "crash: others see it dead, ring unchanged", func(t *testing.T) {
		start := time.Now()
		n5.crash(t)
		others := nodes[:4]
		testkit.Eventually(t, converge, "every other node to see n5 dead", func() error {
			for _, n := range others {
				if l := n.g.Liveness("n5"); l != Dead {
					return fmt.Errorf("%s sees n5 %s", n.name, l)
				}
			}
			return nil
		})
		t.Logf("crash detected as dead by all four in %v", time.Since(start).Round(time.Millisecond))
		suspected := 0
		for _, n := range others {
			if l, ok := n.reported("n5"); !ok || l != Dead {
				t.Errorf("%s: OnLiveness last reported n5 %v (reported %v), want dead", n.name, l, ok)
			}
			n.mu.Lock()
			h := n.history["n5"]
			n.mu.Unlock()
			t.Logf("%s saw n5: %v", n.name, h)
			if slices.Contains(h, Suspect) {
				suspected++
			}
		}
		// Suspicion starts with some node's own failed probe, so at
		// least one node must have reported n5 suspect before dead.
		if suspected == 0 {
			t.Error("no node reported n5 suspect before dead")
		}
		waitRing(t, others, all) // still five members
		if !others[0].ring.Load().Contains("n5") {
			t.Fatal("crashed node left the ring")
		}
	})

	step(t, "restart with same name and dir rejoins with the same ring", func(t *testing.T) {
		before := n1.ring.Load()
		n5 = startNode(t, top, "n5", dirs["n5"], nodeOpts{net: mn, addr: n5.addr, seeds: seed})
		// The restarted node knows the ring from disk before hearing
		// from anyone.
		if got := n5.g.RingMembers(); !slices.Equal(got, all) {
			t.Fatalf("restarted node loaded ring %v, want %v", got, all)
		}
		nodes[4] = n5
		waitAlive(t, nodes)
		waitRing(t, nodes, all)
		if !n5.ring.Load().Equal(before) {
			t.Error("ring after restart differs from ring before the crash")
		}
		if v := n1.g.Ring()["n5"].Version; v != versionBefore {
			t.Errorf("restart bumped n5's row version from %d to %d; a crash must change nothing", versionBefore, v)
		}
	})

	step(t, "remove changes the ring on the other four", func(t *testing.T) {
		before := n1.ring.Load()
		n5.crash(t)
		testkit.Eventually(t, converge, "n1 to see n5 dead", func() bool { return n1.g.Liveness("n5") == Dead })
		if err := n1.g.Remove(t.Context(), "n1"); !errors.Is(err, ErrRemoveSelf) {
			t.Errorf("Remove(self) = %v, want ErrRemoveSelf", err)
		}
		if err := n1.g.Remove(t.Context(), "nope"); !errors.Is(err, ErrUnknownNode) {
			t.Errorf("Remove(unknown) = %v, want ErrUnknownNode", err)
		}
		if err := n1.g.Remove(t.Context(), "n5"); err != nil {
			t.Fatalf("Remove(n5) = %v", err)
		}
		if err := n1.g.Remove(t.Context(), "n5"); err != nil {
			t.Fatalf("second Remove(n5) = %v, want no-op", err)
		}
		four := nodes[:4]
		waitRing(t, four, names(four))
		if n1.ring.Load().Equal(before) {
			t.Error("ring tables did not change after remove")
		}
		if st := nodes[3].g.Ring()["n5"].Status; st != StatusRemoved {
			t.Errorf("n4 sees n5 as %q, want removed", st)
		}
		// Persisted: a fresh load of n3's file shows the removal.
		m, _, err := loadState(vfs.OSFS{}, nodes[2].dir, "n3")
		if err != nil || m["n5"].Status != StatusRemoved {
			t.Errorf("n3's persisted map: n5 = %+v, err %v", m["n5"], err)
		}
	})

	step(t, "a removed node that starts again rejoins", func(t *testing.T) {
		n5 = startNode(t, top, "n5", dirs["n5"], nodeOpts{net: mn, addr: n5.addr, seeds: seed})
		nodes[4] = n5
		waitRing(t, nodes, all)
		waitAlive(t, nodes)
	})

	step(t, "leave takes a node out of the ring on every node", func(t *testing.T) {
		n4 := nodes[3]
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := n4.g.Leave(ctx); err != nil {
			t.Fatalf("Leave = %v", err)
		}
		rest := []*testNode{nodes[0], nodes[1], nodes[2], nodes[4]}
		// Leave sent the row directly to every alive peer before
		// returning; they apply it as soon as they read it.
		waitRing(t, append(rest, n4), names(rest))
		if err := n4.g.Shutdown(); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		waitRing(t, rest, names(rest))
		testkit.Eventually(t, converge, "n1 to see n4 gone after its shutdown", func() bool { return n1.g.Liveness("n4") == Dead })
		if !n1.logw.contains("node left gossip (shut down cleanly)", "peer=n4") {
			t.Error("n1 did not log n4's graceful memberlist leave as such")
		}
		if err := n4.g.Leave(t.Context()); !errors.Is(err, ErrShutdown) {
			t.Errorf("Leave after Shutdown = %v, want ErrShutdown", err)
		}
	})
}

// TestEncryptionKeyMismatch: a node with another key (or none) never joins,
// and the log says why; a node with the same key does.
func TestEncryptionKeyMismatch(t *testing.T) { synctest.Test(t, testEncryptionKeyMismatch) }

func testEncryptionKeyMismatch(t *testing.T) {
	top := t
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	keyA := []byte("0123456789abcdef")
	keyB := []byte("fedcba9876543210")
	n1 := startNode(t, top, "k1", t.TempDir(), nodeOpts{net: mn, key: keyA})
	seeds := []string{n1.g.LocalAddr()}
	wrong := startNode(t, top, "k2", t.TempDir(), nodeOpts{net: mn, key: keyB, seeds: seeds})
	plain := startNode(t, top, "k3", t.TempDir(), nodeOpts{net: mn, seeds: seeds})
	good := startNode(t, top, "k4", t.TempDir(), nodeOpts{net: mn, key: keyA, seeds: seeds})

	waitRing(t, []*testNode{n1, good}, []string{"k1", "k4"})
	testkit.Eventually(t, converge, "a key-mismatch error logged", func() bool {
		return n1.logw.contains("level=ERROR", "encryption key mismatch") &&
			plain.logw.contains("level=WARN", "could not join any seed")
	})
	testkit.Eventually(t, converge, "k2 to log its failed join with the key hint", func() bool {
		return wrong.logw.contains("level=WARN", "could not join any seed", "same gossip encryption key")
	})

	for _, n := range []*testNode{n1, good} {
		for _, outsider := range []string{"k2", "k3"} {
			if n.g.Liveness(outsider) != Dead || slices.Contains(n.g.RingMembers(), outsider) {
				t.Errorf("%s let %s in: liveness %s, ring %v", n.name, outsider, n.g.Liveness(outsider), n.g.RingMembers())
			}
		}
	}
	for _, outsider := range []*testNode{wrong, plain} {
		if got := outsider.g.RingMembers(); !slices.Equal(got, []string{outsider.name}) {
			t.Errorf("%s joined a ring it has no key for: %v", outsider.name, got)
		}
		select {
		case <-outsider.g.Joined():
			t.Errorf("%s reports a successful join", outsider.name)
		default:
		}
	}
}

// TestRejoinHealsAfterMemberlistForgets: once memberlist has given up on a
// dead node (GossipToTheDeadTime), only the re-join loop can bring it back.
// The restarted node has no seeds, so it cannot find the cluster itself.
func TestRejoinHealsAfterMemberlistForgets(t *testing.T) {
	synctest.Test(t, testRejoinHealsAfterMemberlistForgets)
}

func testRejoinHealsAfterMemberlistForgets(t *testing.T) {
	top := t
	lingerInBubble(t)
	mn := &gossiptest.Network{}
	a := startNode(t, top, "r1", t.TempDir(), nodeOpts{net: mn, rejoin: 300 * time.Millisecond})
	bDir := t.TempDir()
	b := startNode(t, top, "r2", bDir, nodeOpts{net: mn, seeds: []string{a.g.LocalAddr()}})
	pair := []*testNode{a, b}
	waitRing(t, pair, []string{"r1", "r2"})
	waitAlive(t, pair)

	b.crash(t)
	testkit.Eventually(t, converge, "r1 to see r2 dead", func() bool { return a.g.Liveness("r2") == Dead })
	mc, _ := a.g.cfg.memberlistConfig()
	time.Sleep(mc.GossipToTheDeadTime + time.Second) // fake time: memberlist stops gossiping to r2

	b = startNode(t, top, "r2", bDir, nodeOpts{net: mn, addr: b.addr})
	waitAlive(t, []*testNode{a, b})
	const msg = "re-joined ring members memberlist did not see alive"
	if !a.logw.contains(msg) && !b.logw.contains(msg) {
		t.Error("neither node's re-join loop reported reconnecting")
	}
}
