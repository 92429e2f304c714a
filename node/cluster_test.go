package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/storage"
)

// testConfig is a node on loopback ports chosen by the kernel, with a temp
// data directory and fast gossip timers.
func testConfig(t *testing.T, name string, seeds ...string) Config {
	cfg := DefaultConfig()
	cfg.Node.Name = name
	cfg.Node.DataDir = t.TempDir()
	cfg.Listen = ListenConfig{HTTP: "127.0.0.1:0", RESP: "127.0.0.1:0", RPC: "127.0.0.1:0", Gossip: "127.0.0.1:0"}
	cfg.Seeds = seeds
	cfg.Gossip.Profile = "local"
	cfg.Storage.Fsync = "interval"
	cfg.Cluster.Partitions = 271
	cfg.Limits = LimitsConfig{MaxKeyBytes: 64, MaxValueBytes: 4096}
	return cfg
}

// runningNode is a node whose Run goroutine the test controls.
type runningNode struct {
	*Node
	cancel context.CancelFunc
	done   chan error
}

func startNode(t *testing.T, cfg Config) *runningNode {
	t.Helper()
	return startNodeWith(t, cfg, Deps{})
}

// startNodeWith is startNode with some of the node's pieces given.
func startNodeWith(t *testing.T, cfg Config, deps Deps) *runningNode {
	t.Helper()
	n, err := NewWith(cfg, testkit.Logger(t).With("test_node", cfg.Node.Name), deps)
	if err != nil {
		t.Fatalf("NewWith(%s): %v", cfg.Node.Name, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	rn := &runningNode{Node: n, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- n.Run(ctx) }()
	t.Cleanup(func() { rn.stop(t) })
	return rn
}

// stop cancels Run and waits for its graceful shutdown; idempotent.
func (rn *runningNode) stop(t *testing.T) error {
	t.Helper()
	rn.cancel()
	select {
	case err, ok := <-rn.done:
		if ok {
			close(rn.done)
		}
		return err
	case <-time.After(2 * shutdownTimeout):
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Fatalf("node %s did not stop; goroutines:\n%s", rn.cfg.Node.Name, stacks.String())
		return nil
	}
}

func httpURL(n *runningNode, path string) string { return "http://" + n.Addrs().HTTP + path }

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	code, _, body := do(t, "GET", url, nil, nil)
	if code != 200 {
		t.Fatalf("GET %s = %d %s", url, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// waitConverged waits until every node sees all of them alive, has them
// all in its ring and serves clients.
func waitConverged(t testing.TB, nodes ...*runningNode) {
	t.Helper()
	testkit.Eventually(t, 2*time.Minute, fmt.Sprintf("%d alive members, a %d-node ring and readiness everywhere", len(nodes), len(nodes)), func() bool {
		for _, n := range nodes {
			if n.ring.Load().Len() != len(nodes) || n.liveMembers() != len(nodes) || !n.Ready() {
				return false
			}
		}
		return true
	})
}

func TestCluster(t *testing.T) {
	n1 := startNode(t, testConfig(t, "n1"))
	seed := n1.Addrs().Gossip
	n2 := startNode(t, testConfig(t, "n2", seed))
	n3 := startNode(t, testConfig(t, "n3", seed))
	nodes := []*runningNode{n1, n2, n3}

	waitConverged(t, nodes...)

	t.Run("http", func(t *testing.T) {
		url := "/v1/kv/user%2F1"
		if code, _, body := do(t, "PUT", httpURL(n1, url+"?w=all"), []byte("alice"), nil); code != 204 {
			t.Fatalf("PUT = %d %s", code, body)
		}
		for _, n := range nodes {
			if code, _, body := do(t, "GET", httpURL(n, url+"?r=all"), nil, nil); code != 200 || string(body) != "alice" {
				t.Fatalf("GET on %s = %d %q", n.cfg.Node.Name, code, body)
			}
		}
		// Two writers with the same context through one coordinator: 300.
		_, h, _ := do(t, "GET", httpURL(n2, url), nil, nil)
		c := map[string]string{client.ContextHeader: h.Get(client.ContextHeader)}
		do(t, "PUT", httpURL(n2, url+"?w=all"), []byte("bob"), c)
		do(t, "PUT", httpURL(n2, url+"?w=all"), []byte("carol"), c)
		code, _, body := do(t, "GET", httpURL(n3, url+"?r=all"), nil, nil)
		if code != 300 {
			t.Fatalf("GET after concurrent writes = %d %s, want 300", code, body)
		}
		var sb client.SiblingsBody
		if err := json.Unmarshal(body, &sb); err != nil || len(sb.Siblings) != 2 {
			t.Fatalf("siblings %s: %v", body, err)
		}
		// Delete with that context: 404, still with a context.
		if code, _, body := do(t, "DELETE", httpURL(n3, url+"?w=all"), nil, map[string]string{client.ContextHeader: sb.Context}); code != 204 {
			t.Fatalf("DELETE = %d %s", code, body)
		}
		code, h, body = do(t, "GET", httpURL(n1, url+"?r=all"), nil, nil)
		if code != 404 || h.Get(client.ContextHeader) == "" {
			t.Fatalf("GET deleted = %d %s ctx %q", code, body, h.Get(client.ContextHeader))
		}
		if code, _, _ := do(t, "PUT", httpURL(n1, "/v1/kv/"+strings.Repeat("k", 65)), []byte("v"), nil); code != 400 {
			t.Fatalf("long key = %d, want 400", code)
		}
		if code, _, _ := do(t, "PUT", httpURL(n1, "/v1/kv/big"), bytes.Repeat([]byte("v"), 4097), nil); code != 413 {
			t.Fatalf("big value = %d, want 413", code)
		}
		if code, _, _ := do(t, "GET", httpURL(n1, "/v1/kv/big?r=4"), nil, nil); code != 400 {
			t.Fatalf("r=4 with N=3 = %d, want 400", code)
		}
	})

	t.Run("resp", func(t *testing.T) {
		c := dialRESP(t, n3.Addrs().RESP)
		if got := c.do(t, "SET", "r1", "v1"); got != "OK" {
			t.Fatalf("SET = %v", got)
		}
		if code, _, body := do(t, "GET", httpURL(n1, "/v1/kv/r1?r=all"), nil, nil); code != 200 || string(body) != "v1" {
			t.Fatalf("HTTP GET of a RESP SET = %d %q", code, body)
		}
		do(t, "PUT", httpURL(n2, "/v1/kv/h1?w=all"), []byte("from-http"), nil)
		c2 := dialRESP(t, n1.Addrs().RESP)
		if got, ok := c2.do(t, "GET", "h1").([]byte); !ok || string(got) != "from-http" {
			t.Fatalf("RESP GET of an HTTP PUT = %v", got)
		}
		if got := c2.do(t, "DEL", "h1", "nope"); got != int64(1) {
			t.Fatalf("DEL = %v", got)
		}
		if got := c.do(t, "EXISTS", "h1", "r1"); got != int64(1) {
			t.Fatalf("EXISTS = %v", got)
		}
	})

	t.Run("admin", func(t *testing.T) {
		var ms []client.Member
		getJSON(t, httpURL(n2, "/v1/members"), &ms)
		if len(ms) != 3 {
			t.Fatalf("members %+v", ms)
		}
		for i, m := range ms {
			if want := []string{"n1", "n2", "n3"}[i]; m.Name != want || m.Liveness != "alive" || m.Status != "joined" || m.HTTP != nodes[i].Addrs().HTTP {
				t.Fatalf("member %d = %+v", i, m)
			}
		}
		var in client.Ring
		getJSON(t, httpURL(n1, "/v1/ring"), &in)
		if len(in.Nodes) != 3 || in.Degraded || in.Replicas != 3 {
			t.Fatalf("inspection %+v", in)
		}
		var keys int64
		for _, ni := range in.Nodes {
			if !ni.HasStats || ni.Replicated != 271 {
				t.Fatalf("node %+v lacks stats or does not replicate every partition", ni)
			}
			keys += ni.Keys
		}
		if keys < 3*2 { // r1 and user/1 (tombstone) at least, on 3 replicas
			t.Fatalf("ring reports %d keys in all", keys)
		}
		var kp client.KeyPlacement
		getJSON(t, httpURL(n1, "/v1/ring?key=user/1"), &kp)
		if len(kp.Replicas) != 3 {
			t.Fatalf("placement %+v", kp)
		}
		var wi client.WhatIf
		getJSON(t, httpURL(n1, "/v1/ring?what_if=add:n4"), &wi)
		if wi.Op != "add" || wi.MembersAfter != 4 || wi.MovedSlots == 0 {
			t.Fatalf("what-if %+v", wi)
		}
		if code, _, body := do(t, "GET", httpURL(n1, "/v1/ring?what_if=remove:nobody"), nil, nil); code != 404 {
			t.Fatalf("what-if remove unknown = %d %s", code, body)
		}
		if code, _, body := do(t, "POST", httpURL(n1, "/v1/remove/n1"), nil, nil); code != 400 {
			t.Fatalf("remove self = %d %s", code, body)
		}
		if code, _, body := do(t, "POST", httpURL(n1, "/v1/remove/nobody"), nil, nil); code != 404 {
			t.Fatalf("remove unknown = %d %s", code, body)
		}
		if code, _, body := do(t, "GET", httpURL(n1, "/healthz"), nil, nil); code != 200 || string(body) != "ok\n" {
			t.Fatalf("healthz = %d %q", code, body)
		}
		_, _, metrics := do(t, "GET", httpURL(n1, "/metrics"), nil, nil)
		for _, name := range []string{
			metricRequests, metricRequestDuration, metricQuorumFailures, metricReadRepairs,
			metricFsyncDuration, metricFsyncBatch, metricSnapshotDuration, metricKeys,
			metricBytes, metricLiveMembers + " 3", metricRingMembers + " 3",
		} {
			if !strings.Contains(string(metrics), name) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
	})

	t.Run("graceful stop", func(t *testing.T) {
		dir := n3.cfg.DataDir()
		if err := n3.stop(t); err != nil {
			t.Fatalf("Run returned %v after a clean stop", err)
		}
		// The listeners are closed, and the WAL was flushed: the engine
		// reopens with the acknowledged keys.
		if _, err := net.DialTimeout("tcp", n3.Addrs().HTTP, time.Second); err == nil {
			t.Fatal("HTTP still accepts after Run returned")
		}
		scfg := storage.DefaultConfig()
		scfg.Dir, scfg.NodeID, scfg.Partitions = dir, "n3", 271
		scfg.Partitioner = n3.ring.Load().Partition
		e, err := storage.Open(scfg)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if s := e.Get([]byte("r1")).Live(); len(s) != 1 || string(s[0].Value) != "v1" {
			t.Fatalf("after restart r1 = %+v", s)
		}
		// The others see n3 dead but keep it in the ring; quorum still works.
		testkit.Eventually(t, 15*time.Second, "n3 seen dead", func() bool { return n1.liveMembers() == 2 })
		if n1.ring.Load().Len() != 3 {
			t.Fatal("a stopped node left the ring")
		}
		if code, _, body := do(t, "PUT", httpURL(n1, "/v1/kv/after"), []byte("x"), nil); code != 204 {
			t.Fatalf("PUT with one node down = %d %s", code, body)
		}
		code, _, body := do(t, "PUT", httpURL(n1, "/v1/kv/after?w=all"), []byte("x"), nil)
		var e503 client.ErrorBody
		if code != 503 || json.Unmarshal(body, &e503) != nil || e503.Need != 3 || e503.Got == nil || *e503.Got > 2 || e503.Failures["n3"] == "" {
			t.Fatalf("PUT w=all with one node down = %d %s", code, body)
		}
	})
}

func TestNewErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t, "a")
	cfg.Listen.RESP = busy.Addr().String()
	_, err = New(cfg, nil)
	if want := "listen.resp " + busy.Addr().String() + ": address already in use"; err == nil || err.Error() != want {
		t.Fatalf("busy port: %v, want %q", err, want)
	}
	// The data directory is usable again: New closed what it opened.
	cfg.Listen.RESP = "127.0.0.1:0"
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New after a failed New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Run(ctx); err != nil {
		t.Fatalf("Run with a done ctx: %v", err)
	}
	if err := n.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	// Another node's data directory is refused.
	other := testConfig(t, "b")
	other.Node.DataDir = cfg.Node.DataDir
	if _, err := New(other, nil); !errors.Is(err, storage.ErrWrongNode) || !strings.Contains(err.Error(), "node.data_dir") {
		t.Fatalf("foreign data dir: %v", err)
	}
	bad := testConfig(t, "c")
	bad.Quorum.W = "most"
	if _, err := New(bad, nil); err == nil || !strings.Contains(err.Error(), "quorum.w") {
		t.Fatalf("bad config: %v", err)
	}
	bad = testConfig(t, "d")
	bad.Gossip.SecretKey = "not base64!"
	if _, err := New(bad, nil); err == nil || !strings.Contains(err.Error(), "gossip.secret_key") {
		t.Fatalf("bad secret: %v", err)
	}
}

// TestHTTPServerTimeouts checks that slow clients cannot hold a connection
// forever: every server timeout is set.
func TestHTTPServerTimeouts(t *testing.T) {
	n, err := New(testConfig(t, "t"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := n.httpSrv
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Fatalf("timeouts %v %v %v %v", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
