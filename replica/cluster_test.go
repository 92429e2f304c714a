package replica_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// cluster is an in-process ringkv cluster: one Coordinator and Store per
// node, over an in-memory Network (or TCP, see newTCPCluster).
type cluster struct {
	t      testing.TB
	names  []string
	place  *replicatest.Placement
	net    *replicatest.Network
	live   *replicatest.Liveness
	nodes  map[string]*replica.Coordinator
	stores map[string]*replicatest.Store
	clock  *testkit.Clock
}

// newCluster starts size nodes n1..n<size> with replication factor n over
// an in-memory network.
func newCluster(t testing.TB, size, n int, opts ...func(*replica.Config)) *cluster {
	c := newClusterWith(t, size, n, nil, opts...)
	return c
}

// newClusterWith builds the cluster; transport, when not nil, returns the
// transport for a node (and wires the node's handler), else the in-memory
// network is used.
func newClusterWith(t testing.TB, size, n int, transport func(name string, h replica.Handler) replica.Transport, opts ...func(*replica.Config)) *cluster {
	t.Helper()
	c := &cluster{
		t: t, net: replicatest.NewNetwork(1), live: &replicatest.Liveness{},
		nodes: map[string]*replica.Coordinator{}, stores: map[string]*replicatest.Store{},
		// Each reading 1µs later: minted versions get distinct,
		// reproducible wall times.
		clock: testkit.NewSteppingClock(time.Unix(1_700_000_000, 0), time.Microsecond),
	}
	for i := range size {
		c.names = append(c.names, fmt.Sprintf("n%d", i+1))
	}
	c.place = replicatest.NewPlacement(c.names, n, 64)
	for _, name := range c.names {
		st := replicatest.NewStore("inc-" + name)
		cfg := replica.DefaultConfig()
		cfg.Self, cfg.N, cfg.Store = name, n, st
		cfg.Placement = func() replica.Placement { return c.place }
		cfg.Liveness = c.live
		cfg.Now = c.clock.Now
		cfg.Logger = testkit.Logger(t)
		var co *replica.Coordinator
		h := replica.HandlerFunc(func(ctx context.Context, from string, req replica.Request) (replica.Response, error) {
			return co.Handle(ctx, from, req)
		})
		if transport != nil {
			cfg.Transport = transport(name, h)
		} else {
			cfg.Transport = c.net.Transport(name)
			c.net.Register(name, h)
		}
		for _, o := range opts {
			o(&cfg)
		}
		var err error
		co, err = replica.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[name], c.stores[name] = co, st
	}
	t.Cleanup(func() {
		for _, co := range c.nodes {
			if err := co.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
		c.net.Wait()
	})
	return c
}

// newTCPCluster is newCluster over loopback TCP transports. Requests get
// realSocketTimeout instead of the default 2 s: sockets and their
// goroutines run on the real clock, which a loaded machine slows.
func newTCPCluster(t testing.TB, size, n int) *cluster {
	var mu sync.Mutex
	addrs := map[string]string{}
	resolve := func(node string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		a, ok := addrs[node]
		return a, ok
	}
	return newClusterWith(t, size, n, func(name string, h replica.Handler) replica.Transport {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		addrs[name] = ln.Addr().String()
		mu.Unlock()
		cfg := replica.DefaultTCPConfig()
		cfg.Self, cfg.Resolve = name, resolve
		cfg.DialTimeout = realSocketTimeout
		tr, err := replica.NewTCPTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = tr.Serve(ln, h) }() // returns nil at Close
		t.Cleanup(func() { _ = tr.Close() })
		return tr
	}, func(cfg *replica.Config) { cfg.Timeout = realSocketTimeout })
}

// replicasOf returns key's preference list.
func (c *cluster) replicasOf(key []byte) []string {
	return c.place.Replicas(c.place.Partition(key))
}

// keyOn returns a key whose preference list starts with node.
func (c *cluster) keyOn(prefix, node string) []byte {
	k, ok := c.place.KeyFor(prefix, node)
	if !ok {
		c.t.Fatalf("no key with %s first", node)
	}
	return k
}

// drain waits for every node's background sends and repairs.
func (c *cluster) drain() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, co := range c.nodes {
		if err := co.Drain(ctx); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *cluster) put(node string, key []byte, val string, o replica.WriteOptions) (replica.Result, error) {
	return c.nodes[node].Put(context.Background(), key, []byte(val), o)
}

func (c *cluster) mustPut(node string, key []byte, val string, o replica.WriteOptions) replica.Result {
	c.t.Helper()
	r, err := c.put(node, key, val, o)
	if err != nil {
		c.t.Fatalf("put %s via %s: %v", val, node, err)
	}
	return r
}

func (c *cluster) mustGet(node string, key []byte, r replica.Quorum) replica.Result {
	c.t.Helper()
	res, err := c.nodes[node].Get(context.Background(), key, replica.ReadOptions{R: r})
	if err != nil {
		c.t.Fatalf("get via %s: %v", node, err)
	}
	return res
}

// values returns the live values of a set, in dot order.
func values(s vclock.Siblings) []string {
	var out []string
	for _, v := range s.Live() {
		out = append(out, string(v.Value))
	}
	return out
}

// withCtx is WriteOptions carrying a context.
func withCtx(ctx vclock.Clock, w replica.Quorum) replica.WriteOptions {
	return replica.WriteOptions{W: w, Context: ctx, HasContext: true}
}

// inBubble runs a test body inside a testing/synctest bubble: the
// in-memory network's delays, the coordinators' request deadlines and the
// hint queues' retry timers are then fake time, which moves only while
// every goroutine of the test is blocked. A loaded machine slows such a
// test down but cannot change its outcome. Use it for t.Run bodies;
// a whole test is written TestX(t) { synctest.Test(t, testX) }.
func inBubble(fn func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) { synctest.Test(t, fn) }
}
