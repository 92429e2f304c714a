package deploy_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ringkv/ringkv/node"
)

// probeStatus starts a real node on loopback (no seeds: it serves at once)
// and returns the status its HTTP listener answers for each path, so that a
// probe in a manifest is held to the routes the node really serves.
func probeStatus(t *testing.T, paths []string) map[string]int {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Node.DataDir = t.TempDir()
	cfg.Listen = node.ListenConfig{HTTP: "127.0.0.1:0", RESP: "127.0.0.1:0", RPC: "127.0.0.1:0", Gossip: "127.0.0.1:0"}
	cfg.Gossip.Profile = "local"
	cfg.Cluster.Partitions = 271
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node Run: %v", err)
		}
	}()
	hc := &http.Client{Timeout: 30 * time.Second}
	got := map[string]int{}
	for _, p := range paths {
		resp, err := hc.Get("http://" + n.Addrs().HTTP + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		got[p] = resp.StatusCode
	}
	return got
}
