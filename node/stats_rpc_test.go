package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
)

// wireTransport answers each call with handle's result after a trip
// through the wire encoding, as the TCP transport would deliver it.
func wireTransport(handle func(to string, req replica.Request) (replica.Response, error)) replica.Transport {
	return replica.TransportFunc(func(_ context.Context, to string, req replica.Request) (replica.Response, error) {
		b, err := replica.MarshalRequest(req)
		if err != nil {
			return replica.Response{}, err
		}
		if req, err = replica.UnmarshalRequest(b); err != nil {
			return replica.Response{}, err
		}
		resp, herr := handle(to, req)
		if b, err = replica.MarshalReply(resp, herr); err != nil {
			return replica.Response{}, err
		}
		return replica.UnmarshalReply(to, b)
	})
}

// TestRemoteStats: a peer's stats come back whole over the RPC; a peer
// that answers as another node, is too old to know the call, is down or
// sends malformed stats gives an error (has_stats false), not numbers.
func TestRemoteStats(t *testing.T) {
	want := client.NodeStats{Node: "n2", Keys: 42, Bytes: 4200, DroppedPartitions: 3,
		Plan:     &client.Plan{Epoch: 7, Version: 2, Members: []string{"n1", "n2"}, Target: []string{"n1", "n2", "n3"}},
		Transfer: &client.Transfer{Epoch: 7, Pending: 5, BytesLeft: 99},
		AAE:      &client.AAETotals{Exchanges: 11, LastFullPass: "2026-01-02T03:04:05.000Z"},
		Hints:    &client.HintTotals{Pending: 1, KeptByCoordinator: 2}}
	encoded := func(st client.NodeStats) []byte {
		b, err := encodeNodeStats(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		handle  func(to string, req replica.Request) (replica.Response, error)
		errPart string // empty: want's stats are wanted
	}{
		{"answers", func(_ string, req replica.Request) (replica.Response, error) {
			if req.Kind != replica.KindNodeStats {
				return replica.Response{}, fmt.Errorf("asked %v", req.Kind)
			}
			return replica.Response{Stats: encoded(want)}, nil
		}, ""},
		{"answers as another node", func(string, replica.Request) (replica.Response, error) {
			other := want
			other.Node = "n1"
			return replica.Response{Stats: encoded(other)}, nil
		}, `answered as "n1"`},
		{"too old to know the call", func(to string, req replica.Request) (replica.Response, error) {
			return replica.Response{}, fmt.Errorf("%w: %v from %s", replica.ErrUnknownKind, req.Kind, to)
		}, "unknown request kind"},
		{"down", func(string, replica.Request) (replica.Response, error) {
			return replica.Response{}, replica.ErrReplicaDown
		}, "down"},
		{"no stats", func(string, replica.Request) (replica.Response, error) {
			return replica.Response{}, nil
		}, "node: stats"},
		{"not msgpack", func(string, replica.Request) (replica.Response, error) {
			return replica.Response{Stats: []byte{0xc1}}, nil
		}, "node: stats"},
		{"trailing bytes", func(string, replica.Request) (replica.Response, error) {
			return replica.Response{Stats: append(encoded(want), 0x01)}, nil
		}, "trailing"},
		{"a list claiming more than it holds", func(string, replica.Request) (replica.Response, error) {
			// {"plan": {"members": array32 of 2^31 elements}}
			b := []byte{0x81, 0xa4, 'p', 'l', 'a', 'n', 0x81, 0xa7, 'm', 'e', 'm', 'b', 'e', 'r', 's', 0xdd, 0x80, 0, 0, 0}
			return replica.Response{Stats: b}, nil
		}, "node: stats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &clusterAdmin{self: "n1", rpc: wireTransport(tc.handle), log: slog.New(slog.DiscardHandler)}
			got, err := a.remoteStats(t.Context(), "n2")
			if tc.errPart == "" {
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Fatalf("stats changed on the way (-sent +got):\n%s", d)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("remoteStats = %+v, %v; want an error naming %q", got, err, tc.errPart)
			}
		})
	}
}

// TestRemoteStatsTimeout: a peer that never answers costs statsTimeout at
// most, as a down one does (in a synctest bubble: no real waiting).
func TestRemoteStatsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &clusterAdmin{self: "n1", log: slog.New(slog.DiscardHandler),
			rpc: replica.TransportFunc(func(ctx context.Context, _ string, _ replica.Request) (replica.Response, error) {
				<-ctx.Done()
				return replica.Response{}, ctx.Err()
			})}
		start := time.Now()
		if _, err := a.remoteStats(t.Context(), "n2"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v, want DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != statsTimeout {
			t.Fatalf("waited %v, want %v", waited, statsTimeout)
		}
	})
}

// requestsOf sums the client requests a node counted for op, any status.
func requestsOf(t *testing.T, m *metrics, op string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != metricRequests {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if lp.GetName() == "op" && lp.GetValue() == op {
					sum += s.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestRingStatsOverRPC: in a cluster with tokens, where the nodes do not
// even share them and one serves its operator routes on an admin
// listener, GET /v1/ring on any node shows every node's stats, and no
// node's HTTP API was asked for them: no token travels between nodes.
func TestRingStatsOverRPC(t *testing.T) {
	c1 := testConfig(t, "n1")
	c1.Auth = testAuthConfig()
	c1.Listen.Admin = "127.0.0.1:0"
	n1 := startNode(t, c1)
	c2 := testConfig(t, "n2", n1.Addrs().Gossip)
	c2.Auth = testAuthConfig()
	n2 := startNode(t, c2)
	const tokOwn = "n3-only-token-0123456789"
	c3 := testConfig(t, "n3", n1.Addrs().Gossip)
	c3.Auth = AuthConfig{Tokens: []TokenConfig{{Name: "ops3", TokenSHA256: sha(tokOwn), Role: "admin"}}}
	n3 := startNode(t, c3)
	nodes := []*runningNode{n1, n2, n3}
	waitConverged(t, nodes...)

	for _, tc := range []struct{ url, tok string }{
		{"http://" + n1.Addrs().Admin + "/v1/ring", tokAdmin},
		{httpURL(n2, "/v1/ring"), tokAdmin},
		{httpURL(n3, "/v1/ring"), tokOwn},
	} {
		// A peer that misses statsTimeout on a loaded machine is shown
		// without stats, as it should be; the next inspection asks again.
		testkit.Eventually(t, time.Minute, "every node's stats in GET "+tc.url, func() error {
			code, _, b := do(t, http.MethodGet, tc.url, nil, map[string]string{"Authorization": "Bearer " + tc.tok})
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", tc.url, code, b)
			}
			var in client.Ring
			if err := json.Unmarshal(b, &in); err != nil {
				t.Fatal(err)
			}
			if len(in.Nodes) != 3 {
				t.Fatalf("GET %s: %d nodes", tc.url, len(in.Nodes))
			}
			for _, ni := range in.Nodes {
				if !ni.HasStats {
					return fmt.Errorf("node %s has no stats", ni.Node)
				}
			}
			return nil
		})
	}
	for _, n := range nodes {
		if got := requestsOf(t, n.metrics, "stats"); got != 0 {
			t.Errorf("%s served %v GET /v1/stats: a node asked another over HTTP", n.cfg.Node.Name, got)
		}
	}
}
