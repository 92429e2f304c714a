package replica_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// changeCluster is a cluster whose nodes each follow their own placement,
// swapped through Coordinator.Fence as the node does when a plan arrives,
// so that a test can show a change in progress and nodes that lag behind.
type changeCluster struct {
	*cluster
	places map[string]*atomic.Pointer[replicatest.Placement]
}

func newChangeCluster(t *testing.T, size, n int, initial *replicatest.Placement, opts ...func(*replica.Config)) *changeCluster {
	t.Helper()
	places := map[string]*atomic.Pointer[replicatest.Placement]{}
	follow := func(cfg *replica.Config) {
		p := &atomic.Pointer[replicatest.Placement]{}
		p.Store(initial)
		places[cfg.Self] = p
		cfg.Placement = func() replica.Placement { return p.Load() }
	}
	c := newCluster(t, size, n, append([]func(*replica.Config){follow}, opts...)...)
	c.place = initial
	return &changeCluster{cluster: c, places: places}
}

// swap makes nodes (every node when none is named) follow p.
func (c *changeCluster) swap(p *replicatest.Placement, nodes ...string) {
	if len(nodes) == 0 {
		nodes = c.names
	}
	for _, n := range nodes {
		c.nodes[n].Fence(func() { c.places[n].Store(p) })
	}
}

