package node

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
)

// BenchmarkClusterRESP measures SET and GET through the RESP front end of a
// real 3-node in-process cluster on loopback (N=3, R=W=quorum, fsync as
// given), one connection per parallel client, 100-byte values.
//
//	go test -run XXX -bench ClusterRESP -benchtime 20000x ./node
func BenchmarkClusterRESP(b *testing.B) {
	for _, fsync := range []string{"always", "none"} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			nodes := benchCluster(b, fsync)
			value := strings.Repeat("v", 100)
			for _, op := range []string{"set", "get"} {
				b.Run("op="+op, func(b *testing.B) {
					var next atomic.Int64
					b.SetParallelism(8) // 8 x GOMAXPROCS clients
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						i := next.Add(1)
						c, err := net.Dial("tcp", nodes[i%3].Addrs().RESP)
						if err != nil {
							b.Error(err)
							return
						}
						defer c.Close()
						rd := bufio.NewReader(c)
						k := 0
						for pb.Next() {
							key := fmt.Sprintf("bench:%d:%d", i, k%1000)
							k++
							var cmd string
							if op == "set" {
								cmd = fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(value), value)
							} else {
								cmd = fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
							}
							if _, err := c.Write([]byte(cmd)); err != nil {
								b.Error(err)
								return
							}
							r, err := readReply(rd)
							if err != nil {
								b.Error(err)
								return
							}
							if e, ok := r.(respError); ok {
								b.Error(string(e))
								return
							}
						}
					})
				})
			}
		})
	}
}

// benchCluster starts 3 nodes for a benchmark and waits for the full ring.
func benchCluster(b *testing.B, fsync string) []*Node {
	b.Helper()
	var nodes []*Node
	seed := ""
	for i := range 3 {
		cfg := DefaultConfig()
		cfg.Node.Name = fmt.Sprintf("n%d", i+1)
		cfg.Node.DataDir = b.TempDir()
		cfg.Listen = ListenConfig{HTTP: "127.0.0.1:0", RESP: "127.0.0.1:0", RPC: "127.0.0.1:0", Gossip: "127.0.0.1:0"}
		cfg.Gossip.Profile = "local"
		cfg.Storage.Fsync = fsync
		if seed != "" {
			cfg.Seeds = []string{seed}
		}
		n, err := New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		seed = n.Addrs().Gossip
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		b.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				b.Errorf("Run: %v", err)
			}
		})
		nodes = append(nodes, n)
	}
	testkit.Eventually(b, 20*time.Second, "a 3-node ring", func() bool {
		for _, n := range nodes {
			if n.ring.Load().Len() != 3 || n.liveMembers() != 3 || !n.Ready() {
				return false
			}
		}
		return true
	})
	return nodes
}
