package deploy_test

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/chaos"
)

// nodeZones is compose.yaml's zone of each node.
func nodeZones(t *testing.T) map[string]string {
	t.Helper()
	zones := map[string]string{}
	for name, svc := range loadCompose(t, "compose.yaml").Services {
		zones[name] = svc.Environment["RINGKV_NODE_ZONE"]
	}
	return zones
}

// zoneNodes lists compose.yaml's nodes in zone, and the others.
func zoneNodes(t *testing.T, zone string) (in, out []string) {
	t.Helper()
	for name, z := range nodeZones(t) {
		if z == zone {
			in = append(in, name)
		} else {
			out = append(out, name)
		}
	}
	slices.Sort(in)
	slices.Sort(out)
	if len(in) == 0 {
		t.Fatalf("no node of compose.yaml is in zone %s", zone)
	}
	return in, out
}

// killZone checks that zone-aware placement puts every fixed key's three
// replicas in three zones (the ring's answer, before any fault), then
// docker-kills every node of zone and reads every fixed key with R=2 from
// the survivors: two replicas of each are outside the zone. A read that
// fails is retried until a deadline (a coordinator on a loaded machine
// may time a replica out); a wrong value fails at once. Then the zone's
// nodes start again on their data.
func (c *dockerCluster) killZone(ctx context.Context, t *testing.T, zone string, fixed map[string]string) chaos.FaultWindow {
	dead, alive := zoneNodes(t, zone)
	c.checkZonePlacement(ctx, t, fixed)
	fw := chaos.FaultWindow{Kind: chaos.FaultKill, Nodes: dead, Detail: "docker kill of " + zone, Start: time.Now()}
	c.setServing(false, dead...)
	if _, err := c.compose(ctx, append([]string{"kill", "-s", "SIGKILL"}, dead...)...); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var unavailable []string
	i := 0
	for _, k := range slices.Sorted(maps.Keys(fixed)) {
		var got string
		err := waitFor(rctx, "a read of "+k, func(ctx context.Context) error {
			addr := c.httpAddr(alive[i%len(alive)])
			i++
			var err error
			got, err = c.readKey(ctx, addr, k, "2")
			return err
		})
		switch {
		case err == nil && got != fixed[k]:
			t.Errorf("key %s with r=2 while %s is down: got %q, want %q", k, zone, got, fixed[k])
		case err != nil:
			unavailable = append(unavailable, k+" ("+c.placement(ctx, alive[0], k)+": "+err.Error()+")")
		}
	}
	if len(unavailable) > 0 {
		t.Errorf("%d of %d keys cannot be read with r=2 while zone %s (%s) is down, though two replicas of each are outside it; first: %s",
			len(unavailable), len(fixed), zone, strings.Join(dead, ","), unavailable[0])
	}
	c.mustCompose(ctx, append([]string{"start"}, dead...)...)
	if err := c.waitReady(ctx, dead...); err != nil {
		t.Fatal(err)
	}
	c.setServing(true, dead...)
	fw.End = time.Now()
	return fw
}

