package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
)

// binary is the ringkv executable TestMain built (or, in a network
// namespace child, the one its parent built).
var binary string

// binaryEnv passes the binary's path to a child re-run in a namespace.
const binaryEnv = "CHAOS_TEST_RINGKV"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if InNetNS() {
		if err := SetupNetNS(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos test in its namespace:", err)
			return 1
		}
		binary = os.Getenv(binaryEnv)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "ringkv-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos test:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "ringkv")
	// Built once without -race: the race detector is for this package's
	// own code; the nodes are only driven.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	//nolint:staticcheck // SA1019: the go that built this test builds the binary
	cmd := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", binary, "./cmd/ringkv")
	cmd.Dir = ".." // the module root, seen from this package's directory
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos test: go build ./cmd/ringkv: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// kv sends one request to /v1/kv/key on addr and returns the status and
// body.
func kv(t *testing.T, method, addr, key, query, value string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var body io.Reader
	if value != "" {
		body = strings.NewReader(value)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/v1/kv/"+key+"?"+query, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, key, addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// dumpOnFailure logs every node's last lines if the test failed.
func dumpOnFailure(t *testing.T, c *Cluster) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Names() {
				t.Logf("last lines of %s:\n%s", n, c.LogTail(n, 40))
			}
		}
	})
}