// mustKey finds a key whose partition in p satisfies match.
func mustKey(t *testing.T, p *replicatest.Placement, prefix string, match func(part int) bool) ([]byte, int) {
	t.Helper()
	k, ok := p.KeyWhere(prefix, match)
	if !ok {
		t.Fatalf("no %s key matches", prefix)
	}
	return k, p.Partition(k)
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// TestJoinJointQuorum (scenario a): three nodes hold data written at W=2;
// the placement switches to a change adding n4. Writes during the change
// reach n4 through any coordinator, reads ask n4 too (joint read),
// and a write needs W of the current replicas and W of the replicas after
// the change: with one side short it is refused (503) even though the
// other side has W.
func TestJoinJointQuorum(t *testing.T) { synctest.Test(t, testJoinJointQuorum) }

func testJoinJointQuorum(t *testing.T) {
	old, all := []string{"n1", "n2", "n3"}, []string{"n1", "n2", "n3", "n4"}
	e1 := replicatest.NewTransitionPlacement(old, nil, 3, 64, 1)
	c := newChangeCluster(t, 4, 3, e1)
	for i := range 20 {
		c.mustPut(old[i%3], fmt.Appendf(nil, "pre-%d", i), "v", replica.WriteOptions{W: 2})
	}
	c.drain()
	if n := c.stores["n4"].Len(); n != 0 {
		t.Fatalf("n4 holds %d keys before it is a target", n)
	}

	e2 := replicatest.NewTransitionPlacement(old, all, 3, 64, 2)
	c.swap(e2)
	key, part := mustKey(t, e2, "join", func(p int) bool { return slices.Equal(e2.Pending(p), []string{"n4"}) })
	reps, tgts := e2.Replicas(part), e2.Targets(part)
	both := minus(reps, minus(reps, tgts)) // in the current and the new replicas
	only := minus(reps, tgts)[0]           // current replica that is retiring
	if len(both) != 2 {
		t.Fatalf("test setup: replicas %v, targets %v", reps, tgts)
	}

	// Through every node, n4 (pending: forwards) included; every write
	// reaches n4 and is minted by a current replica.
	for _, via := range all {
		res := c.mustPut(via, key, "during-"+via, replica.WriteOptions{W: 2})
		if d := dotOf(t, res, "during-"+via); !slices.Contains(reps, strings.TrimPrefix(d.Actor, "inc-")) {
			t.Errorf("write via %s minted by %s, not a current replica of %v", via, d.Actor, reps)
		}
		c.drain()
		if got := c.stores["n4"].Get(key); !got.Equal(res.Siblings) {
			t.Errorf("after the write via %s n4 holds %v, want %v", via, values(got), values(res.Siblings))
		}
	}
	// Reads ask the pending replica too (joint read): R=all needs every
	// current replica and every replica after the change.
	served := c.nodes["n4"].Stats().ReadsServed
	if res := c.mustGet(only, key, replica.QuorumAll); res.Replies != 4 {
		t.Errorf("R=all during the change: %d replies, want 4", res.Replies)
	}
	if c.nodes["n4"].Stats().ReadsServed != served+1 {
		t.Error("a read during the change did not ask the pending replica")
	}
	// A key written before the change, not transferred yet: the read
	// repairs n4 as well (harmless: it is a replica after the change).
	repaired := false
	for i := 0; i < 20 && !repaired; i++ {
		pre := fmt.Appendf(nil, "pre-%d", i)
		if !slices.Contains(e2.Pending(e2.Partition(pre)), "n4") {
			continue
		}
		// R=3 asks every node of both sides: a read asks n4 at R=2 only
		// when the nodes before it in the preference lists do not cover R.
		res := c.mustGet(old[i%3], pre, 3)
		c.drain()
		if got := c.stores["n4"].Get(pre); len(got) == 0 || !got.Equal(res.Siblings) {
			t.Errorf("after a read of %s n4 holds %v, want %v (read repair)", pre, values(got), values(res.Siblings))
		}
		repaired = true
	}
	if !repaired {
		t.Error("test setup: no pre-change key in a partition n4 is pending in")
	}

	// Liveness: both[0] and n4 down. The current side has W=2 (only,
	// both[1]); the new side only both[1]: refused before anything is
	// written.
	c.live.SetAlive(both[0], false)
	c.live.SetAlive("n4", false)
	calls := c.net.Calls()
	_, err := c.put(only, key, "refused", replica.WriteOptions{W: 2})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || !qe.Unavailable || qe.Need != 2 || qe.Reachable != 2 || qe.TargetNeed != 2 || qe.TargetReachable != 1 {
		t.Fatalf("one side down: err = %v, want unavailable with the target side short", err)
	}
	if !strings.Contains(err.Error(), "need 2, only 1 reachable of the replicas after the change") {
		t.Errorf("message %q does not name the short side", err)
	}
	if c.net.Calls() != calls {
		t.Error("an unavailable write sent calls")
	}
	// Only the retiring replica down: both sides still have W.
	c.live.SetAlive(both[0], true)
	c.live.SetAlive("n4", true)
	c.live.SetAlive(only, false)
	if res := c.mustPut(both[0], key, "no-retiring", replica.WriteOptions{W: 2}); res.Replies < 2 {
		t.Errorf("replies %d", res.Replies)
	}
	c.live.SetAlive(only, true)

	// The same through the network: liveness says all are up, but the
	// coordinator cannot reach both[0] and n4. The current side meets W,
	// the new side cannot: a quorum error after the fan-out.
	c.drain()
	c.net.Cut(only, both[0])
	c.net.Cut(only, "n4")
	_, err = c.put(only, key, "lost", replica.WriteOptions{W: 2})
	if !errors.As(err, &qe) || qe.Unavailable || qe.TargetNeed != 2 || qe.TargetGot > 1 || qe.Failures["n4"] == nil || qe.Failures[both[0]] == nil {
		t.Fatalf("new side cut off: err = %v, want a joint quorum failure", err)
	}
	c.net.Heal()
}

// TestJointStandIn: a stand-in keeping a hint for a down pending replica
// counts for the side that replica belongs to (sloppy quorum); under
// strict quorum it does not.
func TestJointStandIn(t *testing.T) { synctest.Test(t, testJointStandIn) }

func testJointStandIn(t *testing.T) {
	old, all := []string{"n1", "n2", "n3", "n4"}, []string{"n1", "n2", "n3", "n4", "n5"}
	e2 := replicatest.NewTransitionPlacement(old, all, 3, 64, 2)
	sinks := map[string]*countingSink{}
	c := newChangeCluster(t, 5, 3, e2, func(cfg *replica.Config) {
		sinks[cfg.Self] = &countingSink{}
		cfg.Hints = sinks[cfg.Self]
	})
	key, part := mustKey(t, e2, "stand", func(p int) bool {
		return slices.Equal(e2.Pending(p), []string{"n5"}) && len(e2.Fallbacks(p)) == 1
	})
	reps, tgts, standIn := e2.Replicas(part), e2.Targets(part), e2.Fallbacks(part)[0]
	coord := minus(reps, minus(reps, tgts))[0] // a replica on both sides
	c.live.SetAlive("n5", false)
	res := c.mustPut(coord, key, "sloppy", replica.WriteOptions{W: replica.QuorumAll})
	if res.Hinted != 1 || sinks[standIn].n.Load() != 1 {
		t.Errorf("W=all with n5 down: hinted %d, %s kept %d hints; want 1 and 1", res.Hinted, standIn, sinks[standIn].n.Load())
	}
	_, err := c.put(coord, key, "strict", replica.WriteOptions{W: replica.QuorumAll, Strict: true})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || !qe.Unavailable || qe.TargetReachable != 2 || qe.Reachable != 3 {
		t.Fatalf("strict W=all with n5 down: err = %v", err)
	}
}

// TestStaleCoordinator (scenario b, and stale-store forwarding): a
// coordinator still following epoch 1 writes while every replica knows
// the change of epoch 2; the replicas forward the write to the pending
// node before acknowledging, so it holds the write when the W=all put
// returns. A forward that fails fails the store.
func TestStaleCoordinator(t *testing.T) { synctest.Test(t, testStaleCoordinator) }

func testStaleCoordinator(t *testing.T) {
	old, all := []string{"n1", "n2", "n3"}, []string{"n1", "n2", "n3", "n4"}
	e1 := replicatest.NewTransitionPlacement(old, nil, 3, 64, 1)
	e2 := replicatest.NewTransitionPlacement(old, all, 3, 64, 2)
	c := newChangeCluster(t, 4, 3, e1)
	c.swap(e2, "n2", "n3", "n4")
	key, _ := mustKey(t, e2, "stale", func(p int) bool { return slices.Equal(e2.Pending(p), []string{"n4"}) })

	res := c.mustPut("n1", key, "stale", replica.WriteOptions{W: replica.QuorumAll})
	if got := c.stores["n4"].Get(key); !got.Context().Covers(dotOf(t, res, "stale")) {
		t.Fatalf("n4 holds %v when the stale write is acknowledged", values(got))
	}
	if f := c.nodes["n2"].Stats().StaleForwards + c.nodes["n3"].Stats().StaleForwards; f != 2 {
		t.Errorf("stale forwards = %d, want 2 (n2 and n3)", f)
	}
	if s := c.nodes["n1"].Stats().StaleForwards; s != 0 {
		t.Errorf("the coordinator forwarded %d stores", s)
	}

	// n4 cut off from the replicas: their stores fail, and so does W=all.
	c.net.Partition("n2", "n4")
	c.net.Partition("n3", "n4")
	_, err := c.put("n1", key, "unforwarded", withCtx(res.Context(), replica.QuorumAll))
	var qe *replica.QuorumError
	// The write is lost at the first failure; the other may be pending.
	if !errors.As(err, &qe) || len(qe.Failures) == 0 {
		t.Fatalf("W=all with n4 unreachable from the replicas: err = %v", err)
	}
	for n, f := range qe.Failures {
		if (n != "n2" && n != "n3") || !strings.Contains(f.Error(), "pending replica n4") {
			t.Errorf("failure of %s: %v, want n2 or n3 failing to pass the store on to n4", n, f)
		}
	}
	c.net.Heal()
}

// TestNotReplicaRefuses (scenario c): a node that is no replica of a
// partition in epoch 2 refuses reads and stores sent under epoch 1, naming
// the partition and both epochs; the stale coordinator counts it as a
// failed replica, and a read still answers from the others.
func TestNotReplicaRefuses(t *testing.T) { synctest.Test(t, testNotReplicaRefuses) }

func testNotReplicaRefuses(t *testing.T) {
	four, three := []string{"n1", "n2", "n3", "n4"}, []string{"n1", "n2", "n3"}
	e1 := replicatest.NewTransitionPlacement(four, nil, 3, 64, 1)
	e2 := replicatest.NewTransitionPlacement(three, nil, 3, 64, 2)
	c := newChangeCluster(t, 4, 3, e1)
	key, part := mustKey(t, e1, "gone", func(p int) bool {
		return slices.Contains(e1.Replicas(p), "n1") && slices.Contains(e1.Replicas(p), "n4")
	})
	first := c.mustPut("n1", key, "v1", replica.WriteOptions{W: replica.QuorumAll})
	c.swap(e2, "n2", "n3", "n4")

	_, set := vclock.Mint(nil, "inc-x", vclock.Write{Value: []byte("x")})
	call := func(kind replica.Kind, epoch uint64, hintFor string) error {
		_, err := c.nodes["n4"].Handle(t.Context(), "n1", replica.Request{Kind: kind, Key: key, Siblings: set, Epoch: epoch, HintFor: hintFor})
		return err
	}
	for _, kind := range []replica.Kind{replica.KindRead, replica.KindStore} {
		for _, epoch := range []uint64{0, 1, 2} {
			err := call(kind, epoch, "")
			if !errors.Is(err, replica.ErrNotReplica) {
				t.Fatalf("%v at epoch %d: err = %v, want ErrNotReplica", kind, epoch, err)
			}
			for _, s := range []string{fmt.Sprintf("partition %d", part), "plan epoch 2", fmt.Sprintf("sender follows epoch %d", epoch)} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q lacks %q", err, s)
				}
			}
		}
	}
	if got := c.stores["n4"].Get(key); !got.Equal(first.Siblings) {
		t.Fatalf("a refused store changed n4: %v", values(got))
	}
	if err := call(replica.KindStore, 0, "n1"); !errors.Is(err, replica.ErrNoHints) {
		t.Errorf("a hint is not checked against the plan: err = %v, want ErrNoHints", err)
	}
	// A sender with a newer plan is believed: this node is behind.
	if err := call(replica.KindRead, 3, ""); err != nil {
		t.Errorf("read from epoch 3: %v", err)
	}
	if got := c.nodes["n4"].MaxEpochSeen(); got != 3 {
		t.Errorf("MaxEpochSeen = %d, want 3", got)
	}

	// n1, still at epoch 1, reads and writes.
	_, err := c.nodes["n1"].Get(t.Context(), key, replica.ReadOptions{R: replica.QuorumAll})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || !errors.Is(qe.Failures["n4"], replica.ErrNotReplica) {
		t.Fatalf("R=all through the stale coordinator: err = %v, want n4 refusing", err)
	}
	if got := c.mustGet("n1", key, 2); !slices.Equal(values(got.Siblings), []string{"v1"}) {
		t.Fatalf("R=2 read: %v", values(got.Siblings))
	}
	hintStats := func() uint64 { s := c.nodes["n1"].Stats(); return s.HintsSent + s.HintFailures }
	hints := hintStats()
	_, err = c.put("n1", key, "v2", withCtx(first.Context(), replica.QuorumAll))
	if !errors.As(err, &qe) || !errors.Is(qe.Failures["n4"], replica.ErrNotReplica) {
		t.Fatalf("W=all through the stale coordinator: err = %v, want n4 refusing", err)
	}
	c.drain()
	if hintStats() != hints {
		t.Error("a hint was sent for a replica that refused as no longer one")
	}
	if r := c.nodes["n4"].Stats().StaleRefused; r < 8 {
		t.Errorf("StaleRefused = %d, want at least 8", r)
	}
}

