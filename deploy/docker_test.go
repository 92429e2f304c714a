package deploy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/chaos"
)

// dockerLimit bounds the whole Docker test; on an idle machine it takes
// about three minutes. cleanupReserve is kept back from the test binary's
// -timeout for the cleanup: the logs of a failure and docker-compose down
// (cleanupStep each) and removing the image.
const (
	dockerLimit    = 9 * time.Minute
	cleanupStep    = time.Minute
	cleanupReserve = 3 * cleanupStep
)

// TestDockerCompose builds the image with scripts/image.sh and runs
// deploy/compose.yaml on this machine's Docker Engine, with host networking
// so that the test talks to loopback addresses only. Under a writing load
// (the chaos workload, W=2 and R=2 of N=3) the cluster loses a whole zone
// to docker kill, has every node restarted one by one, grows to six nodes
// and shrinks back with "ringkv leave"; then the workload's history is
// checked: nothing acknowledged is lost.
func TestDockerCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the Docker Compose cluster takes minutes")
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		first, _, _ := strings.Cut(string(out), "\n")
		t.Skipf("skipped: docker info failed (%v: %s), so there is no Docker Engine to run the image on", err, first)
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("skipped: no docker-compose on PATH to run deploy/compose.yaml with")
	}
	// A docker-compose that cannot even report its version (a broken
	// install, or one that does not work with this Python) is no tool to
	// test the cluster with: skip rather than fail on the tool.
	vctx, vcancel := context.WithTimeout(t.Context(), cleanupStep)
	out, err := exec.CommandContext(vctx, "docker-compose", "version").CombinedOutput()
	vcancel()
	if err != nil {
		first, _, _ := strings.Cut(string(out), "\n")
		t.Skipf("skipped: docker-compose version failed (%v: %s), so there is no working docker-compose to run deploy/compose.yaml with", err, first)
	}
	ctx, cancel := context.WithDeadline(t.Context(), testDeadline(t, dockerLimit))
	defer cancel()
	sweepLeftovers(ctx, t)
	tag := fmt.Sprintf("%s%d", e2ePrefix, os.Getpid())
	image := buildImage(ctx, t, tag)
	checkImageVersion(ctx, t, image)
	c := &dockerCluster{t: t, project: tag, base: fmt.Sprintf("127.77.%d", os.Getpid()%250+1),
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}, serving: map[string]bool{}}
	c.file = filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(c.file, c.hostCompose(image), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", c.logs())
		}
		dctx, cancel := context.WithTimeout(context.Background(), cleanupStep)
		defer cancel()
		if _, err := c.compose(dctx, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})

	five := []string{"n1", "n2", "n3", "n4", "n5"}
	c.mustCompose(ctx, append([]string{"up", "-d", "--no-color"}, five...)...)
	if err := c.waitReady(ctx, five...); err != nil {
		t.Fatal(err)
	}
	if err := c.waitSettled(ctx, five...); err != nil {
		t.Fatal(err)
	}
	// n2, not n1: n1 bootstraps, and its health says less (it was ready
	// at once on its first start). waitSettled has checked that every
	// node, n1 included, serves the one plan of all five.
	c.waitHealthy(ctx, "n2")
	c.setServing(true, five...)
	fixed := c.writeKeys(ctx, "fixed-", 200)

	var h chaos.History
	w, err := chaos.NewWorkload(chaos.WorkloadConfig{Nodes: c.servingAddrs, Clients: 4, Keys: 16, R: "2", W: "2",
		Seed: time.Now().UnixNano(), Client: c.hc}, &h)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWork := context.WithCancel(ctx)
	workDone := make(chan struct{})
	go func() { defer close(workDone); w.Run(wctx) }()
	defer func() { stopWork(); <-workDone }()

	// A phase that fails leaves the cluster in a state the next one does
	// not expect: stop at the first.
	var windows []chaos.FaultWindow
	phases := []struct {
		name string
		run  func(t *testing.T) []chaos.FaultWindow
	}{
		{"kill one zone", func(t *testing.T) []chaos.FaultWindow {
			return []chaos.FaultWindow{c.killZone(ctx, t, "zone-a", fixed)}
		}},
		{"rolling restart", func(t *testing.T) []chaos.FaultWindow { return c.rollingRestart(ctx, t, five) }},
		{"grow and shrink", func(t *testing.T) []chaos.FaultWindow { return c.growShrink(ctx, t, five) }},
	}
	for _, ph := range phases {
		if !t.Run(ph.name, func(t *testing.T) { windows = append(windows, ph.run(t)...) }) {
			t.FailNow()
		}
	}

	stopWork()
	<-workDone
	if err := w.Err(); err != nil {
		t.Fatalf("the workload is broken: %v", err)
	}
	if err := c.waitSettled(ctx, five...); err != nil {
		t.Fatal(err)
	}
	finalCtx, finalCancel := context.WithTimeout(ctx, 2*time.Minute)
	defer finalCancel()
	finals := chaos.FinalReads(finalCtx, c.hc, c.servingAddrs(), w.Keys())
	res := chaos.Check(h.Ops(), finals, chaos.CheckConfig{Windows: windows, LaxKinds: []chaos.FaultKind{chaos.FaultKill}, StrictReads: true})
	var report strings.Builder
	res.WriteText(&report)
	t.Logf("workload: %d ops, %d writes acknowledged or not, %d OK\n%s", res.Ops, res.Writes, res.OK, report.String())
	if res.Failed() {
		t.Errorf("the workload's history breaks a guarantee")
	}
	if res.OK == 0 || res.Writes == 0 {
		t.Errorf("the workload did nothing: %d ops, %d OK", res.Ops, res.OK)
	}
	c.checkKeys(ctx, t, fixed, "all")
}

