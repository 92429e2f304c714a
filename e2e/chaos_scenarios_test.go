package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The chaos scenarios run "ringkv chaos" as a user would: each starts its
// own 5-node cluster (N=3, R=W=quorum), runs the recorded workload and the
// faults, and must end with zero violations. Availability and latency are
// logged, never asserted: the machine is shared.

// chaosReport is the part of "ringkv chaos --json" the tests read.
type chaosReport struct {
	Scenario    string       `json:"scenario"`
	SettleError string       `json:"settle_error"`
	History     string       `json:"history"`
	Faults      []chaosFault `json:"faults"`
	Check       struct {
		Ops                   int     `json:"ops"`
		OK                    int     `json:"ok"`
		Failed                int     `json:"failed"`
		Unknown               int     `json:"unknown"`
		Availability          float64 `json:"availability"`
		P99WriteMS            float64 `json:"p99_write_ms"`
		P99ReadMS             float64 `json:"p99_read_ms"`
		Lost                  int     `json:"lost"`
		Invented              int     `json:"invented"`
		Resurrected           int     `json:"resurrected"`
		Duplicated            int     `json:"duplicated"`
		StaleReads            int     `json:"stale_reads"`
		StaleReadsUnderFaults int     `json:"stale_reads_under_faults"`
		SiblingsSeen          int     `json:"siblings_seen"`
		FinalErrors           int     `json:"final_errors"`
		Violations            []struct {
			Kind, Key, Value, Detail string
		} `json:"violations"`
	} `json:"check"`
}

// chaosFault is one fault window of a chaos report.
type chaosFault struct {
	Kind string `json:"kind"`
}

// chaosDuration is how long each scenario injects faults:
// RINGKV_CHAOS_DURATION, default 30s.
func chaosDuration(t *testing.T) time.Duration {
	v := os.Getenv("RINGKV_CHAOS_DURATION")
	if v == "" {
		return 30 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("RINGKV_CHAOS_DURATION=%q: %v", v, err)
	}
	return d
}

// runChaos runs bin chaos with args and returns its exit code and report.
func runChaos(t *testing.T, bin string, args ...string) (int, chaosReport) {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), testDeadline(t, 10*time.Minute))
	defer cancel()
	// Kept when the test fails: the nodes' logs and the history.
	dir, err := os.MkdirTemp("", "ringkv-chaos-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept %s (node logs, history)", dir)
			return
		}
		os.RemoveAll(dir)
	})
	args = append([]string{"chaos", "--json", "--dir", dir}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ringkv %v: %v\n%s", args, err, stderr.Bytes())
	}
	var rep chaosReport
	if code != 2 {
		if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
			t.Fatalf("ringkv %v (exit %d): report is not JSON: %v\nstdout:\n%s\nstderr:\n%s", args, code, jerr, stdout.Bytes(), stderr.Bytes())
		}
	}
	if code != 0 {
		t.Logf("ringkv %v exited %d; stderr:\n%s", args, code, tail(stderr.Bytes(), 60))
		for _, log := range []string{"n1", "n2", "n3", "n4", "n5", "n6"} {
			if b, err := os.ReadFile(filepath.Join(dir, log+".log")); err == nil {
				t.Logf("%s.log (end):\n%s", log, tail(b, 30))
			}
		}
	}
	return code, rep
}

// tail returns the last n lines of b.
func tail(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}

