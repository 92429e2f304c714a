package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Ports of the dev cluster: node i (1-based) listens on base+i-1, so n1 is
// 127.0.0.1:8001 (HTTP), :6380 (Redis protocol), :7001 (RPC), :9001
// (gossip). configs/dev-node*.yaml spell out the same layout.
const (
	devHTTPBase   = 8001
	devRESPBase   = 6380
	devRPCBase    = 7001
	devGossipBase = 9001
	devMaxNodes   = 9
	// devTailLines is how many lines of a dead child's output are shown.
	devTailLines = 15
)

// devConfig configures a dev cluster run.
type devConfig struct {
	// Exe is the ringkv binary the children run. Default os.Executable().
	Exe string
	// DataDir holds one data directory and one log file per node.
	DataDir string
	// Nodes is the number of nodes, 1..devMaxNodes.
	Nodes int
	// Zones, when positive, puts node i in zone z<(i-1) mod Zones + 1>;
	// 0..Nodes. Default 0 (no zones).
	Zones int
	// ReadyTimeout is how long to wait for a child's ready line before
	// saying so (the child keeps running). Default 60s.
	ReadyTimeout time.Duration
	// StopTimeout is how long children get after SIGTERM before SIGKILL.
	// Default 30s.
	StopTimeout time.Duration
	// Env is added to each child's environment (after os.Environ()).
	Env []string
	// Ready returns once the node serving HTTP at httpAddr serves clients
	// (it has joined the cluster), or with ctx's error when ctx ends
	// first. Default: waitReadyz, which polls GET /readyz.
	Ready func(ctx context.Context, httpAddr string) error
}

// readyzPoll is how often waitReadyz asks a child whether it is ready.
const readyzPoll = 100 * time.Millisecond

