package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/internal/testkit"
)

// fakeServerEnv makes the test binary act as a "ringkv server" child for
// the dev supervisor tests: it prints the ready line, then waits for
// SIGTERM. Its value selects a misbehaviour for one node, as NAME:MODE.
const fakeServerEnv = "RINGKVTEST_FAKE_SERVER"

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(fakeServerEnv); ok {
		os.Exit(fakeServer(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeServer parses the flags dev passes and behaves per mode:
// "NAME:die" exits 3 after its ready line, "NAME:fail" exits 1 before it,
// "NAME:hang" ignores SIGTERM, "NAME:badstop" exits 1 on SIGTERM; every
// other node behaves.
func fakeServer(mode string, args []string) int {
	if len(args) == 0 || args[0] != "server" {
		fmt.Fprintln(os.Stderr, "fake server: want the server command, got", args)
		return 2
	}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	name := fs.String("name", "", "")
	httpAddr := fs.String("http", "", "")
	resp := fs.String("resp", "", "")
	rpc := fs.String("rpc", "", "")
	gossip := fs.String("gossip", "", "")
	fs.String("data-dir", "", "")
	fs.String("seeds", "", "")
	fs.Bool("bootstrap", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	target, what, _ := strings.Cut(mode, ":")
	mine := target == *name
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if mine && what == "hang" {
		signal.Ignore(syscall.SIGTERM)
	}
	if mine && what == "fail" {
		fmt.Fprintln(os.Stderr, "error: listen.http: address already in use")
		return 1
	}
	fmt.Fprintf(os.Stderr, "env gossip.profile=%s replication=%s\n", os.Getenv("RINGKV_GOSSIP_PROFILE"), os.Getenv("RINGKV_CLUSTER_REPLICATION"))
	fmt.Printf("ringkv ready name=%s http=%s resp=%s rpc=%s gossip=%s\n", *name, *httpAddr, *resp, *rpc, *gossip)
	if mine && what == "die" {
		fmt.Fprintln(os.Stderr, "panic: the disk is on fire")
		return 3
	}
	// Bounded: the supervisor under test always stops us well before this.
	select {
	case <-ctx.Done():
		if mine && what == "badstop" {
			fmt.Fprintln(os.Stderr, "error: flush failed")
			return 1
		}
		return 0
	case <-time.After(2 * time.Minute):
		return 4
	}
}

func TestDevSupervisor(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		mode      string
		nodes     int
		waitOut   string   // stdout to wait for before the stop
		wantErr   string   // "" for a clean stop
		wantOut   []string // substrings of stdout at the end
		wantErrIn []string // substrings of stderr at the end
		// stop is the grace after SIGTERM: generous, so that a loaded
		// machine's slow exit is not taken for a hung child, except
		// where the child hangs on purpose.
		stop time.Duration
	}{
		{name: "clean", mode: "none:none", nodes: 3, waitOut: "3 node(s) ready",
			wantOut: []string{"n1  http=127.0.0.1:8001  resp=127.0.0.1:6380  pid=", "n3  http=127.0.0.1:8003  resp=127.0.0.1:6382  pid=", "n2 stopped"}},
		{name: "one node caps N", mode: "none:none", nodes: 1, waitOut: "1 node(s) ready, N=1", wantOut: []string{"n1 stopped"}},
		{name: "child dies", mode: "n2:die", nodes: 3, waitOut: "3 node(s) ready",
			wantErrIn: []string{"n2 (pid", "exited while running: exit status 3; it is not restarted (2 node(s) still running)", "panic: the disk is on fire"},
			wantOut:   []string{"n1 stopped", "n3 stopped"}},
		{name: "child fails to start", mode: "n1:fail", nodes: 2, waitOut: "n2  http",
			wantErrIn: []string{"n1 (pid", "before it was ready", "address already in use"}},
		{name: "child fails to stop", mode: "n2:badstop", nodes: 3, waitOut: "3 node(s) ready",
			wantErr: "n2: exit status 1", wantErrIn: []string{"exited while stopping: exit status 1", "error: flush failed"}, wantOut: []string{"n1 stopped", "n3 stopped"}},
		{name: "child ignores SIGTERM", mode: "n1:hang", nodes: 2, waitOut: "2 node(s) ready",
			wantErr: "n1: still running", stop: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var out, errOut testkit.Buffer
			a := &app{stdout: &out, stderr: &errOut}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := devConfig{
				Exe: exe, DataDir: dir, Nodes: tt.nodes,
				ReadyTimeout: time.Minute, StopTimeout: stopGrace(tt.stop),
				Env:   []string{fakeServerEnv + "=" + tt.mode},
				Ready: readyAtOnce,
			}
			done := make(chan error, 1)
			go func() { done <- a.runDev(ctx, cfg) }()
			testkit.Eventually(t, 30*time.Second, tt.waitOut, func() bool { return strings.Contains(out.String(), tt.waitOut) })
			if strings.Contains(tt.mode, "die") || strings.Contains(tt.mode, "fail") {
				testkit.Eventually(t, 30*time.Second, "the death report", func() bool { return strings.Contains(errOut.String(), "not restarted") })
			}
			cancel()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("runDev did not return after cancel")
			}
			if tt.wantErr == "" && err != nil {
				t.Errorf("runDev: %v\nstderr:\n%s", err, errOut.String())
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("runDev error %v, want one containing %q", err, tt.wantErr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if tt.name == "clean" {
				// Stopped one at a time, last started first.
				o := out.String()
				if i3, i2, i1 := strings.Index(o, "n3 stopped"), strings.Index(o, "n2 stopped"), strings.Index(o, "n1 stopped"); i3 > i2 || i2 > i1 {
					t.Errorf("stop order is not n3, n2, n1:\n%s", o)
				}
			}
			for _, w := range tt.wantErrIn {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			// Each node's log holds its output and dev's header lines.
			log, err := os.ReadFile(filepath.Join(dir, "n1.log"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(log), "--- ringkv dev: starting n1") || !strings.Contains(string(log), "exited") {
				t.Errorf("n1.log lacks dev's start and exit lines:\n%s", log)
			}
			if tt.nodes == 1 && !strings.Contains(string(log), "env gossip.profile=local replication=1") {
				t.Errorf("child did not get the dev environment:\n%s", log)
			}
		})
	}
}

// TestDevAllChildrenDead checks that dev gives up, with an error, when no
// child is left.
func TestDevAllChildrenDead(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut testkit.Buffer
	a := &app{stdout: &out, stderr: &errOut}
	cfg := devConfig{Exe: exe, DataDir: t.TempDir(), Nodes: 1, ReadyTimeout: time.Minute, StopTimeout: time.Second,
		Env: []string{fakeServerEnv + "=n1:fail"}, Ready: readyAtOnce}
	done := make(chan error, 1)
	go func() { done <- a.runDev(t.Context(), cfg) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("runDev did not return")
	}
	if err != errSilent || !strings.Contains(errOut.String(), "every node has exited") {
		t.Errorf("err %v stderr %q", err, errOut.String())
	}
}

// readyAtOnce stands in for polling /readyz: the fake servers serve no HTTP.
func readyAtOnce(context.Context, string) error { return nil }

// The nodes are listed n1..nK whichever joins first: here n3, then n2,
// and n1 last, as happens when n1 starts before its seeds.
func TestDevListsNodesInOrder(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut testkit.Buffer
	a := &app{stdout: &out, stderr: &errOut}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gates := map[string]chan struct{}{"8001": make(chan struct{}), "8002": make(chan struct{}), "8003": make(chan struct{})}
	returned := make(chan string, 3)
	ready := func(ctx context.Context, addr string) error {
		port := portOf(addr)
		select {
		case <-gates[port]:
		case <-ctx.Done():
			return ctx.Err()
		}
		returned <- port
		return nil
	}
	cfg := devConfig{Exe: exe, DataDir: t.TempDir(), Nodes: 3, ReadyTimeout: time.Minute, StopTimeout: 30 * time.Second,
		Env: []string{fakeServerEnv + "=none:none"}, Ready: ready}
	done := make(chan error, 1)
	go func() { done <- a.runDev(ctx, cfg) }()
	for _, port := range []string{"8003", "8002", "8001"} {
		close(gates[port])
		select {
		case got := <-returned:
			if got != port {
				t.Fatalf("node on %s became ready, want %s", got, port)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("node on %s never became ready", port)
		}
	}
	testkit.Eventually(t, 30*time.Second, "3 node(s) ready", func() bool { return strings.Contains(out.String(), "3 node(s) ready") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runDev: %v\n%s", err, errOut.String())
	}
	o := out.String()
	i1, i2, i3 := strings.Index(o, "n1  http="), strings.Index(o, "n2  http="), strings.Index(o, "n3  http=")
	if i1 < 0 || i2 < i1 || i3 < i2 {
		t.Fatalf("nodes not listed n1, n2, n3:\n%s", o)
	}
}

func TestDevOrder(t *testing.T) {
	o := devOrder{done: make([]bool, 4)}
	steps := []struct {
		settle int
		want   []int
	}{{2, nil}, {1, nil}, {0, []int{0, 1, 2}}, {3, []int{3}}}
	for _, st := range steps {
		if got := o.settle(st.settle); !cmp.Equal(st.want, got) {
			t.Fatalf("settle(%d) = %v, want %v", st.settle, got, st.want)
		}
	}
}

func TestDevMissingBinary(t *testing.T) {
	a := &app{stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}}
	err := a.runDev(t.Context(), devConfig{Exe: filepath.Join(t.TempDir(), "nope"), DataDir: t.TempDir(), Nodes: 2, StopTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "start n1") {
		t.Fatalf("err = %v, want one naming n1", err)
	}
}

func TestDevNodesFlag(t *testing.T) {
	code, _, errOut := runCLI(t, "", "dev", "--nodes", "0")
	if code != 2 || !strings.Contains(errOut, "--nodes must be in 1..9") {
		t.Errorf("code %d stderr %q", code, errOut)
	}
}

func TestDevPlan(t *testing.T) {
	plan := devPlan("data", 3)
	want := devNode{
		Name: "n2", HTTP: "127.0.0.1:8002", RESP: "127.0.0.1:6381", RPC: "127.0.0.1:7002", Gossip: "127.0.0.1:9002",
		DataDir: filepath.Join("data", "n2"), Log: filepath.Join("data", "n2.log"),
		Seeds: []string{"127.0.0.1:9001", "127.0.0.1:9003"},
	}
	if diff := cmp.Diff(want, plan[1]); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	wantArgs := []string{"server", "--name", "n2", "--data-dir", filepath.Join("data", "n2"),
		"--http", "127.0.0.1:8002", "--resp", "127.0.0.1:6381", "--rpc", "127.0.0.1:7002", "--gossip", "127.0.0.1:9002",
		"--seeds", "127.0.0.1:9001,127.0.0.1:9003"}
	if diff := cmp.Diff(wantArgs, plan[1].args()); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if got := devPlan("d", 1)[0].args(); strings.Contains(strings.Join(got, " "), "--seeds") {
		t.Errorf("a lone node got seeds: %q", got)
	}
	zoned := devZones(devPlan("d", 5), 2)
	for i, want := range []string{"z1", "z2", "z1", "z2", "z1"} {
		if zoned[i].Zone != want || !slices.Contains(zoned[i].args(), want) {
			t.Errorf("node %d: zone %q, args %q; want zone %s", i+1, zoned[i].Zone, zoned[i].args(), want)
		}
	}
	if code, _, errOut := runCLI(t, "", "dev", "--nodes", "3", "--zones", "4"); code != 2 || !strings.Contains(errOut, "--zones must be in 0..3") {
		t.Errorf("--zones 4 of 3 nodes: code %d stderr %q", code, errOut)
	}
	// n1 starts the cluster; the others join it.
	if got := plan[0].args(); !slices.Contains(got, "--bootstrap") {
		t.Errorf("n1 does not bootstrap: %q", got)
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	w := &lineWriter{onLine: func(l string) { lines = append(lines, l) }}
	for _, chunk := range []string{"ab", "c\r\nd", "\n\nlast"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if diff := cmp.Diff([]string{"abc", "d", ""}, lines); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	lines = nil
	_, _ = w.Write([]byte(strings.Repeat("x", 2*maxLine+1-len("last"))))
	if len(lines) != 2 || len(lines[0]) != maxLine || len(lines[1]) != maxLine {
		t.Errorf("long line split into %d pieces", len(lines))
	}
}

func TestReadyLine(t *testing.T) {
	line := "ringkv ready name=n1 http=127.0.0.1:8001 resp=127.0.0.1:6380 rpc=127.0.0.1:7001 gossip=127.0.0.1:9001"
	got, ok := parseReadyLine(line + "\n")
	want := map[string]string{"name": "n1", "http": "127.0.0.1:8001", "resp": "127.0.0.1:6380", "rpc": "127.0.0.1:7001", "gossip": "127.0.0.1:9001"}
	if diff := cmp.Diff(want, got); !ok || diff != "" {
		t.Errorf("parseReadyLine ok=%v (-want +got):\n%s", ok, diff)
	}
	for _, bad := range []string{"", "ringkv ready", "ringkv ready name=n1", "time=... msg=ready", "ringkv ready name=n1 http"} {
		if _, ok := parseReadyLine(bad); ok {
			t.Errorf("parseReadyLine(%q) accepted", bad)
		}
	}
}

// waitReadyz returns once /readyz answers 200, and with ctx's error when
// ctx ends first.
func TestWaitReadyz(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.URL.Path != "/readyz" || calls < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := waitReadyz(t.Context(), addr); err != nil {
		t.Fatalf("waitReadyz: %v", err)
	}
	mu.Lock()
	if calls != 3 {
		t.Errorf("%d calls, want 3", calls)
	}
	mu.Unlock()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := waitReadyz(ctx, "127.0.0.1:1"); !errors.Is(err, context.Canceled) {
		t.Errorf("waitReadyz after cancel = %v", err)
	}
}

// stopGrace is d, or 30 s when d is zero.
func stopGrace(d time.Duration) time.Duration {
	if d == 0 {
		return 30 * time.Second
	}
	return d
}
