package node

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ringkv/ringkv/client"
)

// TestNodeAuthAndAdminListener runs two real nodes with tokens, the first
// with an admin listener: the client listener serves only keys and probes,
// the admin listener the rest, RESP asks for AUTH, and ring inspection
// shows both nodes' stats.
func TestNodeAuthAndAdminListener(t *testing.T) {
	c1 := testConfig(t, "n1")
	c1.Auth = testAuthConfig()
	c1.Listen.Admin = "127.0.0.1:0"
	n1 := startNode(t, c1)
	c2 := testConfig(t, "n2", n1.Addrs().Gossip)
	c2.Auth = testAuthConfig()
	n2 := startNode(t, c2)
	waitConverged(t, n1, n2)

	read := map[string]string{"Authorization": "Bearer " + tokRead}
	admin := map[string]string{"Authorization": "Bearer " + tokAdmin}
	rw := map[string]string{"Authorization": "Bearer " + tokRW}
	adminURL := "http://" + n1.Addrs().Admin
	for _, tc := range []struct {
		method, url string
		body        []byte
		hdr         map[string]string
		want        int
	}{
		{http.MethodPut, httpURL(n1, "/v1/kv/a"), []byte("1"), nil, http.StatusUnauthorized},
		{http.MethodPut, httpURL(n1, "/v1/kv/a"), []byte("1"), read, http.StatusForbidden},
		{http.MethodPut, httpURL(n1, "/v1/kv/a"), []byte("1"), rw, http.StatusNoContent},
		{http.MethodGet, httpURL(n1, "/v1/kv/a"), nil, read, http.StatusOK},
		{http.MethodGet, httpURL(n1, "/healthz"), nil, nil, http.StatusOK},
		{http.MethodGet, httpURL(n1, "/v1/members"), nil, admin, http.StatusNotFound},
		{http.MethodGet, httpURL(n1, "/metrics"), nil, admin, http.StatusNotFound},
		{http.MethodGet, adminURL + "/metrics", nil, nil, http.StatusOK},
		{http.MethodGet, adminURL + "/v1/members", nil, nil, http.StatusUnauthorized},
		{http.MethodGet, adminURL + "/v1/members", nil, read, http.StatusOK},
		{http.MethodPost, adminURL + "/v1/leave", nil, rw, http.StatusForbidden},
		{http.MethodGet, httpURL(n2, "/metrics"), nil, nil, http.StatusUnauthorized},
		{http.MethodGet, httpURL(n2, "/metrics"), nil, read, http.StatusOK},
		{http.MethodPost, httpURL(n2, "/v1/remove/n1"), nil, rw, http.StatusForbidden},
	} {
		if code, _, b := do(t, tc.method, tc.url, tc.body, tc.hdr); code != tc.want {
			t.Errorf("%s %s with %v: %d, want %d; %s", tc.method, tc.url, tc.hdr, code, tc.want, b)
		}
	}

	for _, url := range []string{adminURL + "/v1/ring", httpURL(n2, "/v1/ring")} {
		code, _, b := do(t, http.MethodGet, url, nil, read)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", url, code, b)
		}
		var in client.Ring
		if err := json.Unmarshal(b, &in); err != nil {
			t.Fatal(err)
		}
		if len(in.Nodes) != 2 {
			t.Fatalf("GET %s: %d nodes", url, len(in.Nodes))
		}
		for _, ni := range in.Nodes {
			if !ni.HasStats {
				t.Errorf("GET %s: node %s has no stats", url, ni.Node)
			}
		}
	}

	c := dialRESP(t, n2.Addrs().RESP)
	if r := c.do(t, "GET", "a"); r != respError(respNoAuth) {
		t.Errorf("GET before AUTH: %v", r)
	}
	if r := c.do(t, "AUTH", "reader", tokRead); r != "OK" {
		t.Fatalf("AUTH: %v", r)
	}
	if r, ok := c.do(t, "GET", "a").([]byte); !ok || string(r) != "1" {
		t.Errorf("GET after AUTH: %v", r)
	}
}