// waitReadyz polls GET http://httpAddr/readyz until it answers 200 or ctx
// ends. A node with seeds answers 503 until it has joined its cluster.
func waitReadyz(ctx context.Context, httpAddr string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(readyzPoll)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// devOrder decides when each node's line is printed: in plan order n1..nK,
// a node's line once it and every node before it is ready or gone, so the
// list reads the same whichever node joined first.
type devOrder struct {
	done []bool // ready or exited
	next int    // first index not yet passed
}

// settle records that node i is ready or exited and returns the nodes
// whose turn has now come, in order.
func (o *devOrder) settle(i int) []int {
	o.done[i] = true
	var out []int
	for o.next < len(o.done) && o.done[o.next] {
		out = append(out, o.next)
		o.next++
	}
	return out
}

func (a *app) devCmd() *cobra.Command {
	cfg := devConfig{ReadyTimeout: 60 * time.Second, StopTimeout: 30 * time.Second}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local cluster of ringkv server processes (3 nodes, N=3)",
		Long: `Run a local cluster: each node is a child "ringkv server" process on 127.0.0.1,
so killing one (kill -9 PID) is a real crash. Node i listens on HTTP 800i,
Redis protocol 638(i-1), RPC 700i and gossip 900i, uses the fast "local"
gossip profile, and keeps its data in DIR/n<i> and its log in DIR/n<i>.log.

A child that dies is reported, not restarted. Ctrl-C stops every child with
SIGTERM and waits for it. Running dev again reuses the data.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Nodes < 1 || cfg.Nodes > devMaxNodes {
				return usageError("--nodes must be in 1..%d, got %d", devMaxNodes, cfg.Nodes)
			}
			if cfg.Zones < 0 || cfg.Zones > cfg.Nodes {
				return usageError("--zones must be in 0..%d (the number of nodes), got %d", cfg.Nodes, cfg.Zones)
			}
			if cfg.Exe == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find the ringkv binary to run: %w", err)
				}
				cfg.Exe = exe
			}
			return a.runDev(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.DataDir, "data", "./ringkv-data", "directory for the nodes' data and logs")
	cmd.Flags().IntVar(&cfg.Nodes, "nodes", 3, "number of nodes")
	cmd.Flags().IntVar(&cfg.Zones, "zones", 0, "spread the nodes round-robin over this many zones z1..zK (0: no zones)")
	return cmd
}

// devNode is one planned child.
type devNode struct {
	Name, HTTP, RESP, RPC, Gossip string
	Zone                          string // "" for none
	DataDir, Log                  string
	Seeds                         []string
}

// devPlan lays out n nodes under dataDir: names n1..nn, the fixed ports, and
// every other node's gossip address as seeds, so that any subset of the
// nodes can start first.
func devPlan(dataDir string, n int) []devNode {
	nodes := make([]devNode, n)
	addr := func(base, i int) string { return "127.0.0.1:" + strconv.Itoa(base+i) }
	for i := range nodes {
		name := "n" + strconv.Itoa(i+1)
		nodes[i] = devNode{
			Name:    name,
			HTTP:    addr(devHTTPBase, i),
			RESP:    addr(devRESPBase, i),
			RPC:     addr(devRPCBase, i),
			Gossip:  addr(devGossipBase, i),
			DataDir: filepath.Join(dataDir, name),
			Log:     filepath.Join(dataDir, name+".log"),
		}
	}
	for i := range nodes {
		for j := range nodes {
			if i != j {
				nodes[i].Seeds = append(nodes[i].Seeds, nodes[j].Gossip)
			}
		}
	}
	return nodes
}

// devZones puts the nodes of plan round-robin into zones z1..zK (K =
// zones; none when 0) and returns plan.
func devZones(plan []devNode, zones int) []devNode {
	for i := range plan {
		if zones > 0 {
			plan[i].Zone = "z" + strconv.Itoa(i%zones+1)
		}
	}
	return plan
}

// args is the child's command line.
func (d devNode) args() []string {
	args := []string{"server",
		"--name", d.Name, "--data-dir", d.DataDir,
		"--http", d.HTTP, "--resp", d.RESP, "--rpc", d.RPC, "--gossip", d.Gossip,
	}
	if len(d.Seeds) > 0 {
		args = append(args, "--seeds", strings.Join(d.Seeds, ","))
	}
	if d.Zone != "" {
		args = append(args, "--zone", d.Zone)
	}
	if d.Name == "n1" {
		// n1 starts the cluster and the others join it; restarted, it
		// serves at once only while its plan is itself alone.
		args = append(args, "--bootstrap")
	}
	return args
}

// devEnv is the environment every child gets on top of the caller's: the
// fast gossip profile, and N capped at the number of nodes so that a
// one-node dev cluster still meets its quorums.
func devEnv(nodes int) []string {
	return []string{
		envKey("gossip.profile") + "=local",
		envKey("cluster.replication") + "=" + strconv.Itoa(min(3, nodes)),
		// The dev cluster is plaintext on loopback, whatever the shell says.
		envKey("tls.cert_file") + "=", envKey("tls.key_file") + "=", envKey("tls.ca_file") + "=",
	}
}

// devEvent is what a child's goroutines report to the supervisor loop.
type devEvent struct {
	idx   int
	bound map[string]string // the parsed ready line (listeners bound), or nil
	// joined is true once the child serves clients (cfg.Ready returned).
	joined bool
	exit   error // set with exited
	// exited is true once the process is gone (Wait returned).
	exited bool
}

// devChild is a running child and what the supervisor knows of it.
type devChild struct {
	node  devNode
	cmd   *exec.Cmd
	out   *tailLog
	bound map[string]string // its ready line (listeners bound)
	// stop ends the wait for the child to serve clients (the child's
	// context in runDev); called when it exits and when dev returns.
	stop    context.CancelFunc
	ready   bool
	exited  bool
	exitErr error
	killed  bool
}

// runDev starts the children, reports their readiness and deaths, and stops
// them all when ctx ends. It returns nil when every child stopped cleanly
// after ctx ended.
func (a *app) runDev(ctx context.Context, cfg devConfig) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create dev data directory: %w", err)
	}
	plan := devZones(devPlan(cfg.DataDir, cfg.Nodes), cfg.Zones)
	if cfg.Ready == nil {
		cfg.Ready = waitReadyz
	}
	// Each child sends at most one bound, one joined and one exit event,
	// so this buffer never blocks a child's goroutines.
	events := make(chan devEvent, 3*len(plan))
	children := make([]*devChild, 0, len(plan))
	env := append(append(os.Environ(), devEnv(cfg.Nodes)...), cfg.Env...)
	defer func() {
		for _, ch := range children {
			ch.stop()
		}
	}()
	// childCtx[i] ends when child i exits or dev returns; it bounds the
	// wait for the child to serve clients.
	childCtx, err := a.startDevChildren(ctx, cfg, plan, env, events, &children)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "ringkv dev: starting %d nodes (data and logs in %s); each is listed once it serves clients\n", len(plan), cfg.DataDir)

	readyTimer := time.NewTimer(cfg.ReadyTimeout)
	defer readyTimer.Stop()
	order := devOrder{done: make([]bool, len(children))}
	show := func(idx int) {
		for _, i := range order.settle(idx) {
			if ch := children[i]; ch.ready {
				fmt.Fprintf(a.stdout, "%s  http=%s  resp=%s  pid=%d  log=%s\n", ch.node.Name, ch.bound["http"], ch.bound["resp"], ch.cmd.Process.Pid, ch.node.Log)
			}
		}
	}
	running, ready := len(children), 0
	for running > 0 {
		select {
		case ev := <-events:
			ch := children[ev.idx]
			switch {
			case ev.bound != nil:
				ch.bound = ev.bound
				go func(ctx context.Context, idx int, addr string) {
					if cfg.Ready(ctx, addr) == nil {
						events <- devEvent{idx: idx, joined: true}
					}
				}(childCtx[ev.idx], ev.idx, ev.bound["http"])
			case ev.joined:
				if ch.exited || ch.ready {
					break
				}
				ch.ready = true
				ready++
				show(ev.idx)
				if ready == len(children) {
					a.printDevBanner(plan)
				}
			case ev.exited:
				ch.exited, ch.exitErr = true, ev.exit
				ch.stop()
				running--
				a.reportDeadChild(ch, running, "while running")
				if !ch.ready {
					show(ev.idx)
				}
			}
		case <-readyTimer.C:
			a.reportSlowChildren(children, cfg.ReadyTimeout)
		case <-ctx.Done():
			fmt.Fprintf(a.stdout, "ringkv dev: stopping %d node(s)\n", running)
			return a.stopDevChildren(children, events, cfg.StopTimeout)
		}
	}
	fmt.Fprintln(a.stderr, "ringkv dev: every node has exited; stopping")
	return errSilent
}

// reportSlowChildren names the children that do not serve clients yet
// once the ready timeout passed; dev keeps waiting for them.
func (a *app) reportSlowChildren(children []*devChild, after time.Duration) {
	for _, ch := range children {
		if !ch.ready && !ch.exited {
			fmt.Fprintf(a.stderr, "ringkv dev: %s does not serve clients after %s; still waiting (see %s)\n", ch.node.Name, after, ch.node.Log)
		}
	}
}

// startDevChildren starts a child per plan entry, appending each to
// *children, and returns each one's context. When one fails to start, the
// ones already started are stopped and the start failure is returned:
// stopDevChildren reports on its own what failed to stop.
func (a *app) startDevChildren(ctx context.Context, cfg devConfig, plan []devNode, env []string, events chan devEvent, children *[]*devChild) ([]context.Context, error) {
	childCtx := make([]context.Context, len(plan))
	for i, n := range plan {
		ch, err := startDevChild(cfg.Exe, n, env, i, events)
		if err != nil {
			_ = a.stopDevChildren(*children, events, cfg.StopTimeout)
			return nil, err
		}
		childCtx[i], ch.stop = context.WithCancel(ctx)
		*children = append(*children, ch)
	}
	return childCtx, nil
}

// startDevChild starts one child whose output goes to its log file.
func startDevChild(exe string, n devNode, env []string, idx int, events chan<- devEvent) (*devChild, error) {
	if err := os.MkdirAll(filepath.Dir(n.Log), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory for %s: %w", n.Name, err)
	}
	logFile, err := os.OpenFile(n.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", n.Name, err)
	}
	fmt.Fprintf(logFile, "--- ringkv dev: starting %s at %s: %s %s\n", n.Name, time.Now().Format(time.RFC3339), exe, strings.Join(n.args(), " "))
	out := &tailLog{w: logFile, max: devTailLines}
	var once sync.Once
	cmd := exec.Command(exe, n.args()...)
	cmd.Env = env
	cmd.Stdout = &lineWriter{onLine: func(line string) {
		out.line(line)
		if fields, ok := parseReadyLine(line); ok {
			once.Do(func() { events <- devEvent{idx: idx, bound: fields} })
		}
	}}
	cmd.Stderr = &lineWriter{onLine: out.line}
	cmd.SysProcAttr = devSysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", n.Name, exe, err)
	}
	go func() {
		err := cmd.Wait() // returns after the output goroutines are done
		out.line(fmt.Sprintf("--- ringkv dev: %s exited: %s", n.Name, exitText(err)))
		logFile.Close()
		events <- devEvent{idx: idx, exited: true, exit: err}
	}()
	return &devChild{node: n, cmd: cmd, out: out}, nil
}

// reportDeadChild tells the user that a child failed (when says at what
// stage), with the end of its log: the cause is usually there.
func (a *app) reportDeadChild(ch *devChild, running int, when string) {
	if !ch.ready {
		when = "before it was ready"
	}
	fmt.Fprintf(a.stderr, "ringkv dev: %s (pid %d) exited %s: %s; it is not restarted (%d node(s) still running)\n",
		ch.node.Name, ch.cmd.Process.Pid, when, exitText(ch.exitErr), running)
	if tail := ch.out.tail(); len(tail) > 0 {
		fmt.Fprintf(a.stderr, "last lines of %s:\n", ch.node.Log)
		for _, l := range tail {
			fmt.Fprintf(a.stderr, "  %s\n", l)
		}
	}
}

// stopDevChildren stops the running children one at a time, last started
// first: SIGTERM, then up to timeout for it to exit, then SIGKILL. One at a
// time, because a node that stops tells its peers it is leaving gossip, and
// peers that are themselves stopping cannot hear it. It returns nil when
// every child exited with status 0.
func (a *app) stopDevChildren(children []*devChild, events <-chan devEvent, timeout time.Duration) error {
	var failed []string
	running := 0
	for _, ch := range children {
		if !ch.exited {
			running++
		}
	}
	record := func(ev devEvent) {
		if !ev.exited {
			return
		}
		ch := children[ev.idx]
		ch.exited, ch.exitErr = true, ev.exit
		running--
		switch {
		case ch.killed:
		case ev.exit != nil:
			failed = append(failed, fmt.Sprintf("%s: %s", ch.node.Name, exitText(ev.exit)))
			a.reportDeadChild(ch, running, "while stopping")
		default:
			fmt.Fprintf(a.stdout, "ringkv dev: %s stopped\n", ch.node.Name)
		}
	}
	for i := len(children) - 1; i >= 0; i-- {
		ch := children[i]
		if ch.exited {
			continue
		}
		if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			fmt.Fprintf(a.stderr, "ringkv dev: signal %s: %v\n", ch.node.Name, err)
		}
		deadline := time.NewTimer(timeout)
		for !ch.exited {
			select {
			case ev := <-events:
				record(ev)
			case <-deadline.C:
				ch.killed = true
				failed = append(failed, fmt.Sprintf("%s: still running %s after SIGTERM, killed", ch.node.Name, timeout))
				_ = ch.cmd.Process.Kill()
			}
		}
		deadline.Stop()
	}
	if len(failed) > 0 {
		return fmt.Errorf("dev cluster did not stop cleanly: %s", strings.Join(failed, "; "))
	}
	return nil
}

func (a *app) printDevBanner(plan []devNode) {
	n := min(3, len(plan))
	other := plan[len(plan)-1]
	fmt.Fprintf(a.stdout, `ringkv dev: %d node(s) ready, N=%d. Ctrl-C stops them. Try:
  curl -X PUT --data-binary hello http://%s/v1/kv/greeting
  redis-cli -p %s GET greeting
  go run ./cmd/ringkv ring
`, len(plan), n, plan[0].HTTP, portOf(other.RESP))
}

func portOf(addr string) string {
	return addr[strings.LastIndexByte(addr, ':')+1:]
}

// exitText describes how a process ended.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	return err.Error()
}

// tailLog writes a child's output lines to its log file and keeps the last
// few for error reports. Stdout and stderr are copied by two goroutines, so
// mu guards the file writes and the tail.
type tailLog struct {
	mu    sync.Mutex
	w     io.Writer
	max   int
	lines []string
}

func (t *tailLog) line(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// A failing log write (disk full) must not stop the child, whose
	// output would then block: the line is dropped from the file only.
	_, _ = io.WriteString(t.w, l+"\n")
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailLog) tail() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// lineWriter splits what one goroutine writes into lines. A line longer
// than maxLine is passed on in pieces so that memory stays bounded.
type lineWriter struct {
	buf    []byte
	onLine func(string)
}

const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLine {
				w.onLine(string(w.buf[:maxLine]))
				w.buf = w.buf[maxLine:]
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.onLine(string(bytes.TrimSuffix(w.buf, []byte("\r"))))
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}