// testDeadline is the earlier of the test binary's -timeout less the
// cleanup's reserve and now + limit.
func testDeadline(t *testing.T, limit time.Duration) time.Time {
	d := time.Now().Add(limit)
	if td, ok := t.Deadline(); ok && td.Add(-cleanupReserve).Before(d) {
		d = td.Add(-cleanupReserve)
	}
	return d
}

// buildImage runs scripts/image.sh for image name tag and removes the image
// when the test ends.
func buildImage(ctx context.Context, t *testing.T, tag string) string {
	t.Helper()
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, "bash", "scripts/image.sh")
	cmd.Dir = repoRoot
	// The build context in a directory of the test's own, not bin/image
	// in the repository, which another build may be using.
	cmd.Env = append(os.Environ(), "IMAGE="+tag, "OUT="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		// By name, every tag image.sh gave it (latest and the version):
		// an image ID may be shared with another run's identical build.
		lctx, cancel := context.WithTimeout(context.Background(), cleanupStep/2)
		defer cancel()
		refs, err := exec.CommandContext(lctx, "docker", "images", "--format", "{{.Repository}}:{{.Tag}}", tag).Output()
		if err != nil {
			t.Logf("listing images %s: %v", tag, err)
			return
		}
		for _, ref := range strings.Fields(string(refs)) {
			rctx, cancel := context.WithTimeout(context.Background(), cleanupStep/2)
			out, err := exec.CommandContext(rctx, "docker", "rmi", ref).CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("docker rmi %s: %v\n%s", ref, err, out)
			}
		}
	})
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// waitHealthy waits until Docker reports the node's container healthy: the
// image's health check (ringkv health on /readyz) works without a shell.
func (c *dockerCluster) waitHealthy(ctx context.Context, name string) {
	c.t.Helper()
	id, err := c.compose(ctx, "ps", "-q", name)
	if err != nil {
		c.t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = waitFor(wctx, name+"'s container healthy", func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.State.Health.Status}}", strings.TrimSpace(id)).CombinedOutput()
		if s := strings.TrimSpace(string(out)); err != nil || s != "healthy" {
			return fmt.Errorf("health %q: %v", s, err)
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// writeKeys writes n keys with W=all, so every replica holds them, and
// returns them with their values.
func (c *dockerCluster) writeKeys(ctx context.Context, prefix string, n int) map[string]string {
	c.t.Helper()
	keys := map[string]string{}
	nodes := c.servingAddrs()
	for i := range n {
		k, v := fmt.Sprintf("%s%04d", prefix, i), fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+nodes[i%len(nodes)]+"/v1/kv/"+url.PathEscape(k)+"?w=all", strings.NewReader(v))
		if err != nil {
			c.t.Fatal(err)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			c.t.Fatalf("PUT %s: %v", k, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			c.t.Fatalf("PUT %s with w=all: %d", k, resp.StatusCode)
		}
		keys[k] = v
	}
	return keys
}

// readKey reads key with quorum r from node addr: its value, or an error
// saying what the node answered.
func (c *dockerCluster) readKey(ctx context.Context, addr, key, r string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/kv/"+url.PathEscape(key)+"?r="+r, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// checkKeys reads every key with quorum r from the serving nodes and
// reports those that do not answer their value. A read that fails (a node
// briefly suspected on a loaded machine) is retried while ctx lasts; a
// wrong value is reported at once.
func (c *dockerCluster) checkKeys(ctx context.Context, t *testing.T, keys map[string]string, r string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	nodes := c.servingAddrs()
	bad, i := 0, 0
	for k, want := range keys {
		var got string
		err := waitFor(ctx, "a read of "+k, func(ctx context.Context) error {
			var err error
			got, err = c.readKey(ctx, nodes[i%len(nodes)], k, r)
			i++
			return err
		})
		if err != nil || got != want {
			if bad++; bad <= 5 {
				t.Errorf("key %s with r=%s: got %q, %v; want %q", k, r, got, err, want)
			}
		}
	}
	if bad > 5 {
		t.Errorf("... %d of %d keys in all", bad, len(keys))
	}
}
