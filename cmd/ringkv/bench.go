package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringkv/ringkv/replica"

	"github.com/spf13/cobra"
)

// Bounds of the bench flags.
const (
	benchMaxClients   = 1024
	benchMaxValueSize = 1 << 20
	benchMaxRecords   = 100_000_000
	benchMaxOps       = 1_000_000_000
	benchMaxDuration  = 24 * time.Hour
	benchMaxTimeout   = 10 * time.Minute
	benchMaxNodes     = 1024
)

// The dev cluster's addresses ("ringkv dev", three nodes).
const (
	benchDefaultHTTPNodes = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"
	benchDefaultRESPNodes = "127.0.0.1:6380,127.0.0.1:6381,127.0.0.1:6382"
)

// benchWorkloads maps a workload name to its share of reads (the rest are
// updates), as YCSB's core workloads A, B and C, plus a write-only one.
var benchWorkloads = map[string]float64{"a": 0.5, "b": 0.95, "c": 1, "write": 0}

// benchOpts are the flags of ringkv bench.
type benchOpts struct {
	workload     string
	records      int64
	load         bool
	valueSize    int
	distribution string
	clients      int
	duration     time.Duration
	ops          int64
	r, w         string
	nodes        string
	protocol     string
	timeout      time.Duration
	seed         uint64
	json         bool
	tls          clientTLS
	token        string
}

// benchConfig is the validated run, echoed in the report.
type benchConfig struct {
	Workload       string   `json:"workload"`
	ReadProportion float64  `json:"read_proportion"`
	Records        uint64   `json:"records"`
	Load           bool     `json:"load"`
	ValueSize      int      `json:"value_size"`
	Distribution   string   `json:"distribution"`
	Clients        int      `json:"clients"`
	DurationSec    float64  `json:"duration_s,omitempty"`
	Ops            int64    `json:"ops,omitempty"`
	R              string   `json:"r,omitempty"`
	W              string   `json:"w,omitempty"`
	Protocol       string   `json:"protocol"`
	Nodes          []string `json:"nodes"`
	TimeoutSec     float64  `json:"timeout_s"`
	Seed           uint64   `json:"seed"`
}

// benchReport is the whole result; --json prints it as is.
type benchReport struct {
	Config      benchConfig     `json:"config"`
	Interrupted bool            `json:"interrupted"`         // Ctrl-C (or SIGTERM) stopped the run
	Load        *benchOpSummary `json:"load,omitempty"`      // only with --load
	Run         *benchRunTotal  `json:"run,omitempty"`       // absent when interrupted during the load
	Read        *benchOpSummary `json:"read,omitempty"`      // with Run
	Update      *benchOpSummary `json:"update,omitempty"`    // with Run
	StartedAt   time.Time       `json:"started_at"`          // wall clock at the start
	LoadSec     float64         `json:"load_s,omitempty"`    // duration of the load phase
	RunSec      float64         `json:"run_s,omitempty"`     // duration of the run phase
	Failed      bool            `json:"all_failed,omitzero"` // every operation failed
}

