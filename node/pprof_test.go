package node

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPprofSwitch: /debug/pprof/ is served only with debug.pprof on.
func TestPprofSwitch(t *testing.T) {
	for _, on := range []bool{false, true} {
		api := &httpAPI{kv: newFakeKV(), admin: &fakeAdmin{self: "n1"}, metrics: newMetrics(metricSources{}),
			limits: testLimits, n: 3, log: testLogger(t), pprof: on}
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
