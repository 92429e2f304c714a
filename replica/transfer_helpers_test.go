package replica_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// xferPlace is a replica.TransferPlacement for tests, shaped as
// ring.Transition: members serve (Replicas), target is the layout after
// the change (Targets), and Pending is Targets minus Replicas. Both
// layouts are replicatest.Placement over the same partitions, so a key
// maps to the same partition in both. Immutable once built.
type xferPlace struct {
	s, t    *replicatest.Placement
	epoch   uint64
	hash    uint64
	pending [][]string
}

var _ replica.TransferPlacement = (*xferPlace)(nil)

// newXferPlace builds the placement of a plan at epoch moving from members
// to target (nil target: stable, nothing pending).
func newXferPlace(epoch uint64, members, target []string, n, parts int) *xferPlace {
	if target == nil {
		target = members
	}
	x := &xferPlace{
		s: replicatest.NewPlacement(members, n, parts), t: replicatest.NewPlacement(target, n, parts),
		epoch: epoch, pending: make([][]string, parts),
	}
	h := fnv.New64a()
	fmt.Fprint(h, epoch, members, target)
	x.hash = h.Sum64()
	for p := range parts {
		for _, node := range x.t.Replicas(p) {
			if !slices.Contains(x.s.Replicas(p), node) {
				x.pending[p] = append(x.pending[p], node)
			}
		}
	}
	return x
}

func (x *xferPlace) Partition(key []byte) int          { return x.s.Partition(key) }
func (x *xferPlace) Replicas(p int) []string           { return x.s.Replicas(p) }
func (x *xferPlace) Targets(p int) []string            { return x.t.Replicas(p) }
func (x *xferPlace) Pending(p int) []string            { return x.pending[p] }
func (x *xferPlace) Epoch() uint64                     { return x.epoch }
func (x *xferPlace) PlanHash() uint64                  { return x.hash }
func (x *xferPlace) Fallbacks(p int) []string          { return x.s.Fallbacks(p) }
func (x *xferPlace) withHash(h uint64) *xferPlace      { y := *x; y.hash = h; return &y }
func (x *xferPlace) partitions() int                   { return len(x.pending) }
func (x *xferPlace) pendingOn(node string, p int) bool { return slices.Contains(x.pending[p], node) }

func (x *xferPlace) PendingOf(node string) []int {
	var out []int
	for p := range x.pending {
		if x.pendingOn(node, p) {
			out = append(out, p)
		}
	}
	return out
}

// hookFunc intercepts a call to a node before its coordinator: handled
// true answers with resp and err instead.
type hookFunc func(ctx context.Context, req replica.Request) (resp replica.Response, err error, handled bool)

// xferEnv is a set of nodes, each with a Coordinator (the transfer
// source side) and an in-memory store partitioned by its placement, over
// an in-memory network. Each node has its own view of the placement, so
// that a source can lag behind the puller.
type xferEnv struct {
	t      *testing.T
	net    *replicatest.Network
	parts  int
	stores map[string]*replicatest.Store
	coords map[string]*replica.Coordinator
	views  map[string]*atomic.Pointer[xferPlace]

	mu    sync.Mutex // guards calls and hooks
	calls map[xferCall]int
	hooks map[string]hookFunc
}

// xferCall counts the KindTransfer calls a node received, by epoch and
// partition.
type xferCall struct {
	node  string
	epoch uint64
	part  int
}

func newXferEnv(t *testing.T, place *xferPlace, nodes ...string) *xferEnv {
	t.Helper()
	e := &xferEnv{
		t: t, net: replicatest.NewNetwork(1), parts: place.partitions(),
		stores: map[string]*replicatest.Store{}, coords: map[string]*replica.Coordinator{},
		views: map[string]*atomic.Pointer[xferPlace]{}, calls: map[xferCall]int{}, hooks: map[string]hookFunc{},
	}
	for _, name := range nodes {
		st := replicatest.NewStore("inc-" + name)
		st.Partitioner = place.Partition
		view := &atomic.Pointer[xferPlace]{}
		view.Store(place)
		cfg := replica.DefaultConfig()
		cfg.Self, cfg.Store, cfg.Transport = name, st, e.net.Transport(name)
		cfg.Placement = func() replica.Placement { return view.Load() }
		cfg.Partitions = e.parts
		cfg.PartitionStats = func(p int) (keys, bytes int64) { return scanStats(st, p) }
		cfg.Logger = testkit.Logger(t)
		co, err := replica.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.net.Register(name, replica.HandlerFunc(func(ctx context.Context, from string, req replica.Request) (replica.Response, error) {
			e.mu.Lock()
			if req.Kind == replica.KindTransfer {
				e.calls[xferCall{name, req.Epoch, int(req.Partition)}]++
			}
			hook := e.hooks[name]
			e.mu.Unlock()
			if hook != nil {
				if resp, err, ok := hook(ctx, req); ok {
					return resp, err
				}
			}
			return co.Handle(ctx, from, req)
		}))
		e.stores[name], e.coords[name], e.views[name] = st, co, view
	}
	t.Cleanup(func() {
		for _, co := range e.coords {
			_ = co.Close()
		}
		e.net.Wait()
	})
	return e
}