// checkZonePlacement asks the ring (GET /v1/ring?key=) where each key's
// replicas are and requires three of them, in three distinct zones.
func (c *dockerCluster) checkZonePlacement(ctx context.Context, t *testing.T, keys map[string]string) {
	t.Helper()
	zones := nodeZones(t)
	bad := 0
	for k := range keys {
		var p struct {
			Replicas []string `json:"replicas"`
		}
		if err := c.getJSON(ctx, "n2", "/v1/ring?key="+url.QueryEscape(k), &p); err != nil {
			t.Fatalf("placement of %s: %v", k, err)
		}
		seen := map[string]bool{}
		for _, r := range p.Replicas {
			seen[zones[r]] = true
		}
		if len(p.Replicas) != 3 || len(seen) != 3 {
			if bad++; bad <= 5 {
				t.Errorf("key %s: replicas %v in zones %v, want 3 replicas in 3 zones", k, p.Replicas, slices.Sorted(maps.Keys(seen)))
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d keys are not spread over the 3 zones", bad, len(keys))
	}
}

// placement is the key's replicas as node name asks the ring, for a
// failure message.
func (c *dockerCluster) placement(ctx context.Context, name, key string) string {
	var p struct {
		Replicas []string `json:"replicas"`
	}
	if err := c.getJSON(ctx, name, "/v1/ring?key="+url.QueryEscape(key), &p); err != nil {
		return "replicas unknown: " + err.Error()
	}
	return "replicas " + strings.Join(p.Replicas, ",")
}

// rollingRestart restarts the nodes one at a time (SIGTERM, then start on
// the same volume), each once the previous one serves again and the
// cluster has delivered the hints it kept for it.
func (c *dockerCluster) rollingRestart(ctx context.Context, t *testing.T, nodes []string) []chaos.FaultWindow {
	var windows []chaos.FaultWindow
	for _, n := range nodes {
		fw := chaos.FaultWindow{Kind: chaos.FaultKill, Nodes: []string{n}, Detail: "restart", Start: time.Now()}
		c.setServing(false, n)
		if _, err := c.compose(ctx, "restart", "-t", "30", n); err != nil {
			t.Fatal(err)
		}
		if err := c.waitReady(ctx, n); err != nil {
			t.Fatal(err)
		}
		c.setServing(true, n)
		fw.End = time.Now()
		windows = append(windows, fw)
		if err := c.waitSettled(ctx, nodes...); err != nil {
			t.Fatalf("after restarting %s: %v", n, err)
		}
	}
	return windows
}

// growShrink starts a sixth node (n6), waits until it serves its share,
// then makes it leave with "ringkv leave" and waits until the five hold
// everything again.
func (c *dockerCluster) growShrink(ctx context.Context, t *testing.T, five []string) []chaos.FaultWindow {
	six := append(slices.Clone(five), "n6")
	join := chaos.FaultWindow{Kind: chaos.FaultJoin, Nodes: []string{"n6"}, Start: time.Now()}
	if _, err := c.compose(ctx, "up", "-d", "--no-deps", "n6"); err != nil {
		t.Fatal(err)
	}
	if err := c.waitReady(ctx, "n6"); err != nil {
		t.Fatal(err)
	}
	if err := c.waitSettled(ctx, six...); err != nil {
		t.Fatal(err)
	}
	c.setServing(true, "n6")
	join.End = time.Now()

	leave := chaos.FaultWindow{Kind: chaos.FaultLeave, Nodes: []string{"n6"}, Start: time.Now()}
	c.setServing(false, "n6")
	lctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if code, out := runRingkvCtx(lctx, t, "leave", "--node", c.httpAddr("n6")); code != 0 {
		t.Fatalf("ringkv leave: exit %d\n%s", code, out)
	}
	if err := c.waitSettled(ctx, five...); err != nil {
		t.Fatal(err)
	}
	if code := c.exitCode(ctx, "n6"); code != "0" {
		t.Errorf("n6 after leaving: container exit code %s, want 0 (it stops by itself)", code)
	}
	leave.End = time.Now()
	return []chaos.FaultWindow{join, leave}
}

// exitCode is the exit code Docker recorded for the node's container.
func (c *dockerCluster) exitCode(ctx context.Context, name string) string {
	id, err := c.compose(ctx, "ps", "-q", name)
	if err != nil {
		return err.Error()
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var code string
	err = waitFor(wctx, name+" to exit", func(ctx context.Context) error {
		out, err := execOutput(ctx, "docker", "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", strings.TrimSpace(id))
		if err != nil {
			return err
		}
		running, c, _ := strings.Cut(strings.TrimSpace(out), " ")
		if running != "false" {
			return fmt.Errorf("still running")
		}
		code = c
		return nil
	})
	if err != nil {
		return err.Error()
	}
	return code
}
