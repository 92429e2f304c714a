package node

import (
	"strings"
	"testing"

	"github.com/ringkv/ringkv/client"
)

// One parser reads every quorum: the query parameters accept what the
// config accepts (any case), and a parameter the route does not know is a
// 400 instead of being ignored.
func TestHTTPQueryParameters(t *testing.T) {
	srv, kv, _, _ := newTestAPI(t)
	if code, _, body := do(t, "PUT", srv.URL+"/v1/kv/k", []byte("v"), nil); code != 204 {
		t.Fatalf("PUT = %d %s", code, body)
	}
	accepted := []struct{ method, path string }{
		{"GET", "/v1/kv/k?r=QUORUM"},
		{"GET", "/v1/kv/k?r=All"},
		{"GET", "/v1/kv/k?r=3"},
		{"GET", "/v1/kv/k?r="},
		{"PUT", "/v1/kv/k?w=ONE"},
		{"DELETE", "/v1/kv/k?w=Quorum"},
		{"GET", "/v1/ring?key=k"},
	}
	for _, tc := range accepted {
		if code, _, body := do(t, tc.method, srv.URL+tc.path, []byte("v"), nil); code >= 300 && code != 404 {
			t.Errorf("%s %s = %d %s, want it accepted", tc.method, tc.path, code, body)
		}
	}
	refused := []struct{ name, method, path, mention string }{
		{"upper-case name", "GET", "/v1/kv/k?R=all", `"R"`},
		{"w on a read", "GET", "/v1/kv/k?w=all", `"w"`},
		{"r on a write", "PUT", "/v1/kv/k?r=all", `"r"`},
		{"unknown on delete", "DELETE", "/v1/kv/k?force=1", `"force"`},
		{"repeated", "GET", "/v1/kv/k?r=one&r=all", `"r"`},
		{"bad escape", "GET", "/v1/kv/k?r=%zz", "query"},
		{"zero", "GET", "/v1/kv/k?r=0", "r"},
		{"above N", "PUT", "/v1/kv/k?w=4", "cluster.replication"},
		{"unknown on ring", "GET", "/v1/ring?keys=k", `"keys"`},
		{"any on members", "GET", "/v1/members?verbose=1", `"verbose"`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before := kv.callCount()
			code, _, body := do(t, tc.method, srv.URL+tc.path, []byte("v"), nil)
			if code != 400 {
				t.Fatalf("status %d (%s), want 400", code, body)
			}
			if e := decodeError(t, body); !strings.Contains(e.Error, tc.mention) {
				t.Fatalf("error %q does not mention %s", e.Error, tc.mention)
			}
			if kv.callCount() != before {
				t.Fatal("a refused request reached the backend")
			}
		})
	}
}

// The config accepts the same spellings as the query parameters.
func TestConfigQuorumSpellings(t *testing.T) {
	for _, q := range []string{"one", "QUORUM", "All", "2"} {
		cfg := DefaultConfig()
		cfg.Quorum.R, cfg.Quorum.W = q, q
		if err := cfg.Validate(); err != nil {
			t.Errorf("quorum %q: %v", q, err)
		}
	}
	for _, q := range []string{"most", "0", "4", "-1", "1.5"} {
		cfg := DefaultConfig()
		cfg.Quorum.W = q
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "quorum.w") {
			t.Errorf("quorum %q: err %v, want one naming quorum.w", q, err)
		}
	}
}

// An empty context header is no context: a blind write that supersedes
// what is held, not one more sibling per request.
func TestHTTPEmptyContextHeaderIsBlind(t *testing.T) {
	srv, kv, _, _ := newTestAPI(t)
	for i, v := range []string{"a", "b", "c"} {
		for _, hdr := range []string{"", "  "} {
			code, _, body := do(t, "PUT", srv.URL+"/v1/kv/e", []byte(v), map[string]string{client.ContextHeader: hdr})
			if code != 204 {
				t.Fatalf("PUT %d with header %q = %d %s", i, hdr, code, body)
			}
		}
	}
	kv.mu.Lock()
	n := len(kv.data["e"])
	kv.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d versions after blind writes with empty context headers, want 1", n)
	}
	if code, _, body := do(t, "GET", srv.URL+"/v1/kv/e", nil, nil); code != 200 || string(body) != "c" {
		t.Fatalf("GET = %d %q, want 200 c", code, body)
	}
	code, _, body := do(t, "DELETE", srv.URL+"/v1/kv/e", nil, map[string]string{client.ContextHeader: ""})
	if code != 204 {
		t.Fatalf("DELETE with an empty context = %d %s", code, body)
	}
	if code, _, _ := do(t, "GET", srv.URL+"/v1/kv/e", nil, nil); code != 404 {
		t.Fatalf("GET after blind DELETE = %d, want 404", code)
	}
}