// scanStats totals a partition of st as storage's PartitionStats does.
func scanStats(st *replicatest.Store, p int) (keys, bytes int64) {
	ks, sets, _ := st.Scan(p, nil, 1<<30, 1<<62)
	for i := range ks {
		keys++
		bytes += int64(len(ks[i]) + sets[i].Size())
	}
	return keys, bytes
}

// setView gives the nodes (all when none are named) placement p.
func (e *xferEnv) setView(p *xferPlace, nodes ...string) {
	if len(nodes) == 0 {
		for n := range e.views {
			nodes = append(nodes, n)
		}
	}
	for _, n := range nodes {
		e.views[n].Store(p)
	}
}

// hook installs (nil removes) the interceptor of calls to node.
func (e *xferEnv) hook(node string, h hookFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hooks[node] = h
}

// transferCalls is the number of KindTransfer calls node received for
// partition at epoch.
func (e *xferEnv) transferCalls(node string, epoch uint64, part int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[xferCall{node, epoch, part}]
}

// totalCalls is the number of KindTransfer calls node received.
func (e *xferEnv) totalCalls(node string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for c, k := range e.calls {
		if c.node == node {
			n += k
		}
	}
	return n
}

// resetCalls forgets the counted calls.
func (e *xferEnv) resetCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.calls)
}

// seed writes keys to the source nodes as a W=2 write with one replica
// missing would leave them: key i is missing on sources[i%4] (none when
// i%4 == 3), and every fifth key holds a different concurrent version on
// each source that has it. It returns the merge of the sources' sets per
// key: what a complete pull must leave on the new replica.
func (e *xferEnv) seed(keys int, sources ...string) map[string]vclock.Siblings {
	e.t.Helper()
	ctx := context.Background()
	want := map[string]vclock.Siblings{}
	for i := range keys {
		key := fmt.Appendf(nil, "key-%04d", i)
		_, shared := vclock.Mint(nil, "inc-writer", vclock.Write{Value: fmt.Appendf(nil, "v%d", i), WallTime: int64(i)})
		for j, src := range sources {
			if i%4 == j {
				continue
			}
			set := shared
			if i%5 == 0 {
				_, set = vclock.Mint(nil, "inc-"+src, vclock.Write{Value: fmt.Appendf(nil, "v%d-%s", i, src), WallTime: int64(i)})
			}
			got, err := e.stores[src].Apply(ctx, key, set)
			if err != nil {
				e.t.Fatal(err)
			}
			_ = got
			want[string(key)] = vclock.Merge(want[string(key)], set)
		}
	}
	return want
}

// checkHolds fails unless node holds exactly want's set for every key of
// the partitions in parts, and nothing of want's other keys.
func (e *xferEnv) checkHolds(node string, place *xferPlace, want map[string]vclock.Siblings, parts []int) {
	e.t.Helper()
	bad := 0
	for k, set := range want {
		got := e.stores[node].Get([]byte(k))
		in := slices.Contains(parts, place.Partition([]byte(k)))
		switch {
		case in && !got.Equal(set):
			e.t.Errorf("%s: key %s (partition %d) holds %d versions, want the merge of all sources (%d)", node, k, place.Partition([]byte(k)), len(got), len(set))
			bad++
		case !in && got != nil:
			e.t.Errorf("%s: key %s of partition %d, not pulled, is held", node, k, place.Partition([]byte(k)))
			bad++
		}
		if bad > 10 {
			e.t.Fatal("too many differences")
		}
	}
}

// puller builds a puller for self over the env's network whose placement
// is self's view.
func (e *xferEnv) puller(self string, mod func(*replica.PullerConfig)) *replica.Puller {
	e.t.Helper()
	view := e.views[self]
	cfg := replica.DefaultPullerConfig()
	cfg.Self = self
	cfg.Placement = func() replica.TransferPlacement { return view.Load() }
	cfg.Store = e.stores[self]
	cfg.Transport = e.net.Transport(self)
	cfg.Logger = testkit.Logger(e.t)
	if mod != nil {
		mod(&cfg)
	}
	p, err := replica.NewPuller(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// run starts p.Run; the returned stop cancels it and waits for Run to
// return (also done at cleanup).
func (e *xferEnv) run(p *replica.Puller) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			e.t.Errorf("puller Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// int32s converts partitions to the form Progress reports.
func int32s(parts []int) []int32 {
	out := make([]int32, 0, len(parts))
	for _, p := range parts {
		out = append(out, int32(p))
	}
	return out
}
