package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file holds the harness of the membership-change tests: a cluster
// whose nodes are started one by one with their own configs, grown,
// shrunk, killed and restarted, and the wait for a change to be over as
// GET /v1/stats reports it.

// planJSON is the "plan" object of GET /v1/stats: the cluster's placement
// as the answering node knows it.
type planJSON struct {
	Epoch   uint64   `json:"epoch"`
	Version uint64   `json:"version"`
	Members []string `json:"members"`
	// Target is absent while no change is in progress.
	Target []string `json:"target"`
}

// transferJSON is the "transfer" object of GET /v1/stats: the partitions
// the answering node pulls for the plan's epoch and what it received.
type transferJSON struct {
	Epoch     uint64  `json:"epoch"`
	Pending   int     `json:"pending"`
	InFlight  int     `json:"in_flight"`
	Done      int     `json:"done"`
	Keys      int64   `json:"keys"`
	Bytes     int64   `json:"bytes"`
	NewBytes  int64   `json:"new_bytes"`
	BytesLeft int64   `json:"bytes_left"`
	RateBytes float64 `json:"rate_bytes"`
	Failures  int64   `json:"failures"`
}

// nodeStats is GET /v1/stats: one node about itself.
type nodeStats struct {
	Node              string       `json:"node"`
	Keys              int64        `json:"keys"`
	Bytes             int64        `json:"bytes"`
	Plan              planJSON     `json:"plan"`
	Transfer          transferJSON `json:"transfer"`
	DroppedPartitions int64        `json:"dropped_partitions"`
}

// elasticCluster is a set of named nodes on reserved loopback ports with
// fresh data directories. Each node's config is written when it starts:
// the first node of a cluster starts it (no seeds); every later one joins
// with seeds.
type elasticCluster struct {
	dir string
	// extra is YAML appended to every node's config (a transfer section).
	extra string
	// partitions, when not zero, sets cluster.partitions (the default
	// otherwise): tests whose background work is per partition keep it
	// small.
	partitions int
	ports      map[string][4]int // http, resp, rpc, gossip per name
	// zones, when set, gives each named node its --zone.
	zones map[string]string

	mu      sync.Mutex         // guards servers
	servers map[string]*server // the latest process of each name
}

// newElasticCluster reserves ports for every name the test will use.
func newElasticCluster(t *testing.T, names []string, extra string) *elasticCluster {
	t.Helper()
	ports := freePorts(t, 4*len(names))
	c := &elasticCluster{dir: t.TempDir(), extra: extra, ports: map[string][4]int{}, servers: map[string]*server{}}
	for i, n := range names {
		c.ports[n] = [4]int{ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]}
		// Failure messages name addresses; this maps them back.
		t.Logf("%s: http=%s resp=%s rpc=%s gossip=%s", n, loopback(ports[4*i]), loopback(ports[4*i+1]), loopback(ports[4*i+2]), loopback(ports[4*i+3]))
	}
	return c
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// gossipAddr is name's gossip address, what other nodes list as a seed.
func (c *elasticCluster) gossipAddr(name string) string { return loopback(c.ports[name][3]) }

// httpAddr is name's HTTP address.
func (c *elasticCluster) httpAddr(name string) string { return loopback(c.ports[name][0]) }

// respAddr is name's Redis-protocol address.
func (c *elasticCluster) respAddr(name string) string { return loopback(c.ports[name][1]) }

// server returns the latest process started for name.
func (c *elasticCluster) server(name string) *server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[name]
}