// TestChaosScenarios runs every scenario once, and kill a second time with
// clients that read before every write, each for RINGKV_CHAOS_DURATION.
// The scenarios that cut the network need root and iptables, and skip
// with the reason elsewhere.
func TestChaosScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos scenarios take minutes; not in -short")
	}
	netnsErr := ""
	if out, err := exec.Command(binary, "chaos", "--check-netns").CombinedOutput(); err != nil {
		netnsErr = string(bytes.TrimSpace(out))
	}
	for _, sc := range []struct {
		name, scenario, mode string
		cuts                 bool
		// faults lists kinds of fault the run must have injected.
		faults []string
		// atLeast is the shortest duration that fits those faults.
		atLeast time.Duration
	}{
		{"kill", "kill", "context", false, []string{"kill"}, 0},
		{"kill-read-first", "kill", "read-first", false, []string{"kill"}, 0},
		{"freeze", "freeze", "context", false, []string{"freeze"}, 0},
		{"isolate", "isolate", "context", true, []string{"cut"}, 0},
		{"isolate-minority", "isolate-minority", "context", true, []string{"cut"}, 0},
		{"wipe", "wipe", "context", false, []string{"wipe"}, 0},
		// A join, its transfers, then a leave while the clients run.
		{"membership", "membership", "context", false, []string{"join", "leave"}, time.Minute},
	} {
		t.Run(sc.name, func(t *testing.T) {
			if sc.cuts && netnsErr != "" {
				t.Skipf("scenario %s cuts the network: %s", sc.scenario, netnsErr)
			}
			d := chaosDuration(t)
			if sc.atLeast > d {
				d = sc.atLeast
			}
			code, rep := runChaos(t, binary, "--scenario", sc.scenario, "--mode", sc.mode, "--duration", d.String())
			c := rep.Check
			t.Logf("%s: %d ops, availability %.2f%% (ok %d, failed %d, unknown %d), p99 write %.1f ms read %.1f ms, %d reads with siblings, %d stale reads under faults, %d fault windows",
				sc.name, c.Ops, 100*c.Availability, c.OK, c.Failed, c.Unknown, c.P99WriteMS, c.P99ReadMS, c.SiblingsSeen, c.StaleReadsUnderFaults, len(rep.Faults))
			if code != 0 || c.Lost+c.Invented+c.Resurrected+c.Duplicated+c.StaleReads+c.FinalErrors > 0 {
				t.Fatalf("%s: exit %d: lost %d, invented %d, resurrected %d, duplicated %d, stale reads %d, final read errors %d; settle: %q; first violations %+v; history %s",
					sc.name, code, c.Lost, c.Invented, c.Resurrected, c.Duplicated, c.StaleReads, c.FinalErrors, rep.SettleError, first(c.Violations, 5), rep.History)
			}
			if c.OK == 0 {
				t.Fatalf("%s: no operation acknowledged: the run tested nothing", sc.name)
			}
			for _, kind := range sc.faults {
				if !slices.Contains(rep.Faults, chaosFault{Kind: kind}) {
					t.Errorf("%s: no %s fault was injected (faults %+v)", sc.name, kind, rep.Faults)
				}
			}
		})
	}
}

func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }

// TestChaosBrokenBuild shows that the checker can fail: a binary built
// with the ringkvbroken tag acknowledges writes sent by other nodes'
// coordinators without storing them, and the wipe scenario must then
// report violations and exit 1.
func TestChaosBrokenBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos scenarios take minutes; not in -short")
	}
	broken := filepath.Join(t.TempDir(), "ringkv-broken")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goTool(), "build", "-tags", "ringkvbroken", "-o", broken, "./cmd/ringkv")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags ringkvbroken: %v\n%s", err, out)
	}
	code, rep := runChaos(t, broken, "--scenario", "wipe", "--duration", chaosDuration(t).String())
	c := rep.Check
	t.Logf("broken build: exit %d, lost %d, invented %d, resurrected %d, stale reads %d (%d under faults)",
		code, c.Lost, c.Invented, c.Resurrected, c.StaleReads, c.StaleReadsUnderFaults)
	if code != 1 || c.Lost+c.Invented+c.Resurrected+c.StaleReads == 0 {
		t.Fatalf("the broken build passed the check (exit %d): the checker cannot see lost writes", code)
	}
	if rep.History == "" {
		t.Fatal("a failing run kept no history")
	}
}
