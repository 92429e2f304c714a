package node

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
)

// newOpenAPI serves every route of listener set without tokens (the dev
// cluster's setup), on loopback, with protected mode on.
func newOpenAPI(t *testing.T, set routeSet) (*httptest.Server, *fakeKV, *fakeAdmin, *metrics) {
	t.Helper()
	kv := newFakeKV()
	adm := &fakeAdmin{self: "n1", members: map[string]client.Member{
		"n1": {Name: "n1", Liveness: "alive", Status: "joined"},
		"n2": {Name: "n2", Liveness: "alive", Status: "joined"},
	}}
	m := newMetrics(metricSources{})
	api := &httpAPI{kv: kv, admin: adm, keyring: fakeKeyring{}, metrics: m, limits: testLimits, n: 3, log: testkit.Logger(t),
		gate: newGate(nil, true, "127.0.0.1:0", m, testkit.Logger(t))}
	srv := httptest.NewServer(api.handlerFor(set))
	t.Cleanup(srv.Close)
	return srv, kv, adm, m
}

// A page of another site cannot make an operator's browser leave, remove
// or write, even on a node without tokens; the CLI, curl and the node's
// own console still can.
func TestCrossOriginRefused(t *testing.T) {
	for _, set := range []struct {
		name string
		set  routeSet
	}{{"all routes", routesAll}, {"admin listener", routesAdmin}} {
		t.Run(set.name, func(t *testing.T) {
			srv, kv, adm, m := newOpenAPI(t, set.set)
			cross := []map[string]string{
				{"Sec-Fetch-Site": "cross-site"},
				{"Sec-Fetch-Site": "same-site"},
				{"Origin": "http://evil.example"},
				{"Origin": "null"},
				{"Origin": "http://127.0.0.1:1"}, // same host, another port
			}
			routes := [][2]string{{http.MethodPost, "/v1/leave"}, {http.MethodPost, "/v1/remove/n2"},
				{http.MethodPut, "/v1/transfer/rate?mb=1"}, {http.MethodPut, "/v1/gossip/keys"}}
			if set.set == routesAll {
				routes = append(routes, [2]string{http.MethodPut, "/v1/kv/k"}, [2]string{http.MethodDelete, "/v1/kv/k"})
			}
			refused := 0
			for _, rt := range routes {
				for _, hdr := range cross {
					status, _, b := do(t, rt[0], srv.URL+rt[1], []byte("v"), hdr)
					if status != http.StatusForbidden {
						t.Errorf("%s %s with %v: %d %s, want 403", rt[0], rt[1], hdr, status, b)
					}
					if e := decodeError(t, b).Error; e != crossSiteText {
						t.Errorf("%s %s with %v: error %q", rt[0], rt[1], hdr, e)
					}
					refused++
				}
			}
			if got := refusedCount(t, m, "http", refuseCrossSite); got != float64(refused) {
				t.Errorf("refused{http,cross_site} = %v, want %d", got, refused)
			}
			adm.mu.Lock()
			left, members := adm.left, len(adm.members)
			adm.mu.Unlock()
			if left || members != 2 {
				t.Errorf("a refused request acted: left %v, %d members", left, members)
			}
			kv.mu.Lock()
			calls := kv.calls
			kv.mu.Unlock()
			if calls != 0 {
				t.Errorf("refused writes reached the store: %d calls", calls)
			}
		})
	}
}

func TestCrossOriginAllowed(t *testing.T) {
	srv, _, adm, m := newOpenAPI(t, routesAll)
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		want         int
	}{
		{http.MethodPut, "/v1/kv/k", nil, http.StatusNoContent}, // curl, the CLI, client libraries
		{http.MethodPut, "/v1/kv/k", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusNoContent},
		{http.MethodPut, "/v1/kv/k", map[string]string{"Sec-Fetch-Site": "none"}, http.StatusNoContent}, // typed by the user
		{http.MethodPut, "/v1/kv/k", map[string]string{"Origin": srv.URL}, http.StatusNoContent},
		{http.MethodDelete, "/v1/kv/k", map[string]string{"Origin": srv.URL}, http.StatusNoContent},
		// Reading changes nothing; the browser keeps another site from
		// reading the answer.
		{http.MethodGet, "/v1/members", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusOK},
		{http.MethodPost, "/v1/leave", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL}, http.StatusOK},
	} {
		status, _, b := do(t, tc.method, srv.URL+tc.path, []byte("v"), tc.hdr)
		if status != tc.want {
			t.Errorf("%s %s with %v: %d %s, want %d", tc.method, tc.path, tc.hdr, status, b, tc.want)
		}
	}
	adm.mu.Lock()
	defer adm.mu.Unlock()
	if !adm.left {
		t.Error("the same-origin leave did not reach the node")
	}
	if got := refusedCount(t, m, "http", refuseCrossSite); got != 0 {
		t.Errorf("refused{http,cross_site} = %v, want 0", got)
	}
}

// Every /v1/kv/ answer forbids content sniffing and, opened as a page,
// runs nothing: stored bytes share an origin with the console.
func TestKVAnswerHeaders(t *testing.T) {
	srv, _, _, _ := newOpenAPI(t, routesAll)
	if status, _, b := do(t, http.MethodPut, srv.URL+"/v1/kv/page", []byte("<script>alert(1)</script>"), nil); status != http.StatusNoContent {
		t.Fatalf("PUT: %d %s", status, b)
	}
	for _, path := range []string{"/v1/kv/page", "/v1/kv/missing"} {
		_, h, _ := do(t, http.MethodGet, srv.URL+path, nil, nil)
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", path, got)
		}
		if got := h.Get("Content-Security-Policy"); got != "sandbox; default-src 'none'" {
			t.Errorf("GET %s: Content-Security-Policy %q", path, got)
		}
	}
}
