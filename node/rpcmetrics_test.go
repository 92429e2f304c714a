package node

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
)

// TestRecoveredPanicsRPCAndGossip: panics the RPC transport and gossip
// recovered are exported as ringkv_recovered_panics_total with listener
// rpc and gossip, beside http and resp.
func TestRecoveredPanicsRPCAndGossip(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	cfg := replica.DefaultTCPConfig()
	cfg.Self = "n1"
	cfg.Resolve = func(string) (string, bool) { return addr, true }
	cfg.Logger = testkit.Logger(t)
	tr, err := replica.NewTCPTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- tr.Serve(ln, replica.HandlerFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
			panic("injected bug")
		}))
	}()
	t.Cleanup(func() {
		_ = tr.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	m := newMetrics(metricSources{})
	m.registerRPC(tr)
	m.registerRecovered("gossip", func() uint64 { return 3 })
	for _, l := range []string{"rpc", "gossip"} {
		if !hasSeries(t, m, metricPanics, "listener", l) {
			t.Fatalf("%s{listener=%q} is not exported", metricPanics, l)
		}
	}
	// The transport calls itself: the server side's handler panics.
	if _, err := tr.Call(t.Context(), "n1", replica.Request{Kind: replica.KindPing}); !errors.Is(err, replica.ErrInternal) {
		t.Fatalf("call whose handler panicked: %v", err)
	}
	for l, want := range map[string]float64{"rpc": 1, "gossip": 3, "http": 0} {
		if got := counterValue(t, m, metricPanics, "listener", l); got != want {
			t.Errorf("%s{listener=%q} = %v, want %v", metricPanics, l, got, want)
		}
	}
}

// hasSeries reports whether m exports a series of name with label=value.
func hasSeries(t *testing.T, m *metrics, name, label, value string) bool {
	t.Helper()
	_, ok := series(t, m, name, map[string]string{label: value})
	return ok
}