// recorder is a Transport that notes the kind and epoch of every call.
type recorder struct {
	replica.Transport
	mu   *sync.Mutex
	seen map[replica.Kind][]uint64
}

func (r recorder) Call(ctx context.Context, to string, req replica.Request) (replica.Response, error) {
	r.mu.Lock()
	r.seen[req.Kind] = append(r.seen[req.Kind], req.Epoch)
	r.mu.Unlock()
	return r.Transport.Call(ctx, to, req)
}

// TestEpochStamped: every store, read, forward and handoff carries the
// epoch of the placement the sender used.
func TestEpochStamped(t *testing.T) { synctest.Test(t, testEpochStamped) }

func testEpochStamped(t *testing.T) {
	pl := replicatest.NewTransitionPlacement([]string{"n1", "n2", "n3", "n4", "n5"}, nil, 3, 64, 7)
	var mu sync.Mutex
	seen := map[replica.Kind][]uint64{}
	c := newChangeCluster(t, 5, 3, pl, func(cfg *replica.Config) {
		cfg.Transport = recorder{Transport: cfg.Transport, mu: &mu, seen: seen}
		cfg.Hints = &countingSink{}
	})
	key, part := mustKey(t, pl, "stamp", func(p int) bool { return pl.Replicas(p)[0] == "n1" })
	outsider := minus(c.names, pl.Replicas(part))[0]
	c.mustPut(outsider, key, "forwarded", replica.WriteOptions{}) // forward, stores
	c.mustGet(outsider, key, replica.QuorumAll)                   // reads
	c.live.SetAlive(pl.Replicas(part)[2], false)
	c.mustPut("n1", key, "hinted", replica.WriteOptions{W: 2}) // a hint
	c.live.SetAlive(pl.Replicas(part)[2], true)
	c.drain()
	c.mustGet("n1", key, replica.QuorumAll) // repairs the replica that missed "hinted"
	c.drain()
	if err := c.nodes["n1"].Handoff(t.Context(), "n2", []replica.Entry{{Key: key, Siblings: c.stores["n1"].Get(key)}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range []replica.Kind{replica.KindForward, replica.KindStore, replica.KindRead, replica.KindHandoff} {
		if len(seen[k]) == 0 {
			t.Errorf("no %v call was made", k)
		}
		for _, e := range seen[k] {
			if e != 7 {
				t.Errorf("%v call with epoch %d, want 7", k, e)
			}
		}
	}
	if r := c.nodes["n1"].Stats().ReadRepairs; r == 0 {
		t.Error("no read repair: its store's epoch went unchecked")
	}
}

// TestForwardRetriesNotReplica: a forward refused with ErrNotReplica (the
// first replica's newer plan says it holds no copy) ran nothing there, so
// the forwarder tries the next live replica, which coordinates the write.
func TestForwardRetriesNotReplica(t *testing.T) { synctest.Test(t, testForwardRetriesNotReplica) }

func testForwardRetriesNotReplica(t *testing.T) {
	e1 := replicatest.NewTransitionPlacement([]string{"n1", "n2", "n3", "n4"}, nil, 3, 64, 1)
	e2 := replicatest.NewTransitionPlacement([]string{"n2", "n3", "n4"}, nil, 3, 64, 2)
	c := newChangeCluster(t, 4, 3, e1)
	c.swap(e2, "n1") // only n1 has learnt that it is out
	key, part := mustKey(t, e1, "refwd", func(p int) bool { return slices.Equal(e1.Replicas(p), []string{"n1", "n2", "n3"}) })
	if slices.Contains(e1.Replicas(part), "n4") {
		t.Fatal("test setup: n4 is a replica")
	}
	res := c.mustPut("n4", key, "retried", replica.WriteOptions{W: 2})
	if d := dotOf(t, res, "retried"); d.Actor != "inc-n2" {
		t.Errorf("minted by %s, want inc-n2 (the next replica)", d.Actor)
	}
	if f := c.nodes["n4"].Stats().Forwards; f != 2 {
		t.Errorf("forwards = %d, want 2 (n1 refused, n2 coordinated)", f)
	}
	if got := c.stores["n1"].Get(key); len(got) != 0 {
		t.Errorf("n1, no replica in its plan, stored %v", values(got))
	}
}
