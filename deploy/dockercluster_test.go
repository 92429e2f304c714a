package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// dockerCluster runs deploy/compose.yaml, rewritten for host networking,
// under a project name of its own: node nK listens on base.K, a loopback
// address, at the ports compose.yaml gives it, and publishes nothing.
type dockerCluster struct {
	t       *testing.T
	project string
	file    string
	base    string // first three octets of the nodes' loopback addresses
	hc      *http.Client

	mu      sync.Mutex      // guards serving
	serving map[string]bool // nodes the workload may send requests to
}

// nodeIP is the loopback address node name ("n3") listens on.
func (c *dockerCluster) nodeIP(name string) string {
	k, err := strconv.Atoi(strings.TrimPrefix(name, "n"))
	if err != nil || k < 1 || k > 250 {
		c.t.Fatalf("node name %q is not nK", name)
	}
	return fmt.Sprintf("%s.%d", c.base, k)
}

// httpAddr is node name's HTTP address (compose.yaml's port 8001).
func (c *dockerCluster) httpAddr(name string) string { return net.JoinHostPort(c.nodeIP(name), "8001") }

// hostCompose rewrites compose.yaml for the test: every node on the host's
// network at its own loopback address (so the test talks to loopback only),
// nothing published, no restart policy (a killed node stays down until the
// test starts it), hints retried every second, fewer partitions (transfers
// and anti-entropy stay cheap on a loaded machine), and a sixth node n6 (in
// zone-c) that the test adds and removes. Gossip keeps the production
// timers: the fast local ones suspect live nodes on a loaded machine.
func (c *dockerCluster) hostCompose(image string) []byte {
	c.t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		c.t.Fatal(err)
	}
	var f map[string]any
	if err := yaml.Unmarshal(b, &f); err != nil {
		c.t.Fatal(err)
	}
	for k := range f {
		if strings.HasPrefix(k, "x-") {
			delete(f, k) // the anchors, already merged into the services
		}
	}
	delete(f, "networks")
	services := f["services"].(map[string]any)
	n6 := maps.Clone(services["n5"].(map[string]any))
	env6 := maps.Clone(n6["environment"].(map[string]any))
	env6["RINGKV_NODE_NAME"], env6["RINGKV_NODE_ZONE"] = "n6", "zone-c"
	env6["RINGKV_SEEDS"] = "n1:9001,n2:9001,n3:9001,n4:9001,n5:9001"
	n6["environment"], n6["volumes"] = env6, []any{"n6-data:/data"}
	services["n6"] = n6
	f["volumes"].(map[string]any)["n6-data"] = nil
	for name, s := range services {
		svc := s.(map[string]any)
		ip := c.nodeIP(name)
		for _, k := range []string{"networks", "ports", "hostname"} {
			delete(svc, k)
		}
		svc["image"], svc["network_mode"], svc["restart"] = image, "host", "no"
		env := maps.Clone(svc["environment"].(map[string]any))
		// Every listener onto the node's loopback address, whatever
		// listeners compose.yaml names: under host networking a wildcard
		// would bind the host's real interfaces.
		for k, v := range env {
			switch {
			case k == "RINGKV_LISTEN_ADVERTISE":
				env[k] = ip
			case strings.HasPrefix(k, "RINGKV_LISTEN_"):
				_, p, err := net.SplitHostPort(fmt.Sprint(v))
				if err != nil {
					c.t.Fatalf("%s %s: %v", name, k, err)
				}
				env[k] = net.JoinHostPort(ip, p)
			}
		}
		var seeds []string
		for _, s := range strings.Split(env["RINGKV_SEEDS"].(string), ",") {
			h, p, _ := net.SplitHostPort(s)
			seeds = append(seeds, net.JoinHostPort(c.nodeIP(h), p))
		}
		env["RINGKV_SEEDS"] = strings.Join(seeds, ",")
		env["RINGKV_HINTS_RETRY_INTERVAL"] = "1s"
		env["RINGKV_CLUSTER_PARTITIONS"] = "271"
		svc["environment"] = env
		hc := svc["healthcheck"].(map[string]any)
		hc["test"] = []any{"CMD", "/ringkv", "health", "--quiet", "--url", "http://" + c.httpAddr(name) + "/readyz"}
		hc["interval"] = "1s"
	}
	c.checkLoopbackOnly(services)
	out, err := yaml.Marshal(f)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// checkLoopbackOnly fails the test unless every rewritten service uses