// benchRunTotal sums the run phase's operations.
type benchRunTotal struct {
	Count     int64   `json:"count"`
	Errors    int64   `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
}

func (a *app) benchCmd() *cobra.Command {
	o := &benchOpts{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate YCSB-style load against a running cluster and report throughput and latency",
		Long: `Run concurrent clients against running nodes (by default the three "ringkv dev"
nodes) with a YCSB-style workload and report, per operation, the count, the
rate, latency percentiles (HDR histograms) and errors by kind.

Workloads: a = 50% reads, 50% updates; b = 95% reads; c = reads only;
write = updates only. Updates are blind writes (no causal context), so each
supersedes what its coordinator holds for the key. --load first writes every
record once (reported separately); without it, reads of records never
written are counted as "not found", not as errors.

Keys are user0 .. user<records-1>; zipfian picks them with YCSB's skew
(constant 0.99, popular keys scattered over the key space), uniform evenly.
Clients are spread over --nodes round robin, each with one connection.

A progress line is printed on stderr every second; the summary goes to
stdout (--json: one JSON object). Ctrl-C stops the run and still prints it.
Exit status: 0 after a run, 1 when every operation failed, 2 for bad flags.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.bench(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.workload, "workload", "a", "a (50% read, 50% update), b (95/5), c (read only) or write (update only)")
	f.Int64Var(&o.records, "records", 10000, "records (keys) in the key space, 1..100000000")
	f.BoolVar(&o.load, "load", false, "write every record once before the workload (the load phase)")
	f.IntVar(&o.valueSize, "value-size", 100, "bytes per value written, 1..1048576")
	f.StringVar(&o.distribution, "distribution", "zipfian", "how keys are picked: zipfian or uniform")
	f.IntVar(&o.clients, "clients", 32, "concurrent clients, each with one connection, 1..1024")
	f.DurationVar(&o.duration, "duration", 30*time.Second, "run the workload this long (not with --ops)")
	f.Int64Var(&o.ops, "ops", 0, "run this many workload operations in all (not with --duration)")
	f.StringVar(&o.r, "r", "", "read quorum per request: one, quorum, all or a count (default: the node's quorum.r; HTTP only)")
	f.StringVar(&o.w, "w", "", "write quorum per request: one, quorum, all or a count (default: the node's quorum.w; HTTP only)")
	f.StringVar(&o.nodes, "nodes", "", "comma-separated node addresses (default: the dev nodes, "+benchDefaultHTTPNodes+" for http, "+benchDefaultRESPNodes+" for resp)")
	f.StringVar(&o.protocol, "protocol", "http", "http (GET/PUT /v1/kv/KEY) or resp (GET/SET)")
	o.tls.addFlags(cmd)
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "an operation without an answer after this long is a timeout error")
	f.Uint64Var(&o.seed, "seed", 0, "seed of the clients' random choices (0: random)")
	f.BoolVar(&o.json, "json", false, "print the summary as one JSON object on stdout")
	addTokenFlag(cmd, &o.token)
	return cmd
}

// config validates the flags.
func (o *benchOpts) config(cmd *cobra.Command) (benchConfig, error) {
	c := benchConfig{
		Workload: strings.ToLower(o.workload), Load: o.load, ValueSize: o.valueSize,
		Distribution: strings.ToLower(o.distribution), Clients: o.clients,
		Protocol: strings.ToLower(o.protocol), Seed: o.seed, TimeoutSec: o.timeout.Seconds(),
	}
	var ok bool
	if c.ReadProportion, ok = benchWorkloads[c.Workload]; !ok {
		return c, usageError("--workload %q: want a, b, c or write", o.workload)
	}
	if o.records < 1 || o.records > benchMaxRecords {
		return c, usageError("--records %d: want 1..%d", o.records, benchMaxRecords)
	}
	c.Records = uint64(o.records)
	if o.valueSize < 1 || o.valueSize > benchMaxValueSize {
		return c, usageError("--value-size %d: want 1..%d bytes", o.valueSize, benchMaxValueSize)
	}
	if c.Distribution != "zipfian" && c.Distribution != "uniform" {
		return c, usageError("--distribution %q: want zipfian or uniform", o.distribution)
	}
	if o.clients < 1 || o.clients > benchMaxClients {
		return c, usageError("--clients %d: want 1..%d", o.clients, benchMaxClients)
	}
	f := cmd.Flags()
	switch {
	case f.Changed("duration") && f.Changed("ops"):
		return c, usageError("--duration and --ops both given: the run has exactly one bound")
	case f.Changed("ops"):
		if o.ops < 1 || o.ops > benchMaxOps {
			return c, usageError("--ops %d: want 1..%d", o.ops, benchMaxOps)
		}
		c.Ops = o.ops
	default:
		if o.duration <= 0 || o.duration > benchMaxDuration {
			return c, usageError("--duration %v: want more than 0 and at most %v", o.duration, benchMaxDuration)
		}
		c.DurationSec = o.duration.Seconds()
	}
	if o.timeout <= 0 || o.timeout > benchMaxTimeout {
		return c, usageError("--timeout %v: want more than 0 and at most %v", o.timeout, benchMaxTimeout)
	}
	switch c.Protocol {
	case "http":
	case "resp":
		// RESP carries no R or W: every command uses the node's
		// configured quorum.r / quorum.w (docs/resp.md).
		if f.Changed("r") || f.Changed("w") {
			return c, usageError("--r and --w need --protocol http: RESP has no per-request R or W (the node's quorum.r and quorum.w apply)")
		}
	default:
		return c, usageError("--protocol %q: want http or resp", o.protocol)
	}
	var err error
	if c.R, err = benchQuorum("r", o.r); err != nil {
		return c, err
	}
	if c.W, err = benchQuorum("w", o.w); err != nil {
		return c, err
	}
	nodes := o.nodes
	if !f.Changed("nodes") {
		nodes = benchDefaultHTTPNodes
		if c.Protocol == "resp" {
			nodes = benchDefaultRESPNodes
		}
	}
	if c.Nodes, err = parseBenchNodes(nodes, c.Protocol); err != nil {
		return c, err
	}
	return c, nil
}