// writeConfig writes name's config with the given seeds (none: the node
// starts a new cluster) and returns its path.
func (c *elasticCluster) writeConfig(t *testing.T, name string, seeds []string) string {
	t.Helper()
	p := c.ports[name]
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  name: %s\nlisten:\n  http: %s\n  resp: %s\n  rpc: %s\n  gossip: %s\n",
		name, loopback(p[0]), loopback(p[1]), loopback(p[2]), loopback(p[3]))
	if len(seeds) > 0 {
		b.WriteString("seeds:\n")
		for _, s := range seeds {
			fmt.Fprintf(&b, "  - %s\n", c.gossipAddr(s))
		}
	}
	b.WriteString("cluster:\n  replication: 3\n")
	if c.partitions > 0 {
		fmt.Fprintf(&b, "  partitions: %d\n", c.partitions)
	}
	b.WriteString("gossip:\n  profile: local\n")
	b.WriteString(c.extra)
	path := filepath.Join(c.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// spawn starts name with the given seeds and returns at once; call
// waitReady on the result.
func (c *elasticCluster) spawn(t *testing.T, name string, seeds ...string) *server {
	t.Helper()
	cfg := c.writeConfig(t, name, seeds)
	args := []string{"server", "--config", cfg, "--data-dir", filepath.Join(c.dir, name)}
	if z := c.zones[name]; z != "" {
		args = append(args, "--zone", z)
	}
	s := startServer(t, name, args...)
	c.mu.Lock()
	c.servers[name] = s
	c.mu.Unlock()
	return s
}

// restart starts name again with the arguments and data directory of its
// last process, which must have exited, and waits for its listeners.
func (c *elasticCluster) restart(t *testing.T, deadline time.Time, name string) *server {
	t.Helper()
	old := c.server(name)
	s := startServer(t, name+"-restarted", old.args...)
	c.mu.Lock()
	c.servers[name] = s
	c.mu.Unlock()
	s.waitBound(t, deadline)
	return s
}

// waitBound waits for the ready line (every listener bound, the admin
// routes served) but not for /readyz: a joining node serves clients only
// once the change that adds it is committed.
func (s *server) waitBound(t *testing.T, deadline time.Time) {
	t.Helper()
	select {
	case <-s.ready:
	case <-s.done:
		t.Fatalf("%s exited before its listeners were bound: %v\n%s", s.name, s.err, s.out)
	case <-time.After(time.Until(deadline)):
		t.Fatalf("%s has not bound its listeners by the deadline\n%s", s.name, s.out)
	}
}

// serves reports whether the node at addr answers GET /readyz with 200.
func serves(addr string) bool {
	code, _, err := httpDo(http.MethodGet, "http://"+addr+"/readyz", nil)
	return err == nil && code == http.StatusOK
}

// form starts a cluster of names: the first starts it alone, the others
// join with it as their seed, and formation is over when every node
// reports a stable plan of all of them and serves clients.
func (c *elasticCluster) form(t *testing.T, deadline time.Time, names ...string) {
	t.Helper()
	c.spawn(t, names[0]).waitReady(t, deadline)
	var rest []*server
	for _, n := range names[1:] {
		rest = append(rest, c.spawn(t, n, names[0]))
	}
	for _, s := range rest {
		s.waitBound(t, deadline)
	}
	c.waitChangeOver(t, deadline, names, 0, nil)
	for _, s := range rest {
		s.waitReady(t, deadline)
	}
}

// stats reads GET /v1/stats of each named node.
func (c *elasticCluster) stats(names []string) (map[string]nodeStats, error) {
	out := map[string]nodeStats{}
	for _, n := range names {
		var st nodeStats
		if err := getJSON(c.httpAddr(n), "/v1/stats", &st); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if st.Node != n {
			return nil, fmt.Errorf("GET /v1/stats on %s answered for %q", n, st.Node)
		}
		out[n] = st
	}
	return out, nil
}

// waitChangeOver waits until the membership change towards members is
// over, as the nodes in members (all running) report it: every one shows
// the same stable plan of exactly members, pulls nothing (pending and in
// flight 0), and the nodes together hold exactly 3 copies of distinct keys
// (drops follow the commit, so the sum settles shortly after it). distinct
// < 0 skips the key count. observe, when not nil, sees every poll's stats.
func (c *elasticCluster) waitChangeOver(t *testing.T, deadline time.Time, members []string, distinct int64, observe func(map[string]nodeStats)) map[string]nodeStats {
	t.Helper()
	want := slices.Sorted(slices.Values(members))
	var last map[string]nodeStats
	began := time.Now()
	var waitedFor error // the last reason to wait, for the log
	eventually(t, deadline, fmt.Sprintf("the change to %v is over", want), func() error {
		st, err := c.stats(members)
		if err != nil {
			return err
		}
		if observe != nil {
			observe(st)
		}
		last = st
		if err := changeOver(st, want, distinct); err != nil {
			waitedFor = err
			return err
		}
		return nil
	})
	if waitedFor != nil {
		t.Logf("the change to %v was over after %s; the last thing it waited for: %.300v", want, time.Since(began).Round(time.Millisecond), waitedFor)
	}
	return last
}

// changeOver says why the stats of every member do not show a finished
// change to want (sorted) holding distinct keys 3 times, or nil.
func changeOver(st map[string]nodeStats, want []string, distinct int64) error {
	var epoch uint64
	var sum int64
	for _, n := range want {
		s := st[n]
		switch {
		case len(s.Plan.Target) > 0:
			return fmt.Errorf("%s: change in progress, plan %+v, transfer %+v", n, s.Plan, s.Transfer)
		case !slices.Equal(s.Plan.Members, want):
			return fmt.Errorf("%s: plan members %v, want %v", n, s.Plan.Members, want)
		case epoch != 0 && s.Plan.Epoch != epoch:
			return fmt.Errorf("%s: plan epoch %d, another node has %d", n, s.Plan.Epoch, epoch)
		case s.Transfer.Pending != 0 || s.Transfer.InFlight != 0:
			return fmt.Errorf("%s: transfer %+v", n, s.Transfer)
		}
		epoch = s.Plan.Epoch
		sum += s.Keys
	}
	if distinct >= 0 && sum != 3*distinct {
		keys := map[string]int64{}
		for n, s := range st {
			keys[n] = s.Keys
		}
		return fmt.Errorf("nodes hold %d keys in all, want 3 x %d = %d: %v", sum, distinct, 3*distinct, keys)
	}
	return nil
}

// stopAll stops every named node with SIGTERM and requires exit code 0.
func (c *elasticCluster) stopAll(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if code := c.server(n).stop(t, 30*time.Second); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", n, code)
		}
	}
}