// host networking, publishes and exposes nothing, and has every listen
// address (RINGKV_LISTEN_*) in 127.0.0.0/8.
func (c *dockerCluster) checkLoopbackOnly(services map[string]any) {
	c.t.Helper()
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	for name, s := range services {
		svc := s.(map[string]any)
		for _, k := range []string{"ports", "expose", "networks"} {
			if _, ok := svc[k]; ok {
				c.t.Fatalf("service %s keeps %s under host networking", name, k)
			}
		}
		if svc["network_mode"] != "host" {
			c.t.Fatalf("service %s: network_mode %v, want host", name, svc["network_mode"])
		}
		for k, v := range svc["environment"].(map[string]any) {
			if !strings.HasPrefix(k, "RINGKV_LISTEN_") {
				continue
			}
			host := fmt.Sprint(v)
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if a, err := netip.ParseAddr(host); err != nil || !loopback.Contains(a) {
				c.t.Fatalf("service %s: %s=%v is not an address in 127.0.0.0/8", name, k, v)
			}
		}
	}
}

// compose runs docker-compose on the cluster's file, bounded.
func (c *dockerCluster) compose(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", c.project, "-f", c.file}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("docker-compose %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), err
}

func (c *dockerCluster) mustCompose(ctx context.Context, args ...string) {
	c.t.Helper()
	if _, err := c.compose(ctx, args...); err != nil {
		c.t.Fatal(err)
	}
}

// logs returns the last lines each node logged, for a failure message.
func (c *dockerCluster) logs() string {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupStep)
	defer cancel()
	out, err := c.compose(ctx, "logs", "--no-color", "--tail", "30")
	if err != nil {
		return err.Error()
	}
	return out
}

// setServing adds or removes nodes from those the workload uses.
func (c *dockerCluster) setServing(on bool, names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		if on {
			c.serving[n] = true
		} else {
			delete(c.serving, n)
		}
	}
}

// servingAddrs is the workload's Nodes: the HTTP addresses of the nodes up.
func (c *dockerCluster) servingAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range slices.Sorted(maps.Keys(c.serving)) {
		out = append(out, c.httpAddr(n))
	}
	return out
}

// getJSON GETs path from node name into out; a non-200 answer is an error.
func (c *dockerCluster) getJSON(ctx context.Context, name, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.httpAddr(name)+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s on %s: %d %s", path, name, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// waitFor polls cond every 200 ms until it holds or ctx ends; the nodes
// are other processes, so there is no event to wait on but their answers.
func waitFor(ctx context.Context, what string, cond func(context.Context) error) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// waitReady waits until every named node answers GET /readyz with 200.
func (c *dockerCluster) waitReady(ctx context.Context, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return waitFor(ctx, "nodes "+strings.Join(names, ",")+" ready", func(ctx context.Context) error {
		for _, n := range names {
			if err := c.getJSON(ctx, n, "/readyz", nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// statsJSON is the part of GET /v1/stats the test reads.
type statsJSON struct {
	Plan struct {
		Epoch   uint64   `json:"epoch"`
		Members []string `json:"members"`
		Target  []string `json:"target"`
	} `json:"plan"`
	Transfer struct {
		Pending  int `json:"pending"`
		InFlight int `json:"in_flight"`
	} `json:"transfer"`
	Hints *struct {
		Pending int64 `json:"pending"`
	} `json:"hints"`
}

// waitSettled waits until every named node follows the same plan, whose
// serving members are exactly names, with no change, transfer or hint
// pending: the cluster has absorbed what the test did to it.
func (c *dockerCluster) waitSettled(ctx context.Context, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	want := slices.Sorted(slices.Values(names))
	return waitFor(ctx, "the cluster to settle on "+strings.Join(want, ","), func(ctx context.Context) error {
		var epoch uint64
		for i, n := range want {
			var st statsJSON
			if err := c.getJSON(ctx, n, "/v1/stats", &st); err != nil {
				return err
			}
			members := slices.Sorted(slices.Values(st.Plan.Members))
			switch {
			case i > 0 && st.Plan.Epoch != epoch:
				return fmt.Errorf("%s follows plan %d, %s plan %d", n, st.Plan.Epoch, want[0], epoch)
			case len(st.Plan.Target) > 0 || !slices.Equal(members, want):
				return fmt.Errorf("%s: plan members %v target %v", n, st.Plan.Members, st.Plan.Target)
			case st.Transfer.Pending+st.Transfer.InFlight > 0:
				return fmt.Errorf("%s still copies %d partitions", n, st.Transfer.Pending+st.Transfer.InFlight)
			case st.Hints != nil && st.Hints.Pending > 0:
				return fmt.Errorf("%s holds %d hints", n, st.Hints.Pending)
			}
			epoch = st.Plan.Epoch
		}
		return nil
	})
}
