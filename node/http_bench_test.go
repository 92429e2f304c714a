package node

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkHTTPHandler measures one request through the HTTP front end's
// root handler (routing, body cap, instrumentation, key parsing, backend
// call, answer) without a network, on a backend that keeps nothing, so the
// figures are the front end's own. It is the figure the console must not
// move: the console's routes sit beside /v1/kv/, not on it.
//
//	go test -run XXX -bench HTTPHandler -benchmem ./node
func BenchmarkHTTPHandler(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 100)
	api := &httpAPI{kv: newNullKV(value), admin: &fakeAdmin{self: "n1"}, metrics: newMetrics(metricSources{}),
		limits: DefaultConfig().Limits, n: 3, log: slog.New(slog.DiscardHandler)}
	h := api.handler()
	for _, op := range []string{"put", "get"} {
		b.Run("op="+op, func(b *testing.B) {
			const keys = 1000
			paths := make([]string, keys)
			for k := range paths {
				paths[k] = kvPrefix + "key:" + strconv.Itoa(k)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var req *http.Request
				if op == "put" {
					req = httptest.NewRequest(http.MethodPut, paths[i%keys], bytes.NewReader(value))
				} else {
					req = httptest.NewRequest(http.MethodGet, paths[i%keys], nil)
				}
				i++
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK && rec.Code != http.StatusNoContent {
					b.Fatalf("%s %s: status %d: %s", req.Method, req.URL, rec.Code, rec.Body)
				}
			}
		})
	}
}