// transferTally adds up what the nodes' transfer counters grew by while it
// watched, whether a node's counters run for its whole life or restart at
// each plan epoch (a counter that went down restarted from zero).
type transferTally struct {
	prev                  map[string]transferJSON
	keys, bytes, newBytes int64
}

// newTransferTally starts from the counters in base; nodes not in base
// start from zero.
func newTransferTally(base map[string]nodeStats) *transferTally {
	tt := &transferTally{prev: map[string]transferJSON{}}
	for n, s := range base {
		tt.prev[n] = s.Transfer
	}
	return tt
}

func grown(prev, cur int64) int64 {
	if cur >= prev {
		return cur - prev
	}
	return cur
}

// observe adds each node's growth since its previous reading.
func (tt *transferTally) observe(st map[string]nodeStats) {
	for n, s := range st {
		p := tt.prev[n]
		tt.keys += grown(p.Keys, s.Transfer.Keys)
		tt.bytes += grown(p.Bytes, s.Transfer.Bytes)
		tt.newBytes += grown(p.NewBytes, s.Transfer.NewBytes)
		tt.prev[n] = s.Transfer
	}
}

// stopwatch logs how long each phase of a test took, so that a slow run
// in CI shows where the time went.
type stopwatch struct {
	t           *testing.T
	start, last time.Time
}

func newStopwatch(t *testing.T) *stopwatch {
	now := time.Now()
	return &stopwatch{t: t, start: now, last: now}
}

// lap logs that what is done, with the time since the previous lap.
func (s *stopwatch) lap(what string) {
	s.t.Helper()
	now := time.Now()
	s.t.Logf("%s: %s (%s into the test)", what, now.Sub(s.last).Round(time.Millisecond), now.Sub(s.start).Round(time.Millisecond))
	s.last = now
}

// planGuard records every plan the nodes report during a change that must
// keep some nodes (a join keeps the old members; a leave keeps everyone
// but the leaver): a plan whose members or target lacks one of them would
// hand that node's partitions away, which no operator asked for.
type planGuard struct {
	keep       []string
	mu         sync.Mutex // guards violations: polls come from several goroutines
	violations []string
}

// observe checks the plans of one poll.
func (g *planGuard) observe(st map[string]nodeStats) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for n, s := range st {
		if s.Plan.Epoch == 0 {
			continue // a node that has not learnt the plan yet follows none
		}
		for _, k := range g.keep {
			if !slices.Contains(s.Plan.Members, k) || (len(s.Plan.Target) > 0 && !slices.Contains(s.Plan.Target, k)) {
				if len(g.violations) < 10 {
					g.violations = append(g.violations, fmt.Sprintf("%s follows plan %+v, which lacks %s", n, s.Plan, k))
				}
				break
			}
		}
	}
}

// check fails the test if any plan lacked a node to keep.
func (g *planGuard) check(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.violations) > 0 {
		t.Errorf("plans dropped nodes that stay members:\n%s", strings.Join(g.violations, "\n"))
	}
}

// watch polls GET /v1/stats of names every 200ms in the background and
// passes each full poll to fn, until the returned stop is called (at most
// 3000 polls); stop waits for the poller.
func (c *elasticCluster) watch(names []string, fn func(map[string]nodeStats)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for range 3000 {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if st, err := c.stats(names); err == nil {
				fn(st)
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// poll is eventually without failing: it returns cond's last error if it
// did not return nil by the deadline (at most 100000 polls).
func poll(deadline time.Time, cond func() error) error {
	var err error
	for i := 0; i < 100000; i++ {
		if err = cond(); err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// loaded waits until members, a stable cluster, hold keys [0, n) of ks 3
// times, the starting point of a change. A write acknowledged with W=2
// whose third copy failed is not stored again by anything but read repair
// when no stand-in was free to keep a hint (3 nodes and N=3, with a
// replica that gossip suspected for a moment: docs/hints.md). If the
// copies have not settled within 15 s, every key is read with R=all,
// whose read repair stores the missing copies, and the copies must then
// settle by the deadline.
func (c *elasticCluster) loaded(t *testing.T, deadline time.Time, members []string, ks keySet, n int) {
	t.Helper()
	want := slices.Sorted(slices.Values(members))
	settle := time.Now().Add(15 * time.Second)
	if deadline.Before(settle) {
		settle = deadline
	}
	err := poll(settle, func() error {
		st, err := c.stats(members)
		if err != nil {
			return err
		}
		return changeOver(st, want, int64(n))
	})
	if err == nil {
		return
	}
	t.Logf("after loading: %v; repairing with R=all reads of every key", err)
	var addrs []string
	for _, m := range members {
		addrs = append(addrs, c.httpAddr(m))
	}
	if o := readAll(ks, upTo(n), addrs, "all"); o.failures() > 0 {
		t.Fatalf("R=all reads of the loaded keys: %s", o)
	}
	c.waitChangeOver(t, deadline, members, int64(n), nil)
}
