package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// RunConfig configures one chaos run: a cluster of real processes, a
// recorded workload and a fault scenario.
type RunConfig struct {
	Scenario    string
	Duration    time.Duration
	Nodes       int
	Replication int
	// R and W are the workload's quorums ("quorum", "one", "all", or a
	// count).
	R, W    string
	Clients int
	Keys    int
	// Mode is ModeContext or ModeReadFirst.
	Mode string
	Seed int64
	// Binary is the ringkv binary the nodes run.
	Binary string
	// Dir holds the nodes' data, configs and logs, and a kept history.
	Dir string
	// KeepHistory writes the history even when the run passes (a failing
	// run's history is always kept).
	KeepHistory bool
	// Progress, when set, gets a line per second while the run goes.
	Progress io.Writer
	// Log, when set, gets every node's output.
	Log io.Writer
	// SettleTimeout bounds the wait for the cluster to converge after the
	// faults. Default 3m.
	SettleTimeout time.Duration
}

// RunResult is what a run found.
type RunResult struct {
	Scenario    string        `json:"scenario"`
	DurationSec float64       `json:"duration_s"`
	Nodes       int           `json:"nodes"`
	Replication int           `json:"replication"`
	R           string        `json:"r"`
	W           string        `json:"w"`
	Mode        string        `json:"mode"`
	Seed        int64         `json:"seed"`
	Faults      []FaultWindow `json:"faults"`
	Check       Result        `json:"check"`
	// SettleError says what did not converge in time; the final reads
	// were still made.
	SettleError string `json:"settle_error,omitempty"`
	// History is the path of the kept history, if any.
	History string `json:"history,omitempty"`
}

// Failed reports whether the run found a violation, or could not read
// every key at the end (the check of those keys is then incomplete).
func (r RunResult) Failed() bool { return r.Check.Failed() }

// Validate fills cfg's defaults, spells the quorums as the server does
// and checks every bound, so that a bad flag is refused before anything
// starts.
func (c *RunConfig) Validate() error {
	if c.Scenario == "" {
		c.Scenario = "kill"
	}
	if c.Duration == 0 {
		c.Duration = time.Minute
	}
	if c.Nodes == 0 {
		c.Nodes = 5
	}
	if c.Replication == 0 {
		c.Replication = 3
	}
	if c.R == "" {
		c.R = "quorum"
	}
	if c.W == "" {
		c.W = "quorum"
	}
	if c.Mode == "" {
		c.Mode = ModeContext
	}
	if c.SettleTimeout == 0 {
		c.SettleTimeout = 3 * time.Minute
	}
	switch {
	case c.Duration < 5*time.Second || c.Duration > 24*time.Hour:
		return fmt.Errorf("chaos: duration %v out of range [5s, 24h]", c.Duration)
	case c.Nodes < 3 || c.Nodes > 9:
		return fmt.Errorf("chaos: nodes %d out of range [3, 9]", c.Nodes)
	case c.Replication < 1 || c.Replication > c.Nodes:
		return fmt.Errorf("chaos: replication %d out of range [1, nodes=%d]", c.Replication, c.Nodes)
	case c.Clients < 0 || c.Clients > maxClients:
		return fmt.Errorf("chaos: clients %d out of range [1, %d]", c.Clients, maxClients)
	case c.Keys < 0 || c.Keys > maxKeys/2:
		return fmt.Errorf("chaos: keys %d out of range [1, %d]", c.Keys, maxKeys/2)
	case c.Mode != ModeContext && c.Mode != ModeReadFirst:
		return fmt.Errorf("chaos: mode %q: want %s or %s", c.Mode, ModeContext, ModeReadFirst)
	}
	var err error
	if c.R, err = checkQuorumParam("R", c.R); err != nil {
		return err
	}
	if c.W, err = checkQuorumParam("W", c.W); err != nil {
		return err
	}
	if _, err := ScenarioByName(c.Scenario); err != nil {
		return err
	}
	return nil
}