// benchQuorum checks an R or W with the node's own parser
// (replica.ParseQuorum), so that a typo fails at once instead of as
// thousands of 400 answers. "" leaves the node's default.
func benchQuorum(name, v string) (string, error) {
	q, err := replica.ParseQuorum(v)
	if err != nil {
		return "", usageError("--%s %q: want one, quorum, all or a count 1..N", name, v)
	}
	return q.String(), nil
}

// parseBenchNodes splits --nodes. HTTP takes host:port or http(s)://host:port,
// RESP only host:port.
func parseBenchNodes(s, protocol string) ([]string, error) {
	parts := strings.Split(s, ",")
	if len(parts) > benchMaxNodes {
		return nil, usageError("--nodes: %d addresses, at most %d", len(parts), benchMaxNodes)
	}
	var nodes []string
	for _, p := range parts {
		p = strings.TrimSpace(p)
		hostPort := p
		if protocol == "http" && strings.Contains(p, "://") {
			u, err := url.Parse(p)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				return nil, usageError("--nodes: %q is not host:port or http://host:port", p)
			}
			hostPort = u.Host
		}
		host, port, err := net.SplitHostPort(hostPort)
		if pn, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || pn < 1 || pn > 65535 {
			return nil, usageError("--nodes: %q is not host:port", p)
		}
		nodes = append(nodes, p)
	}
	return nodes, nil
}

func (a *app) bench(cmd *cobra.Command, o *benchOpts) error {
	cfg, err := o.config(cmd)
	if err != nil {
		return err
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	var chooser keyChooser = uniformChooser{items: cfg.Records}
	if cfg.Distribution == "zipfian" {
		chooser = newScrambledZipfian(cfg.Records)
	}
	tlsCfg, err := o.tls.benchConfig(cmd)
	if err != nil {
		return err
	}
	workers := benchWorkers(cfg, o, tlsCfg)
	defer func() {
		for _, w := range workers {
			w.drv.close()
		}
	}()

	// The command's context ends on Ctrl-C or SIGTERM (main.go).
	ctx := cmd.Context()
	rep := benchReport{Config: cfg, StartedAt: time.Now().UTC()}
	fmt.Fprintf(a.stderr, "bench: %s\n", benchHeader(cfg))
	if cfg.Load {
		load := newOpStats()
		stop := startProgress(a.stderr, "load", load)
		elapsed := runLoad(ctx, workers, cfg.Records, load)
		stop()
		s := load.summary(elapsed)
		rep.Load, rep.LoadSec = &s, elapsed.Seconds()
	}
	if ctx.Err() == nil {
		read, update := newOpStats(), newOpStats()
		bound := benchBound{ops: cfg.Ops, duration: o.duration}
		stop := startProgress(a.stderr, "run", read, update)
		elapsed := runWorkload(ctx, workers, bound, cfg.ReadProportion, chooser, read, update)
		stop()
		rs, us := read.summary(elapsed), update.summary(elapsed)
		rep.Read, rep.Update, rep.RunSec = &rs, &us, elapsed.Seconds()
		rep.Run = &benchRunTotal{Count: rs.Count + us.Count, Errors: rs.Errors.Total + us.Errors.Total}
		if elapsed > 0 {
			rep.Run.OpsPerSec = float64(rep.Run.Count) / elapsed.Seconds()
		}
	}
	rep.Interrupted = ctx.Err() != nil
	var count, errs int64
	for _, s := range []*benchOpSummary{rep.Load, rep.Read, rep.Update} {
		if s != nil {
			count, errs = count+s.Count, errs+s.Errors.Total
		}
	}
	rep.Failed = count > 0 && errs == count
	if o.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeBenchReport(a.stdout, rep)
	}
	if rep.Failed {
		fmt.Fprintln(a.stderr, "bench: every operation failed; is the cluster running at --nodes?")
		return errSilent
	}
	return nil
}

