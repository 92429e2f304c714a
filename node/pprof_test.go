package node

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
)

// TestPprofSwitch: /debug/pprof/ is served only with debug.pprof on.
func TestPprofSwitch(t *testing.T) {
	for _, on := range []bool{false, true} {
		api := &httpAPI{kv: newFakeKV(), admin: &fakeAdmin{self: "n1"}, metrics: newMetrics(metricSources{}),
			limits: testLimits, n: 3, log: testkit.Logger(t), pprof: on}
		srv := httptest.NewServer(api.handler())
		code, _, body := do(t, http.MethodGet, srv.URL+"/debug/pprof/", nil, nil)
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if code != want {
			t.Errorf("pprof %v: GET /debug/pprof/ = %d, want %d", on, code, want)
		}
		if on && !strings.Contains(string(body), "goroutine") {
			t.Errorf("pprof index lists no goroutine profile: %.200s", body)
		}
		if on {
			if code, _, _ := do(t, http.MethodGet, srv.URL+"/debug/pprof/heap?debug=1", nil, nil); code != http.StatusOK {
				t.Errorf("GET /debug/pprof/heap = %d", code)
			}
		}
		srv.Close()
	}
}

// TestPprofWarningNamesItsListener: the start-up warning names the
// listener that serves the profiles, the admin one when there is one.
func TestPprofWarningNamesItsListener(t *testing.T) {
	for _, admin := range []bool{false, true} {
		cfg := testConfig(t, "n1")
		cfg.Debug.Pprof = true
		if admin {
			cfg.Listen.Admin = "127.0.0.1:0"
		}
		var buf testkit.Buffer
		n, err := New(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		want := "admin=" + n.Addrs().Admin
		if !admin {
			want = "http=" + n.Addrs().HTTP
		}
		var warning string
		for _, l := range buf.Lines() {
			if strings.Contains(l, "debug.pprof is on") {
				warning = l
			}
		}
		if !strings.Contains(warning, want) {
			t.Errorf("admin listener %v: pprof warning %q, want it to name %s", admin, warning, want)
		}
	}
}