// TestClusterProcesses drives three real nodes on 127.0.0.1 through
// every process operation, runs the kill scenario briefly, settles, and
// stops.
func TestClusterProcesses(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	dir := t.TempDir()
	var log testkit.Buffer
	c, err := StartCluster(ctx, ClusterConfig{Binary: binary, Dir: dir, Nodes: 3, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, c)
	defer c.Stop()

	if got := c.Names(); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Errorf("Names() = %v", got)
	}
	if got := len(c.Serving()); got != 3 {
		t.Fatalf("%d nodes serving after StartCluster, want 3", got)
	}
	if code, body := kv(t, http.MethodPut, c.HTTP("n1"), "k1", "w=all", "v1"); code != http.StatusNoContent {
		t.Fatalf("PUT k1 w=all: %d %s", code, body)
	}
	if code, body := kv(t, http.MethodGet, c.HTTP("n2"), "k1", "r=all", ""); code != http.StatusOK || body != "v1" {
		t.Fatalf("GET k1 r=all on n2: %d %q", code, body)
	}

	// Kill and restart on the same data.
	if err := c.Kill("n2"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(c.Serving(), c.HTTP("n2")) || len(c.Serving()) != 2 {
		t.Errorf("Serving() = %v after n2 was killed", c.Serving())
	}
	if err := c.Wipe("n1"); err == nil {
		t.Error("Wipe of a running node succeeded")
	}
	if err := c.Start(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	waitHealthy(ctx, t, c) // serving is not yet seeing the others alive: R=all needs them
	if code, body := kv(t, http.MethodGet, c.HTTP("n2"), "k1", "r=all", ""); code != http.StatusOK || body != "v1" {
		t.Fatalf("GET k1 r=all on the restarted n2: %d %q", code, body)
	}

	// Freeze and thaw.
	if err := c.Freeze("n3"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(c.Serving(), c.HTTP("n3")) {
		t.Errorf("Serving() = %v lists the frozen n3", c.Serving())
	}
	if err := c.Freeze("n3"); err == nil {
		t.Error("a second Freeze succeeded")
	}
	if err := c.Thaw("n3"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.Serving(), c.HTTP("n3")) {
		t.Errorf("Serving() = %v lacks the thawed n3", c.Serving())
	}

	// Wipe a node that is down; R=all reads still find the key, and after
	// Settle anti-entropy has given the key back to n3.
	if err := c.Kill("n3"); err != nil {
		t.Fatal(err)
	}
	if err := c.Wipe("n3"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "n3")); !os.IsNotExist(err) {
		t.Fatalf("n3's data directory after Wipe: %v", err)
	}
	if err := c.Start(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	waitHealthy(ctx, t, c)
	if code, body := kv(t, http.MethodGet, c.HTTP("n3"), "k1", "r=all", ""); code != http.StatusOK || body != "v1" {
		t.Fatalf("GET k1 r=all on the wiped n3: %d %q", code, body)
	}

	// The kill scenario, briefly: it stops 5 s before its deadline.
	sc, err := ScenarioByName("kill")
	if err != nil {
		t.Fatal(err)
	}
	var windows []FaultWindow
	sctx, scancel := context.WithTimeout(ctx, 14*time.Second)
	began := time.Now()
	err = sc.Run(sctx, c, rand.New(rand.NewPCG(1, 2)), func(w FaultWindow) { windows = append(windows, w) })
	scancel()
	if err != nil {
		t.Fatalf("kill scenario: %v", err)
	}
	t.Logf("kill scenario windows: %+v", windows)
	if len(windows) == 0 {
		t.Error("the kill scenario recorded no fault in 9 s")
	}
	for _, w := range windows {
		if w.Kind != FaultKill || len(w.Nodes) != 1 || w.Start.Before(began) || !w.End.After(w.Start) {
			t.Errorf("kill scenario window %+v", w)
		}
	}
	if got := c.Running(); len(got) != 3 {
		t.Errorf("Running() = %v after the kill scenario", got)
	}

	settleCtx, settleCancel := context.WithTimeout(ctx, 60*time.Second)
	defer settleCancel()
	settleBegan := time.Now()
	if err := Settle(settleCtx, c); err != nil {
		t.Fatal(err)
	}
	t.Logf("settled in %s", time.Since(settleBegan).Round(time.Millisecond))
	var st statsJSON
	if err := getJSON(ctx, c.HTTP("n3"), "/v1/stats", maxAnswerBytes, &st); err != nil || st.Keys != 1 {
		t.Errorf("n3 holds %d keys after Settle (%v), want 1", st.Keys, err)
	}

	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if len(c.Running()) != 0 || len(c.Serving()) != 0 {
		t.Errorf("after Stop: running %v, serving %v", c.Running(), c.Serving())
	}
	if err := c.Start(ctx, "n1"); err == nil {
		t.Error("Start after Stop succeeded")
	}
	logged, err := os.ReadFile(filepath.Join(dir, "n1.log"))
	if err != nil || !bytes.Contains(logged, []byte("ringkv ready name=n1")) {
		t.Errorf("n1.log lacks the ready line (%v)", err)
	}
	if !strings.Contains(log.String(), "n2| ringkv ready name=n2") {
		t.Error("ClusterConfig.Log lacks n2's prefixed ready line")
	}
	if tail := c.LogTail("n1", 3); strings.Count(tail, "\n") != 2 {
		t.Errorf("LogTail(n1, 3) = %q, want 3 lines", tail)
	}
}

// TestMembershipScenario runs the membership scenario on three nodes and
// a spare: the spare joins, another node leaves, the cluster settles.
func TestMembershipScenario(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	c, err := StartCluster(ctx, ClusterConfig{Binary: binary, Dir: t.TempDir(), Nodes: 3, Spare: 1})
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, c)
	defer c.Stop()
	if got := c.Running(); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("Running() = %v, want the 3 nodes without the spare", got)
	}
	for i := range 20 {
		if code, body := kv(t, http.MethodPut, c.HTTP("n1"), fmt.Sprintf("m%d", i), "w=all", "v"); code != http.StatusNoContent {
			t.Fatalf("PUT: %d %s", code, body)
		}
	}

	sc, err := ScenarioByName("membership")
	if err != nil {
		t.Fatal(err)
	}
	var windows []FaultWindow
	// Long enough that a slow join still leaves the 20 s a leave needs.
	sctx, scancel := context.WithTimeout(ctx, 50*time.Second)
	err = sc.Run(sctx, c, rand.New(rand.NewPCG(5, 6)), func(w FaultWindow) { windows = append(windows, w) })
	scancel()
	t.Logf("membership windows: %+v", windows)
	if err != nil {
		t.Fatal(err)
	}
	if len(windows) != 2 || windows[0].Kind != FaultJoin || windows[1].Kind != FaultLeave ||
		!slices.Equal(windows[0].Nodes, []string{"n4"}) || windows[1].Nodes[0] == "n4" {
		t.Fatalf("windows %+v, want n4 joining, then another node leaving", windows)
	}
	leaver := windows[1].Nodes[0]
	for _, w := range windows {
		if !w.End.After(w.Start) {
			t.Errorf("window %+v has no end", w)
		}
	}
	if got := c.Running(); len(got) != 3 || !slices.Contains(got, "n4") || slices.Contains(got, leaver) {
		t.Errorf("Running() = %v after n4 joined and %s left", got, leaver)
	}
	if err := Settle(ctx, c); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if code, body := kv(t, http.MethodGet, c.Serving()[0], fmt.Sprintf("m%d", i), "r=all", ""); code != http.StatusOK || body != "v" {
			t.Errorf("GET m%d r=all after the changes: %d %q", i, code, body)
		}
	}
	if err := c.Start(ctx, leaver); err == nil {
		t.Errorf("Start of %s, which left, succeeded", leaver)
	}
	if err := c.Stop(); err != nil {
		t.Error(err)
	}
}

// waitHealthy waits until every member serves and every serving node sees
// every member alive and joined: a restarted node serves as soon as it has
// joined, before gossip has told it the others are alive.
func waitHealthy(ctx context.Context, t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // bounds the probes too
	defer cancel()
	testkit.Eventually(t, time.Minute, "a healthy cluster", func() error {
		probs := healthProblems(ctx, c)
		if len(probs) == 0 {
			probs = unlisted(ctx, c)
		}
		if len(probs) == 0 {
			return nil
		}
		return fmt.Errorf("%v", probs)
	})
}

// unlisted names the members a serving node does not list at all (a
// wiped node learns of the others through gossip after it serves).
func unlisted(ctx context.Context, c *Cluster) []string {
	var probs []string
	serving := c.servingNames()
	views := c.views(ctx, serving, nil)
	for _, name := range serving {
		for _, m := range c.members() {
			if !slices.ContainsFunc(views[name].members, func(v memberJSON) bool { return v.Name == m }) {
				probs = append(probs, fmt.Sprintf("%s does not list %s", name, m))
			}
		}
	}
	return probs
}
