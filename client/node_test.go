package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ringkv/ringkv/node"
)

// startNode runs a real single-node cluster (N=1) in this process on
// loopback ports and returns its HTTP address and a function that stops it
// and removes its data directory. The node serves once it is ready; ready
// waits for that, bounded.
func startNode() (addr string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "ringkv-client-test-")
	if err != nil {
		return "", nil, err
	}
	cfg := node.DefaultConfig()
	cfg.Node.Name = "n1"
	cfg.Node.DataDir = dir
	cfg.Listen = node.ListenConfig{HTTP: "127.0.0.1:0", RESP: "127.0.0.1:0", RPC: "127.0.0.1:0", Gossip: "127.0.0.1:0"}
	cfg.Gossip.Profile = "local"
	cfg.Storage.Fsync = "interval"
	cfg.Cluster.Partitions, cfg.Cluster.Replication = 31, 1
	cfg.Quorum.R, cfg.Quorum.W = "one", "one"
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stop = func() {
		cancel()
		<-done
		_ = os.RemoveAll(dir)
	}
	if err := ready(n, done); err != nil {
		stop()
		return "", nil, err
	}
	return n.Addrs().HTTP, stop, nil
}

// ready waits until n serves clients. The node has no readiness event to
// wait on, so this checks its state at a short interval, with a deadline
// generous enough for a loaded machine.
func ready(n *node.Node, done <-chan error) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for !n.Ready() {
		select {
		case err := <-done:
			return fmt.Errorf("node stopped before it was ready: %v", err)
		case <-deadline:
			return fmt.Errorf("node not ready after 60 s")
		case <-tick.C:
		}
	}
	return nil
}
