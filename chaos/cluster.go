package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ringkv/ringkv/internal/freeport"
)

// ClusterConfig describes a cluster of ringkv processes for a chaos run.
type ClusterConfig struct {
	// Binary is the path of the ringkv executable.
	Binary string
	// Dir holds every node's data directory (Dir/<name>), config
	// (Dir/<name>.yaml) and output (Dir/<name>.log).
	Dir string
	// Nodes is how many nodes StartCluster starts (default 5).
	Nodes int
	// Spare nodes are configured (every node lists them as seeds) but not
	// started, for a join (default 0).
	Spare int
	// Replication is N, cluster.replication (default 3).
	Replication int
	// IPs puts node i (n1 is 0) on 127.0.0.(i+2), which Cut needs: rules
	// tell nodes apart by address. Inside the network namespace every
	// node uses the same ports; elsewhere they get free ports. false puts
	// every node on 127.0.0.1 with free ports.
	IPs bool
	// Log, when not nil, gets every node's output lines prefixed with the
	// node's name; they always go to Dir/<name>.log.
	Log io.Writer
	// Extra holds config keys (nested maps, as in the YAML file) merged
	// over every node's config, e.g. {"storage": {"fsync": "interval"}}.
	Extra map[string]any
}

// Cluster is a set of ringkv processes on this machine. Its methods may
// be called from several goroutines; operations on one node are
// serialised.
type Cluster struct {
	cfg   ClusterConfig
	nodes []*node // n1..nK, fixed at start

	logMu sync.Mutex // serialises writes to cfg.Log

	mu      sync.Mutex // guards the nodes' state fields and stopped
	stopped bool

	fwMu  sync.Mutex // guards chain and cuts; held across iptables runs
	chain bool       // the iptables chain exists
	cuts  []string   // the cuts in place, described for progress lines

	opMu map[string]*sync.Mutex // per node: one operation at a time
}

// Bounds of the process operations.
const (
	// startLimit bounds one start when ctx sets no deadline.
	startLimit = 3 * time.Minute
	// exitLimit bounds the wait for a SIGKILLed process to be reaped.
	exitLimit = 30 * time.Second
	// stopLimit is how long Stop waits after SIGTERM before SIGKILL
	// (a node's graceful stop is bounded by 10 s).
	stopLimit = 20 * time.Second
	// bindRetries is how often a start that failed to bind is retried.
	bindRetries = 5
)

