package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The JSON shapes this package reads, declared here because e2e imports
// none of ringkv's packages (docs/http-api.md is the contract).
type member struct {
	Name     string `json:"name"`
	HTTP     string `json:"http"`
	RESP     string `json:"resp"`
	Liveness string `json:"liveness"`
	Status   string `json:"status"`
}

type inspection struct {
	Partitions        int  `json:"partitions"`
	ReplicationFactor int  `json:"replication_factor"`
	Replicas          int  `json:"replicas"`
	Degraded          bool `json:"degraded"`
	Nodes             []struct {
		Node       string `json:"node"`
		Owned      int    `json:"partitions_owned"`
		Replicated int    `json:"partitions_replicated"`
	} `json:"nodes"`
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func httpDo(method, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, data, err
}

func getJSON(addr, path string, out any) error {
	code, body, err := httpDo(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, code, body)
	}
	return json.Unmarshal(body, out)
}

// asBytes returns a bulk reply's bytes, or nil for any other reply.
func asBytes(r any) []byte {
	b, _ := r.([]byte)
	return b
}

// eventually polls cond every 100ms until it returns nil or the deadline
// passes, then fails with cond's last error.
func eventually(t *testing.T, deadline time.Time, what string, cond func() error) {
	t.Helper()
	began := time.Now()
	var err error
	for i := 0; i < 100000; i++ {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not by the deadline, waited %s: %v", what, time.Since(began).Round(time.Millisecond), err)
}

// TestCluster starts three servers from configs/dev-node*.yaml, writes
// through HTTP and reads through the Redis protocol on another node (and
// the reverse), checks membership and the ring, drives the CLI, and stops
// every server with SIGTERM, requiring exit code 0.
func TestCluster(t *testing.T) {
	deadline := testDeadline(t, 3*time.Minute)
	servers := startCluster(t, deadline)
	n1, n2, n3 := servers[0], servers[1], servers[2]

	t.Run("members", func(t *testing.T) {
		for _, s := range servers {
			eventually(t, deadline, s.name+" sees 3 alive joined members", func() error {
				var ms []member
				if err := getJSON(s.addrs["http"], "/v1/members", &ms); err != nil {
					return err
				}
				alive := 0
				for _, m := range ms {
					if m.Liveness == "alive" && m.Status == "joined" {
						alive++
					}
				}
				if len(ms) != 3 || alive != 3 {
					return fmt.Errorf("members %+v", ms)
				}
				return nil
			})
		}
	})

	t.Run("ring", func(t *testing.T) {
		eventually(t, deadline, "the ring has 3 nodes and every partition is owned", func() error {
			var in inspection
			if err := getJSON(n3.addrs["http"], "/v1/ring", &in); err != nil {
				return err
			}
			if len(in.Nodes) != 3 || in.Degraded || in.Replicas != 3 || in.Partitions < 1 {
				return fmt.Errorf("ring %+v", in)
			}
			owned := 0
			for _, n := range in.Nodes {
				owned += n.Owned
				// N=3 on 3 nodes: every node holds every partition.
				if n.Replicated != in.Partitions || n.Owned == 0 {
					return fmt.Errorf("node %+v of %d partitions", n, in.Partitions)
				}
			}
			if owned != in.Partitions {
				return fmt.Errorf("%d of %d partitions owned", owned, in.Partitions)
			}
			return nil
		})
	})

	t.Run("http write, resp read", func(t *testing.T) {
		const keys = 20
		for i := range keys {
			code, body, err := httpDo(http.MethodPut, fmt.Sprintf("http://%s/v1/kv/e2e-%d", n1.addrs["http"], i), fmt.Appendf(nil, "value-%d", i))
			if err != nil || code != http.StatusNoContent {
				t.Fatalf("PUT e2e-%d on n1: %d %s %v", i, code, body, err)
			}
		}
		rc := goRedis(t, n2.addrs["resp"])
		ctx := t.Context()
		if r, err := rc.Ping(ctx).Result(); err != nil || r != "PONG" {
			t.Fatalf("PING = %v, %v", r, err)
		}
		for i := range keys {
			r, err := rc.Get(ctx, fmt.Sprintf("e2e-%d", i)).Result()
			if want := fmt.Sprintf("value-%d", i); err != nil || r != want {
				t.Errorf("RESP GET e2e-%d on n2 = %q, %v; want %q", i, r, err, want)
			}
		}
		if r, err := rc.Get(ctx, "e2e-missing").Result(); !errors.Is(err, redis.Nil) {
			t.Errorf("RESP GET of a missing key = %q, %v; want redis.Nil", r, err)
		}
		got, err := rc.MGet(ctx, "e2e-0", "e2e-missing", "e2e-1").Result()
		if err != nil || len(got) != 3 || got[0] != "value-0" || got[1] != nil || got[2] != "value-1" {
			t.Errorf("MGET = %q, %v; want [value-0 nil value-1]", got, err)
		}
	})

	t.Run("resp write, http read", func(t *testing.T) {
		rc := goRedis(t, n2.addrs["resp"])
		ctx := t.Context()
		if r, err := rc.Set(ctx, "from-resp", "hello over redis", 0).Result(); err != nil || r != "OK" {
			t.Fatalf("SET = %v, %v", r, err)
		}
		// Repeated blind SETs overwrite: no siblings pile up.
		if r, err := rc.Set(ctx, "from-resp", "hello again", 0).Result(); err != nil || r != "OK" {
			t.Fatalf("SET = %v, %v", r, err)
		}
		code, body, err := httpDo(http.MethodGet, "http://"+n3.addrs["http"]+"/v1/kv/from-resp", nil)
		if err != nil || code != http.StatusOK || string(body) != "hello again" {
			t.Errorf("HTTP GET on n3 = %d %q %v; want 200 \"hello again\"", code, body, err)
		}
		if r, err := rc.Del(ctx, "from-resp").Result(); err != nil || r != 1 {
			t.Errorf("DEL = %v, %v; want 1", r, err)
		}
		code, _, err = httpDo(http.MethodGet, "http://"+n1.addrs["http"]+"/v1/kv/from-resp", nil)
		if err != nil || code != http.StatusNotFound {
			t.Errorf("HTTP GET after DEL = %d %v; want 404", code, err)
		}
	})

	t.Run("cli", func(t *testing.T) {
		cli := func(args ...string) (string, string, int) {
			cmd := exec.Command(binary, args...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			cmd.Stdin = strings.NewReader("value from stdin")
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("ringkv %v: %v", args, err)
			}
			return out.String(), errb.String(), code
		}
		if out, errOut, code := cli("put", "cli-key", "hello cli", "--node", n1.addrs["http"]); code != 0 || !strings.HasPrefix(out, "OK") {
			t.Fatalf("put: %d %q %q", code, out, errOut)
		}
		if out, errOut, code := cli("get", "cli-key", "--node", n2.addrs["http"]); code != 0 || out != "hello cli\n" || !strings.Contains(errOut, "context: ") {
			t.Errorf("get: %d %q %q", code, out, errOut)
		}
		if out, errOut, code := cli("put", "cli-stdin", "-", "--w", "all", "--node", n3.addrs["http"]); code != 0 {
			t.Errorf("put -: %d %q %q", code, out, errOut)
		}
		if out, errOut, code := cli("get", "cli-stdin", "--r", "all", "--node", n1.addrs["http"]); code != 0 || out != "value from stdin\n" {
			t.Errorf("get --r all: %d %q %q", code, out, errOut)
		}
		if out, errOut, code := cli("get", "never-written", "--node", n1.addrs["http"]); code != 1 || !strings.Contains(errOut, "error: not found") {
			t.Errorf("get missing: %d %q %q", code, out, errOut)
		}
		if _, errOut, code := cli("put", "k", "v", "--w", "7", "--node", n1.addrs["http"]); code == 0 || !strings.HasPrefix(errOut, "error: ") {
			t.Errorf("put --w 7 on N=3: exit %d stderr %q; want an error", code, errOut)
		}
		out, errOut, code := cli("members", "--json", "--node", n3.addrs["http"])
		var ms []member
		if code != 0 || json.Unmarshal([]byte(out), &ms) != nil || len(ms) != 3 {
			t.Errorf("members --json: %d %q %q", code, out, errOut)
		}
		out, errOut, code = cli("members", "--node", n3.addrs["http"])
		if code != 0 || strings.Count(out, "alive") != 3 {
			t.Errorf("members: %d %q %q", code, out, errOut)
		}
		out, errOut, code = cli("ring", "--node", n2.addrs["http"])
		if code != 0 || !strings.Contains(out, "n1") || !strings.Contains(out, "total") {
			t.Errorf("ring: %d %q %q", code, out, errOut)
		}
		out, errOut, code = cli("ring", "--key", "cli-key", "--node", n2.addrs["http"])
		if code != 0 || !strings.Contains(out, "partition:") || strings.Count(out, " n") < 3 {
			t.Errorf("ring --key: %d %q %q", code, out, errOut)
		}
		out, errOut, code = cli("ring", "--what-if", "add", "n4", "--node", n2.addrs["http"])
		if code != 0 || out == "" {
			t.Errorf("ring --what-if add n4: %d %q %q", code, out, errOut)
		}
	})

	t.Run("sigterm", func(t *testing.T) {
		for _, s := range servers {
			if code := s.stop(t, 30*time.Second); code != 0 {
				t.Errorf("%s exited with %d after SIGTERM, want 0", s.name, code)
			}
		}
	})
}

// TestServerConfigErrors checks that a server with a bad configuration or
// a busy port exits non-zero at once with a message naming the problem.
func TestServerConfigErrors(t *testing.T) {
	deadline := testDeadline(t, time.Minute)
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("storage:\n  fsnc: none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	invalid := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("quorum:\n  w: most\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"server", "--config", bad}, `unknown key "storage.fsnc"`},
		{"invalid value", []string{"server", "--config", invalid}, "quorum.w"},
		{"missing file", []string{"server", "--config", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"busy port", []string{"server", "--name", "busy", "--data-dir", filepath.Join(dir, "busy"),
			"--http", busy.Addr().String(), "--resp", addr(0), "--rpc", addr(1), "--gossip", addr(2)}, "listen.http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.name, tt.args...)
			code := s.wait(t, min(30*time.Second, time.Until(deadline)))
			if code == 0 || !strings.Contains(s.out.String(), "error: ") || !strings.Contains(s.out.String(), tt.want) {
				t.Errorf("exit %d, output %q; want non-zero and an error naming %q", code, s.out, tt.want)
			}
		})
	}
}
