package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// hintMember is the part of a GET /v1/members row this test reads.
type hintMember struct {
	Name         string `json:"name"`
	Liveness     string `json:"liveness"`
	PendingHints int64  `json:"pending_hints"`
}

// hintCluster is three servers with replication 2, so every key has a
// fallback node to hold hints, started from configs written here.
type hintCluster struct {
	dir     string
	configs map[string]string
	servers map[string]*server
}

func (c *hintCluster) start(t *testing.T, name string, deadline time.Time) *server {
	t.Helper()
	s := startServer(t, name, "server", "--config", c.configs[name], "--data-dir", filepath.Join(c.dir, name))
	s.waitReady(t, deadline)
	c.servers[name] = s
	return s
}

func newHintCluster(t *testing.T, deadline time.Time) *hintCluster {
	t.Helper()
	ports := freePorts(t, 12)
	c := &hintCluster{dir: t.TempDir(), configs: map[string]string{}, servers: map[string]*server{}}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		var seeds string
		for j := range 3 {
			if j != i {
				seeds += "  - " + addr(ports[4*j+3]) + "\n"
			}
		}
		boot := "false"
		if i == 0 {
			boot = "true" // n1 starts the cluster; the others join it
		}
		cfg := fmt.Sprintf(`node:
  name: %s
listen:
  http: %s
  resp: %s
  rpc: %s
  gossip: %s
seeds:
%sbootstrap: %s
cluster:
  replication: 2
quorum:
  w: "2"
  sloppy: true
storage:
  fsync: always
gossip:
  profile: local
hints:
  retry_interval: 500ms
`, name, addr(ports[4*i]), addr(ports[4*i+1]), addr(ports[4*i+2]), addr(ports[4*i+3]), seeds, boot)
		path := filepath.Join(c.dir, name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		c.configs[name] = path
	}
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		s := startServer(t, name, "server", "--config", c.configs[name], "--data-dir", filepath.Join(c.dir, name))
		c.servers[name] = s
	}
	for _, s := range c.servers {
		s.waitReady(t, deadline)
	}
	return c
}

// members returns GET /v1/members of node, by name.
func (c *hintCluster) members(node string) (map[string]hintMember, error) {
	var ms []hintMember
	if err := getJSON(c.servers[node].addrs["http"], "/v1/members", &ms); err != nil {
		return nil, err
	}
	out := map[string]hintMember{}
	for _, m := range ms {
		out[m.Name] = m
	}
	return out, nil
}

// TestHintedHandoffSurvivesKill: with replication 2 and W=2, a replica is
// killed; writes still succeed through stand-ins that keep hints. The
// stand-in holding the most hints is killed with SIGKILL and restarted: it
// still holds them, and once the replica is back every write reaches it.
func TestHintedHandoffSurvivesKill(t *testing.T) {
	deadline := testDeadline(t, 3*time.Minute)
	c := newHintCluster(t, deadline)
	eventually(t, deadline, "three live members", func() error {
		for _, n := range []string{"n1", "n2", "n3"} {
			ms, err := c.members(n)
			if err != nil {
				return err
			}
			for _, m := range []string{"n1", "n2", "n3"} {
				if ms[m].Liveness != "alive" {
					return fmt.Errorf("%s sees %s as %q", n, m, ms[m].Liveness)
				}
			}
		}
		return nil
	})

	// The target goes down hard.
	if err := c.servers["n3"].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.servers["n3"].wait(t, 10*time.Second)
	eventually(t, deadline, "n1 and n2 see n3 down", func() error {
		for _, n := range []string{"n1", "n2"} {
			ms, err := c.members(n)
			if err != nil {
				return err
			}
			if ms["n3"].Liveness == "alive" {
				return fmt.Errorf("%s still sees n3 alive", n)
			}
		}
		return nil
	})

	const keys = 300
	for i := range keys {
		url := fmt.Sprintf("http://%s/v1/kv/hk-%d?w=2", c.servers["n1"].addrs["http"], i)
		code, body, err := httpDo(http.MethodPut, url, []byte("v-"+strconv.Itoa(i)))
		if err != nil || code/100 != 2 {
			t.Fatalf("PUT hk-%d with n3 down: %d %s %v", i, code, body, err)
		}
	}

	// Find the stand-in holding the most hints for n3.
	pending := map[string]int64{}
	for _, n := range []string{"n1", "n2"} {
		ms, err := c.members(n)
		if err != nil {
			t.Fatal(err)
		}
		pending[n] = ms["n3"].PendingHints
	}
	t.Logf("pending hints for n3: %v", pending)
	holder := "n1"
	if pending["n2"] > pending["n1"] {
		holder = "n2"
	}
	if pending[holder] == 0 {
		t.Fatalf("no stand-in holds hints for n3: %v", pending)
	}

	// SIGKILL the stand-in and restart it: its hints were on disk.
	if err := c.servers[holder].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.servers[holder].wait(t, 10*time.Second)
	c.start(t, holder, deadline)
	ms, err := c.members(holder)
	if err != nil {
		t.Fatal(err)
	}
	if got := ms["n3"].PendingHints; got != pending[holder] {
		t.Fatalf("%s holds %d hints for n3 after SIGKILL and restart, want %d", holder, got, pending[holder])
	}

	// The target comes back; every stand-in delivers.
	c.start(t, "n3", deadline)
	eventually(t, deadline, "hints for n3 delivered", func() error {
		for _, n := range []string{"n1", "n2"} {
			ms, err := c.members(n)
			if err != nil {
				return err
			}
			if p := ms["n3"].PendingHints; p != 0 {
				return fmt.Errorf("%s still holds %d hints for n3", n, p)
			}
		}
		return nil
	})
	// Read every key from n3 with r=1: for keys n3 replicates its own copy
	// answers first, so a missing handoff would show as a 404 here.
	for i := range keys {
		url := fmt.Sprintf("http://%s/v1/kv/hk-%d?r=1", c.servers["n3"].addrs["http"], i)
		code, body, err := httpDo(http.MethodGet, url, nil)
		if err != nil || code != http.StatusOK || string(body) != "v-"+strconv.Itoa(i) {
			t.Fatalf("GET hk-%d from n3: %d %q %v", i, code, body, err)
		}
	}
	for _, s := range c.servers {
		if code := s.stop(t, 20*time.Second); code != 0 {
			t.Errorf("%s exited with %d", s.name, code)
		}
	}
}
