package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

// BenchmarkRESPConn measures one command through the RESP connection loop
// (parse, dispatch, backend call, reply, flush) without a network: the
// connection hands the loop one command per read, as an unpipelined client
// such as redis-benchmark without -P does, and discards the replies.
// backend=null is a backend that keeps nothing, so the figures are the
// front end's own; backend=node is a real single node (N=1, fsync none),
// so they include the coordinator and the storage engine.
//
//	go test -run XXX -bench RESPConn -benchmem ./node
func BenchmarkRESPConn(b *testing.B) {
	value := make([]byte, 100)
	for i := range value {
		value[i] = 'v'
	}
	backends := []struct {
		name string
		kv   func(b *testing.B) kvBackend
	}{
		{"null", func(*testing.B) kvBackend { return newNullKV(value) }},
		{"node", benchSingleNodeKV},
	}
	for _, be := range backends {
		b.Run("backend="+be.name, func(b *testing.B) {
			kv := be.kv(b)
			s := newRESPServer(kv, func() respInfo { return respInfo{} }, newMetrics(metricSources{}),
				DefaultConfig().Limits, slog.New(slog.DiscardHandler))
			for _, op := range []string{"set", "get"} {
				b.Run("op="+op, func(b *testing.B) {
					const keys = 1000
					cmds := make([][]byte, keys)
					for k := range cmds {
						key := []byte("key:" + strconv.Itoa(k))
						if op == "set" {
							cmds[k] = appendRESPCommand(nil, []byte("SET"), key, value)
						} else {
							cmds[k] = appendRESPCommand(nil, []byte("GET"), key)
						}
					}
					if op == "get" { // every key holds a value
						for k := range keys {
							if _, err := kv.Put(context.Background(), []byte("key:"+strconv.Itoa(k)), value, "", nil, false); err != nil {
								b.Fatal(err)
							}
						}
					}
					nc := &cmdConn{cmds: cmds, left: b.N}
					c := &respConn{nc: nc, addr: "bench"}
					s.attachReader(c)
					b.ReportAllocs()
					b.ResetTimer()
					s.serveConn(c)
					b.StopTimer()
					if nc.replies != b.N || nc.errs != 0 {
						b.Fatalf("%d commands: %d replies, %d error replies", b.N, nc.replies, nc.errs)
					}
				})
			}
		})
	}
}

// appendRESPCommand appends args as a RESP array of bulk strings.
func appendRESPCommand(dst []byte, args ...[]byte) []byte {
	dst = fmt.Appendf(dst, "*%d\r\n", len(args))
	for _, a := range args {
		dst = fmt.Appendf(dst, "$%d\r\n", len(a))
		dst = append(append(dst, a...), "\r\n"...)
	}
	return dst
}

// cmdConn is a net.Conn that reads as left commands taken in turn from
// cmds, one per Read, then io.EOF; it counts the replies written (one per
// Write, since the loop flushes after each unpipelined command).
type cmdConn struct {
	cmds    [][]byte
	next    int
	left    int
	pending []byte // the rest of a command a short Read did not take
	replies int
	errs    int
}

var _ net.Conn = (*cmdConn)(nil)

func (c *cmdConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		if c.left == 0 {
			return 0, io.EOF
		}
		c.left--
		c.pending = c.cmds[c.next]
		c.next = (c.next + 1) % len(c.cmds)
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *cmdConn) Write(p []byte) (int, error) {
	c.replies++
	if len(p) > 0 && p[0] == '-' {
		c.errs++
	}
	return len(p), nil
}

func (c *cmdConn) Close() error                     { return nil }
func (c *cmdConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *cmdConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *cmdConn) SetDeadline(time.Time) error      { return nil }
func (c *cmdConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cmdConn) SetWriteDeadline(time.Time) error { return nil }

// nullKV is a kvBackend that keeps nothing: a Put succeeds and every Get
// answers one version holding value. It costs next to nothing, so that a
// benchmark over it measures the front end alone.
type nullKV struct{ res kvResult }

func newNullKV(value []byte) *nullKV {
	_, s := vclock.Mint(nil, "null", vclock.Write{Value: value, WallTime: 1, Blind: true})
	return &nullKV{res: kvResult{Siblings: s}}
}

func (n *nullKV) Get(context.Context, []byte, string) (kvResult, error) { return n.res, nil }

func (n *nullKV) Put(context.Context, []byte, []byte, string, vclock.Clock, bool) (kvResult, error) {
	return n.res, nil
}

func (n *nullKV) Delete(context.Context, []byte, string, vclock.Clock, bool) (kvResult, error) {
	return n.res, nil
}

// benchSingleNodeKV starts one node (N=1, fsync none) and returns its
// coordinator as the RESP front end sees it.
func benchSingleNodeKV(b *testing.B) kvBackend {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Node.Name = "b1"
	cfg.Node.DataDir = b.TempDir()
	cfg.Listen = ListenConfig{HTTP: "127.0.0.1:0", RESP: "127.0.0.1:0", RPC: "127.0.0.1:0", Gossip: "127.0.0.1:0"}
	cfg.Gossip.Profile = "local"
	cfg.Cluster.Replication = 1
	cfg.Quorum.R, cfg.Quorum.W = "1", "1"
	cfg.Storage.Fsync = "none"
	n, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	})
	testkit.Eventually(b, 20*time.Second, "a 1-node ring", func() bool { return n.Ready() })
	return n.resp.kv
}
