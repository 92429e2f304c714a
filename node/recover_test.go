package node

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
)

// TestHTTPRecoversPanic: a handler that panics answers 500 when it had
// written nothing yet, and cuts the connection when it had (a truncated
// answer must not look complete); either way the panic is logged at error
// level with the request and counted, and the server goes on.
func TestHTTPRecoversPanic(t *testing.T) {
	rec := &recordHandler{}
	m := newMetrics(metricSources{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /early", func(http.ResponseWriter, *http.Request) { panic("injected bug") })
	mux.HandleFunc("GET /late", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("injected bug")
	})
	mux.HandleFunc("GET /abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := httptest.NewUnstartedServer(recoverHTTP(mux, m, slog.New(rec)))
	srv.Config.ErrorLog = slog.NewLogLogger(testkit.Logger(t).Handler(), slog.LevelDebug)
	srv.Start()
	t.Cleanup(srv.Close)

	status, hdr, body := do(t, "GET", srv.URL+"/early", nil, nil)
	if status != http.StatusInternalServerError || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/early: %d %q %s", status, hdr.Get("Content-Type"), body)
	}
	if diff := cmp.Diff(client.ErrorBody{Error: "internal error"}, decodeError(t, body)); diff != "" {
		t.Fatal(diff)
	}

	resp, err := http.Get(srv.URL + "/late")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("/late: a response cut short by a panic read as complete")
	}

	// http.ErrAbortHandler is net/http's own way to abort: not a bug.
	if resp, err := http.Get(srv.URL + "/abort"); err == nil {
		resp.Body.Close()
		t.Fatal("/abort answered")
	}

	if status, _, body := do(t, "GET", srv.URL+"/ok", nil, nil); status != http.StatusOK || string(body) != "ok" {
		t.Fatalf("/ok after panics: %d %s", status, body)
	}
	if got := counterValue(t, m, metricPanics, "listener", "http"); got != 2 {
		t.Fatalf("%s{listener=http} = %v, want 2", metricPanics, got)
	}
	if diff := cmp.Diff([]string{"panic recovered", "panic recovered"}, rec.messages("listener", "http")); diff != "" {
		t.Fatalf("error logs (-want +got):\n%s", diff)
	}
}

// series finds the series of metric name whose labels include every pair
// of want; ok is false when there is none. The value is the gauge's or
// the counter's.
func series(t *testing.T, m *metrics, name string, want map[string]string) (value float64, ok bool) {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range s.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			if g := s.GetGauge(); g != nil {
				return g.GetValue(), true
			}
			return s.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// counterValue reads the counter series of name with label=value (0 when
// absent).
func counterValue(t *testing.T, m *metrics, name, label, value string) float64 {
	t.Helper()
	v, _ := series(t, m, name, map[string]string{label: value})
	return v
}

// TestHTTPPanicCounted: a request whose handler panics is still counted
// and timed by its route, with status 500.
func TestHTTPPanicCounted(t *testing.T) {
	m := newMetrics(metricSources{})
	a := &httpAPI{metrics: m}
	h := recoverHTTP(a.instrument("get", func(http.ResponseWriter, *http.Request) { panic("injected bug") }), m, testkit.Logger(t))
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", "/v1/kv/k", nil))
	if rr.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rr.Code)
	}
	if got := requestCount(t, m, "get", "500"); got != 1 {
		t.Fatalf("%s{proto=http,op=get,status=500} = %v, want 1", metricRequests, got)
	}
}

// requestCount reads metricRequests for an HTTP op and status.
func requestCount(t *testing.T, m *metrics, op, status string) float64 {
	t.Helper()
	v, _ := series(t, m, metricRequests, map[string]string{"proto": "http", "op": op, "status": status})
	return v
}