// benchWorkers makes one worker per client, spread over the nodes, each
// with its own connection to its node.
func benchWorkers(cfg benchConfig, o *benchOpts, tlsCfg *tls.Config) []*benchWorker {
	workers := make([]*benchWorker, cfg.Clients)
	for i := range workers {
		addr := cfg.Nodes[i%len(cfg.Nodes)]
		var drv benchDriver
		if cfg.Protocol == "resp" {
			d := newRESPDriver(addr, o.timeout)
			d.token = resolveToken(o.token)
			drv = d
		} else {
			d := newHTTPDriver(addr, cfg.R, cfg.W, o.timeout)
			d.token = resolveToken(o.token)
			drv = d
		}
		secureBenchDriver(drv, tlsCfg)
		workers[i] = newBenchWorker(drv, cfg.Seed, i, cfg.ValueSize)
	}
	return workers
}

// benchHeader describes the run in one line.
func benchHeader(c benchConfig) string {
	mix := map[string]string{"a": "50% read, 50% update", "b": "95% read, 5% update", "c": "read only", "write": "update only"}[c.Workload]
	bound := fmt.Sprintf("%d ops", c.Ops)
	if c.Ops == 0 {
		bound = (time.Duration(c.DurationSec * float64(time.Second))).String()
	}
	q := func(v string) string {
		if v == "" {
			return "node default"
		}
		return v
	}
	quorum := "R/W: node defaults"
	if c.Protocol == "http" {
		quorum = "R=" + q(c.R) + " W=" + q(c.W)
	}
	load := ""
	if c.Load {
		load = ", load phase first"
	}
	return fmt.Sprintf("workload %s (%s), %d records, %s, %d-byte values, %d clients, %s, %s to %s, %s%s",
		c.Workload, mix, c.Records, c.Distribution, c.ValueSize, c.Clients, bound, c.Protocol, strings.Join(c.Nodes, ","), quorum, load)
}

// writeBenchReport prints the summary table for people; latencies in ms.
func writeBenchReport(w io.Writer, r benchReport) {
	fmt.Fprintln(w, benchHeader(r.Config))
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: the figures cover the time until Ctrl-C")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tops/s\tp50 ms\tp95 ms\tp99 ms\tp99.9 ms\tmax ms\tnot found\ttimeout\tconn\t503\tother\t")
	row := func(name string, s *benchOpSummary) {
		if s == nil {
			return
		}
		l := s.LatencyUs
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", name, s.Count, s.OpsPerSec,
			fmtMicros(l.P50), fmtMicros(l.P95), fmtMicros(l.P99), fmtMicros(l.P999), fmtMicros(l.Max),
			s.NotFound, s.Errors.Timeout, s.Errors.Conn, s.Errors.Quorum, s.Errors.Other)
	}
	row("load", r.Load)
	row("read", r.Read)
	row("update", r.Update)
	_ = tw.Flush()
	if r.Load != nil {
		fmt.Fprintf(w, "load: %d records in %.1fs\n", r.Load.Count, r.LoadSec)
	}
	if r.Run != nil {
		fmt.Fprintf(w, "run: %d ops in %.1fs, %.1f ops/s, %d errors\n", r.Run.Count, r.RunSec, r.Run.OpsPerSec, r.Run.Errors)
	}
	for _, e := range []struct {
		name string
		s    *benchOpSummary
	}{{"load", r.Load}, {"read", r.Read}, {"update", r.Update}} {
		if e.s != nil && e.s.LastError != "" {
			fmt.Fprintf(w, "%s: last error: %s\n", e.name, e.s.LastError)
		}
	}
}