// Run starts a cluster, runs the workload and the scenario's faults for
// cfg.Duration, heals, waits for the cluster to settle, reads every key
// with R=all and checks the history. The error is for a run that could
// not be made (bad config, a cluster that would not start); violations are
// in the result.
func Run(ctx context.Context, cfg RunConfig) (RunResult, error) {
	if err := cfg.Validate(); err != nil {
		return RunResult{}, err
	}
	if cfg.Binary == "" || cfg.Dir == "" {
		return RunResult{}, errors.New("chaos: RunConfig needs Binary and Dir")
	}
	sc, err := ScenarioByName(cfg.Scenario)
	if err != nil {
		return RunResult{}, err
	}
	if sc.NeedsCuts && !InNetNS() {
		return RunResult{}, fmt.Errorf("chaos: scenario %s cuts the network and must run inside the chaos network namespace", sc.Name)
	}
	res := RunResult{Scenario: sc.Name, DurationSec: cfg.Duration.Seconds(), Nodes: cfg.Nodes, Replication: cfg.Replication,
		R: cfg.R, W: cfg.W, Mode: cfg.Mode, Seed: cfg.Seed}
	c, err := StartCluster(ctx, ClusterConfig{Binary: cfg.Binary, Dir: cfg.Dir, Nodes: cfg.Nodes, Spare: sc.NeedsSpare,
		Replication: cfg.Replication, IPs: InNetNS(), Log: cfg.Log})
	if err != nil {
		return res, err
	}
	// Nodes the scenario killed do not exit cleanly, so Stop's report says
	// nothing the check has not judged.
	defer func() { _ = c.Stop() }()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	var h History
	w, err := NewWorkload(WorkloadConfig{Nodes: c.Serving, Clients: cfg.Clients, Keys: cfg.Keys, R: cfg.R, W: cfg.W,
		Mode: cfg.Mode, Seed: cfg.Seed, Client: client}, &h)
	if err != nil {
		return res, err
	}

	windows, health, runErr := runPhase(ctx, cfg, sc, c, w)

	say(cfg.Progress, "faults healed; waiting for the cluster to settle (hints delivered, a full anti-entropy round)")
	settleCtx, settleCancel := context.WithTimeout(ctx, cfg.SettleTimeout)
	if err := Settle(settleCtx, c); err != nil {
		res.SettleError = err.Error()
		say(cfg.Progress, "%v", err)
	}
	settleCancel()
	say(cfg.Progress, "reading %d keys with R=all", len(w.Keys()))
	finalCtx, finalCancel := context.WithTimeout(ctx, 2*time.Minute)
	finals := FinalReads(finalCtx, client, c.Serving(), w.Keys())
	finalCancel()

	windows = append(windows, health.windows()...)
	res.Faults = windows
	res.Check = Check(h.Ops(), finals, CheckConfig{
		Windows:     windows,
		LaxKinds:    []FaultKind{FaultCut, FaultDegraded, FaultKill, FaultFreeze, FaultWipe},
		StrictReads: strictReads(cfg),
	})
	if res.Failed() || runErr != nil || cfg.KeepHistory {
		path := filepath.Join(cfg.Dir, "history.jsonl")
		if err := WriteHistory(path, h.Ops(), windows, finals); err != nil {
			return res, errors.Join(runErr, err)
		}
		res.History = path
	}
	if runErr != nil {
		return res, runErr
	}
	return res, ctx.Err()
}

// runPhase runs the workload and the scenario's faults for cfg.Duration
// and returns the fault windows the scenario recorded, the health watcher
// (its windows are added after settling) and why the run cannot be
// trusted, if it cannot.
func runPhase(ctx context.Context, cfg RunConfig, sc Scenario, c *Cluster, w *Workload) ([]FaultWindow, *health, error) {
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	health := watchHealth(runCtx, c)
	workDone := make(chan struct{})
	go func() { defer close(workDone); w.Run(runCtx) }()
	progDone := make(chan struct{})
	go func() { defer close(progDone); progress(runCtx, cfg.Progress, c, w, health) }()
	var windows []FaultWindow
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x5eed))
	scErr := sc.Run(runCtx, c, rng, func(fw FaultWindow) { windows = append(windows, fw) })
	if scErr != nil {
		// The check still runs on what was recorded: the error is
		// returned beside the result.
		say(cfg.Progress, "scenario %s failed: %v; stopping the workload", sc.Name, scErr)
		cancel()
	}
	<-runCtx.Done()
	<-workDone
	<-progDone
	switch {
	case scErr != nil && ctx.Err() == nil:
		return windows, health, fmt.Errorf("chaos: scenario %s: %w", sc.Name, scErr)
	case w.Err() != nil:
		return windows, health, fmt.Errorf("chaos: the workload is broken: %w", w.Err())
	}
	return windows, health, nil
}

// strictReads: R+W > N, so that outside faults every read meets every
// acknowledged write.
func strictReads(cfg RunConfig) bool {
	r, okR := quorumCount(cfg.R, cfg.Replication)
	w, okW := quorumCount(cfg.W, cfg.Replication)
	return okR && okW && r+w > cfg.Replication
}

// quorumCount resolves a quorum spelling against N as the server does.
func quorumCount(q string, n int) (int, bool) {
	switch q {
	case "one":
		return 1, true
	case "quorum":
		return n/2 + 1, true
	case "all":
		return n, true
	}
	var k int
	if _, err := fmt.Sscanf(q, "%d", &k); err != nil || k < 1 || k > n {
		return 0, false
	}
	return k, true
}

func say(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// DefaultDir makes a fresh directory for a run under the system's temp
// directory.
func DefaultDir() (string, error) { return os.MkdirTemp("", "ringkv-chaos-") }
