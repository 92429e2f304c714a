package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringkv/ringkv/chaos"
)

// chaosOpts are the flags of ringkv chaos.
type chaosOpts struct {
	run        chaos.RunConfig
	jsonOut    bool
	keep       bool
	verbose    bool
	checkNetNS bool
}

func (a *app) chaosCmd() *cobra.Command {
	o := &chaosOpts{}
	var names []string
	for _, s := range chaos.Scenarios() {
		names = append(names, s.Name)
	}
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run a recorded workload against a local cluster while injecting faults, then check the history",
		Long: `Start a local cluster of ringkv server processes (temporary data directories,
fast failure detection), run concurrent clients that write unique values with
causal contexts and read them back, inject the faults of one scenario for
--duration, heal, let hints and anti-entropy settle, read every key with R=all,
and check the recorded history: no acknowledged write lost, no value that no
client wrote, no overwritten value back, no stale read outside fault windows.

Scenarios: ` + strings.Join(names, ", ") + `.
isolate and isolate-minority cut the network: they need root and iptables,
and run inside a private network namespace (nodes on 127.0.0.2, 127.0.0.3, ...),
so the host's firewall is never touched.

Exit status: 0 when the check passes, 1 when it found a violation or the run
failed, 2 for bad flags or a scenario this machine cannot run.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.chaos(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.run.Scenario, "scenario", "kill", "fault scenario: "+strings.Join(names, ", "))
	f.DurationVar(&o.run.Duration, "duration", time.Minute, "how long the workload and the faults run")
	f.IntVar(&o.run.Nodes, "nodes", 5, "nodes in the cluster (3..9)")
	f.IntVar(&o.run.Replication, "replication", 3, "replicas per key (N)")
	f.StringVar(&o.run.R, "r", "quorum", "read quorum of the workload (one, quorum, all or a count)")
	f.StringVar(&o.run.W, "w", "quorum", "write quorum of the workload (one, quorum, all or a count)")
	f.IntVar(&o.run.Clients, "clients", 8, "concurrent workload clients")
	f.IntVar(&o.run.Keys, "keys", 20, "keys shared by all clients (each also owns a few)")
	f.StringVar(&o.run.Mode, "mode", chaos.ModeContext, "context: reuse the context a write returned; read-first: read before every write")
	f.Int64Var(&o.run.Seed, "seed", 0, "seed of the workload and the fault schedule (0: random)")
	f.StringVar(&o.run.Dir, "dir", "", "directory for the nodes' data and logs and the history (default: a new temporary directory)")
	f.StringVar(&o.run.Binary, "binary", "", "ringkv binary the nodes run (default: this one)")
	f.BoolVar(&o.jsonOut, "json", false, "print the report as JSON on stdout")
	f.BoolVar(&o.keep, "keep", false, "keep the directory and the history even when the check passes")
	f.BoolVar(&o.verbose, "verbose", false, "show every node's output on stderr")
	f.BoolVar(&o.checkNetNS, "check-netns", false, "only say whether this machine can run the scenarios that cut the network")
	_ = f.MarkHidden("check-netns")
	return cmd
}

func (a *app) chaos(cmd *cobra.Command, o *chaosOpts) error {
	if o.checkNetNS {
		if err := chaos.NetNSSupport(); err != nil {
			return &exitCodeError{code: 2, err: err}
		}
		fmt.Fprintln(a.stdout, "network namespaces and iptables available")
		return nil
	}
	if err := o.run.Validate(); err != nil {
		return usageError("%v", err)
	}
	sc, err := chaos.ScenarioByName(o.run.Scenario)
	if err != nil {
		return usageError("%v", err)
	}
	if sc.NeedsCuts && !chaos.InNetNS() {
		return a.chaosInNetNS(cmd, sc.Name)
	}
	if chaos.InNetNS() {
		if err := chaos.SetupNetNS(); err != nil {
			return err
		}
	}
	if o.run.Seed == 0 {
		o.run.Seed = time.Now().UnixNano()
	}
	if o.run.Binary == "" {
		if o.run.Binary, err = os.Executable(); err != nil {
			return err
		}
	}
	made := false
	if o.run.Dir == "" {
		if o.run.Dir, err = chaos.DefaultDir(); err != nil {
			return err
		}
		made = true
	}
	o.run.KeepHistory = o.keep
	o.run.Progress = a.stderr
	if o.verbose {
		o.run.Log = a.stderr
	}
	fmt.Fprintf(a.stderr, "chaos: scenario %s, %d nodes, N=%d, R=%s W=%s, mode %s, seed %d, %v; directory %s\n",
		sc.Name, o.run.Nodes, o.run.Replication, o.run.R, o.run.W, o.run.Mode, o.run.Seed, o.run.Duration, o.run.Dir)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, runErr := chaos.Run(ctx, o.run)
	if runErr != nil && res.Scenario == "" {
		return runErr
	}
	if o.jsonOut {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		writeChaosReport(a.stdout, res)
	}
	switch {
	case runErr != nil:
		fmt.Fprintf(a.stderr, "chaos: the run failed: %v; logs are in %s\n", runErr, o.run.Dir)
		return errSilent
	case res.Failed():
		fmt.Fprintf(a.stderr, "chaos: violations found; the history is %s, node logs in %s\n", res.History, o.run.Dir)
		return errSilent
	}
	if made && !o.keep {
		_ = os.RemoveAll(o.run.Dir)
	}
	return nil
}

// chaosInNetNS runs this same command again inside a private network
// namespace, so that its iptables cuts never reach the host.
func (a *app) chaosInNetNS(cmd *cobra.Command, scenario string) error {
	if err := chaos.NetNSSupport(); err != nil {
		return &exitCodeError{code: 2, err: fmt.Errorf("scenario %s cuts the network, which this machine cannot do here: %w", scenario, err)}
	}
	child, err := chaos.NetNSCommand(a.args, nil)
	if err != nil {
		return err
	}
	child.Stdin, child.Stdout, child.Stderr = a.stdin, a.stdout, a.stderr
	// Ctrl-C or SIGTERM is passed on: the child stops its run, reports
	// and exits, and this process waits for it.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := child.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-sigs:
				_ = child.Process.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	err = child.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return &exitCodeError{code: ee.ExitCode(), err: errSilent}
	}
	return err
}

// writeChaosReport prints the run's report for people.
func writeChaosReport(w io.Writer, res chaos.RunResult) {
	fmt.Fprintf(w, "scenario %s: %d nodes, N=%d, R=%s, W=%s, mode %s, seed %d, %.0fs\n",
		res.Scenario, res.Nodes, res.Replication, res.R, res.W, res.Mode, res.Seed, res.DurationSec)
	counts := map[chaos.FaultKind]int{}
	for _, f := range res.Faults {
		counts[f.Kind]++
	}
	var parts []string
	for _, k := range []chaos.FaultKind{chaos.FaultKill, chaos.FaultFreeze, chaos.FaultWipe, chaos.FaultCut, chaos.FaultJoin, chaos.FaultLeave, chaos.FaultDegraded} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	fmt.Fprintf(w, "faults: %s\n", strings.Join(parts, ", "))
	if res.SettleError != "" {
		fmt.Fprintf(w, "settle: %s\n", res.SettleError)
	}
	res.Check.WriteText(w)
	if res.History != "" {
		fmt.Fprintf(w, "history: %s\n", res.History)
	}
}