// StartCluster configures Nodes+Spare nodes, starts the first Nodes, and
// returns once every one serves clients (GET /readyz) and each sees all
// of them alive and joined in a stable plan. On error every process it
// started is stopped.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Binary == "" || cfg.Dir == "" {
		return nil, errors.New("chaos: ClusterConfig needs Binary and Dir")
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = defaultNodes
	}
	if cfg.Replication == 0 {
		cfg.Replication = defaultReplication
	}
	total := cfg.Nodes + cfg.Spare
	switch {
	case cfg.Nodes < 1 || cfg.Spare < 0 || total > maxNodes:
		return nil, fmt.Errorf("chaos: %d nodes and %d spares: want 1..%d in all", cfg.Nodes, cfg.Spare, maxNodes)
	case cfg.Replication < 1 || cfg.Replication > cfg.Nodes:
		return nil, fmt.Errorf("chaos: replication %d with %d nodes", cfg.Replication, cfg.Nodes)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	c := &Cluster{cfg: cfg, opMu: map[string]*sync.Mutex{}}
	for i := range total {
		name := fmt.Sprintf("n%d", i+1)
		ip := "127.0.0.1"
		if cfg.IPs {
			ip = nodeIP(i)
		}
		n := &node{
			name:    name,
			ip:      ip,
			dataDir: filepath.Join(cfg.Dir, name),
			config:  filepath.Join(cfg.Dir, name+".yaml"),
			out:     &nodeOutput{name: name, shared: cfg.Log, sharedMu: &c.logMu},
		}
		f, err := os.OpenFile(filepath.Join(cfg.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			c.closeLogs()
			return nil, fmt.Errorf("chaos: %w", err)
		}
		n.out.file = f
		if err := c.pickPorts(n); err != nil {
			f.Close()
			c.closeLogs()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		c.opMu[name] = &sync.Mutex{}
	}
	err := c.startInitial(ctx)
	if err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

// startInitial starts the first Nodes nodes together (the first
// bootstraps the cluster; the others join it) and waits for the cluster
// to form.
func (c *Cluster) startInitial(ctx context.Context) error {
	ctx, cancel := boundCtx(ctx, startLimit)
	defer cancel()
	initial := c.nodes[:c.cfg.Nodes]
	errs := make([]error, len(initial))
	var wg sync.WaitGroup
	for i, n := range initial {
		wg.Go(func() { errs[i] = c.start(ctx, n, i == 0) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	names := make([]string, len(initial))
	for i, n := range initial {
		names[i] = n.name
	}
	return c.waitStable(ctx, names)
}

// pickPorts sets n's ports: the fixed ones on its own IP inside the
// namespace, free ones otherwise.
func (c *Cluster) pickPorts(n *node) error {
	if c.cfg.IPs && InNetNS() {
		c.mu.Lock()
		n.ports = fixedPorts
		c.mu.Unlock()
		return nil
	}
	p, err := freeport.Ports(n.ip, 4)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	c.mu.Lock()
	n.ports = [4]int(p)
	c.mu.Unlock()
	return nil
}

// Names returns every configured node's name, spares included: n1..nK.
func (c *Cluster) Names() []string {
	names := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		names[i] = n.name
	}
	return names
}

// Serving returns the HTTP addresses (host:port) of the nodes that run,
// are not frozen, and served clients since they last started.
func (c *Cluster) Serving() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var addrs []string
	for _, n := range c.nodes {
		if n.proc != nil && n.ready && !n.frozen {
			addrs = append(addrs, n.addr(0))
		}
	}
	return addrs
}

// Running returns the names of the nodes with a process, frozen or not.
func (c *Cluster) Running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, n := range c.nodes {
		if n.proc != nil {
			names = append(names, n.name)
		}
	}
	return names
}

// servingNames is Serving by name.
func (c *Cluster) servingNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, n := range c.nodes {
		if n.proc != nil && n.ready && !n.frozen {
			names = append(names, n.name)
		}
	}
	return names
}

// members returns the nodes that should be ring members now: started
// once and not left.
func (c *Cluster) members() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, n := range c.nodes {
		if n.started && !n.left {
			names = append(names, n.name)
		}
	}
	return names
}

// HTTP returns the node's HTTP address (host:port), "" for an unknown name.
func (c *Cluster) HTTP(name string) string {
	n := c.node(name)
	if n == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return n.addr(0)
}

func (c *Cluster) node(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// lockNode returns the named node with its operation lock held.
func (c *Cluster) lockNode(name string) (*node, func(), error) {
	n := c.node(name)
	if n == nil {
		return nil, nil, fmt.Errorf("chaos: no node %q", name)
	}
	mu := c.opMu[name]
	mu.Lock()
	return n, mu.Unlock, nil
}

// Kill sends SIGKILL to the node (frozen or not) and waits until it is
// gone.
func (c *Cluster) Kill(name string) error {
	n, unlock, err := c.lockNode(name)
	if err != nil {
		return err
	}
	defer unlock()
	c.mu.Lock()
	p := n.proc
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("chaos: kill %s: not running", name)
	}
	if err := killNode(p); err != nil {
		return err
	}
	select {
	case <-p.done: // exited marked it down
		return nil
	case <-time.After(exitLimit):
		return fmt.Errorf("chaos: %s still running %s after SIGKILL", name, exitLimit)
	}
}

// Start starts the node on its data directory (a fresh one after Wipe,
// or for a spare) and waits until it serves clients. A node with seeds
// serves only once it has joined; if ctx ends first the process is left
// running (a join cannot be taken back) and an error returned.
func (c *Cluster) Start(ctx context.Context, name string) error {
	n, unlock, err := c.lockNode(name)
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := boundCtx(ctx, startLimit)
	defer cancel()
	return c.start(ctx, n, false)
}

func (c *Cluster) start(ctx context.Context, n *node, bootstrap bool) error {
	c.mu.Lock()
	switch {
	case c.stopped:
		c.mu.Unlock()
		return errStopped
	case n.proc != nil:
		c.mu.Unlock()
		return fmt.Errorf("chaos: start %s: already running", n.name)
	case n.left:
		c.mu.Unlock()
		return fmt.Errorf("chaos: start %s: it left the ring", n.name)
	}
	c.mu.Unlock()
	backoff := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		p, err := c.spawn(n, bootstrap)
		if err != nil {
			return err
		}
		err = c.waitReady(ctx, n, p)
		if err == nil {
			return nil
		}
		if !p.exited() || !p.out.sawBindFailure() || attempt >= bindRetries {
			return err
		}
		// Another process took a port between the reservation and the
		// bind. Ports a peer may know are kept (gossip refuses a new
		// address for a name it has seen alive); before the first
		// successful start new ones are fine.
		c.mu.Lock()
		fresh := !n.started
		c.mu.Unlock()
		if fresh {
			if err := c.pickPorts(n); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: start %s: %w (after: %w)", n.name, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// spawn writes n's config and starts its process.
func (c *Cluster) spawn(n *node, bootstrap bool) (*process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, errStopped
	}
	if err := writeConfig(n, c.nodes, c.cfg.Replication, bootstrap, c.cfg.Extra); err != nil {
		return nil, err
	}
	n.out.add(fmt.Sprintf("chaos| starting %s (%s)", n.name, time.Now().Format(time.RFC3339Nano)))
	args := []string{"server", "--config", n.config, "--data-dir", n.dataDir}
	p, err := startProcess(c.cfg.Binary, args, newLineWriter(n.out), func(p *process) { c.exited(n, p) })
	if err != nil {
		return nil, err
	}
	n.proc, n.ready, n.frozen = p, false, false
	return p, nil
}

// exited marks n down once its process p has exited, whether the harness
// ended it or it crashed or stopped by itself.
func (c *Cluster) exited(n *node, p *process) {
	c.mu.Lock()
	if n.proc == p {
		n.proc, n.ready, n.frozen = nil, false, false
	}
	c.mu.Unlock()
	n.out.add(fmt.Sprintf("chaos| %s exited (%v) at %s", n.name, p.err, time.Now().Format(time.RFC3339Nano)))
}

// waitReady waits for p's ready line, then for GET /readyz to answer 200.
func (c *Cluster) waitReady(ctx context.Context, n *node, p *process) error {
	exited := func() error {
		return fmt.Errorf("chaos: %s exited before it served clients (%v); its last lines:\n%s", n.name, p.err, c.LogTail(n.name, 30))
	}
	select {
	case <-p.ready:
	case <-p.done:
		return exited()
	case <-ctx.Done():
		return fmt.Errorf("chaos: %s has not bound its listeners: %w; its last lines:\n%s", n.name, ctx.Err(), c.LogTail(n.name, 30))
	}
	if got := p.out.readyAddrs(); got["name"] != n.name || got["http"] != n.addr(0) {
		return fmt.Errorf("chaos: %s printed ready line %v, want name %s http %s", n.name, got, n.name, n.addr(0))
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if readyz(ctx, n.addr(0)) {
			c.mu.Lock()
			if n.proc == p {
				n.ready, n.started = true, true
			}
			c.mu.Unlock()
			return nil
		}
		select {
		case <-p.done:
			return exited()
		case <-ctx.Done():
			return fmt.Errorf("chaos: %s does not serve clients (GET /readyz): %w", n.name, ctx.Err())
		case <-tick.C:
		}
	}
}

// Freeze stops the node with SIGSTOP: it holds its connections and
// answers nothing until Thaw.
func (c *Cluster) Freeze(name string) error {
	return c.setFrozen(name, true)
}

// Thaw resumes a frozen node with SIGCONT.
func (c *Cluster) Thaw(name string) error {
	return c.setFrozen(name, false)
}

func (c *Cluster) setFrozen(name string, freeze bool) error {
	n, unlock, err := c.lockNode(name)
	if err != nil {
		return err
	}
	defer unlock()
	c.mu.Lock()
	p, frozen := n.proc, n.frozen
	c.mu.Unlock()
	switch {
	case p == nil:
		return fmt.Errorf("chaos: freeze or thaw %s: not running", name)
	case frozen == freeze:
		return fmt.Errorf("chaos: %s is already %s", name, map[bool]string{true: "frozen", false: "thawed"}[freeze])
	}
	if freeze {
		err = freezeNode(p)
	} else {
		err = thawNode(p)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	n.frozen = freeze
	c.mu.Unlock()
	return nil
}

// Wipe deletes the data directory of a node that is down; its next Start
// makes a new one (a new incarnation under the same name).
func (c *Cluster) Wipe(name string) error {
	n, unlock, err := c.lockNode(name)
	if err != nil {
		return err
	}
	defer unlock()
	c.mu.Lock()
	running := n.proc != nil
	c.mu.Unlock()
	if running {
		return fmt.Errorf("chaos: wipe %s: it is running", name)
	}
	if err := os.RemoveAll(n.dataDir); err != nil {
		return fmt.Errorf("chaos: wipe %s: %w", name, err)
	}
	return nil
}

// Leave asks the node to leave the ring (POST /v1/leave) and waits until
// its process has exited by itself, which it does once the change that
// removes it is committed. A node that left cannot be started again.
func (c *Cluster) Leave(ctx context.Context, name string) error {
	n, unlock, err := c.lockNode(name)
	if err != nil {
		return err
	}
	defer unlock()
	c.mu.Lock()
	p, frozen, addr := n.proc, n.frozen, n.addr(0)
	c.mu.Unlock()
	if p == nil || frozen {
		return fmt.Errorf("chaos: leave %s: not running, or frozen", name)
	}
	if _, err := doJSON(ctx, "POST", addr, "/v1/leave", maxAnswerBytes, nil); err != nil {
		return fmt.Errorf("chaos: leave %s: %w", name, err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("chaos: %s has not stopped after its leave: %w", name, ctx.Err())
	}
	ok := p.exitCode() == 0
	c.mu.Lock()
	n.left = ok
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("chaos: %s exited with %v during its leave; its last lines:\n%s", name, p.err, c.LogTail(name, 30))
	}
	return nil
}

// Stop ends every node: SIGCONT to frozen ones, SIGTERM, SIGKILL for any
// still running after a bound; then removes the iptables chain. It
// reports nodes that did not exit cleanly. Calling it again does nothing.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	type victim struct {
		n *node
		p *process
	}
	var vs []victim
	for _, n := range c.nodes {
		if n.proc != nil {
			vs = append(vs, victim{n, n.proc})
		}
	}
	c.mu.Unlock()

	errs := make([]error, len(vs))
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Go(func() { errs[i] = c.stopOne(v.n, v.p) })
	}
	wg.Wait()
	c.fwMu.Lock()
	if c.chain {
		errs = append(errs, removeChain())
		c.chain = false
	}
	c.fwMu.Unlock()
	c.closeLogs()
	return errors.Join(errs...)
}

func (c *Cluster) stopOne(n *node, p *process) error {
	// A stopped process handles SIGTERM only once continued.
	_ = thawNode(p)
	if err := termNode(p); err != nil {
		return err
	}
	var err error
	select {
	case <-p.done:
		if code := p.exitCode(); code != 0 {
			err = fmt.Errorf("chaos: %s exited with %v after SIGTERM; its last lines:\n%s", n.name, p.err, c.LogTail(n.name, 30))
		}
	case <-time.After(stopLimit):
		_ = killNode(p)
		select {
		case <-p.done:
		case <-time.After(exitLimit):
		}
		err = fmt.Errorf("chaos: %s still running %s after SIGTERM: killed", n.name, stopLimit)
	}
	return err
}

func (c *Cluster) closeLogs() {
	for _, n := range c.nodes {
		n.out.mu.Lock()
		if n.out.file != nil {
			n.out.file.Close()
			n.out.file = nil
		}
		n.out.mu.Unlock()
	}
}

// LogTail returns the last n lines the node printed (across its
// restarts), for failure reports.
func (c *Cluster) LogTail(name string, n int) string {
	nd := c.node(name)
	if nd == nil || n <= 0 {
		return ""
	}
	return strings.Join(nd.out.last(n), "\n")
}

// waitStable waits until every named node sees all of them alive and
// joined, and follows the same stable plan of exactly them with nothing
// left to copy.
func (c *Cluster) waitStable(ctx context.Context, names []string) error {
	return pollUntil(ctx, 200*time.Millisecond, "a stable plan of "+strings.Join(names, ","), func() error {
		views := c.views(ctx, names, nil)
		return firstProblem(stableProblems(slices.Sorted(slices.Values(names)), views))
	})
}

// pollUntil calls cond every interval until it returns nil; when ctx ends
// first it returns an error naming what and cond's last complaint.
func pollUntil(ctx context.Context, every time.Duration, what string, cond func() error) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: waiting for %s: %w; last: %w", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// boundCtx bounds ctx by limit when it has no deadline.
func boundCtx(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, limit)
}
