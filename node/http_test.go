package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

// newTestAPI serves an httpAPI over fakes.
func newTestAPI(t *testing.T) (*httptest.Server, *fakeKV, *fakeAdmin, *metrics) {
	t.Helper()
	kv := newFakeKV()
	adm := &fakeAdmin{self: "n1", members: map[string]client.Member{
		"n1": {Name: "n1", Liveness: "alive", Status: "joined"},
		"n2": {Name: "n2", Liveness: "alive", Status: "joined"},
	}}
	m := newMetrics(metricSources{})
	api := &httpAPI{kv: kv, admin: adm, metrics: m, limits: testLimits, n: 3, log: testkit.Logger(t)}
	srv := httptest.NewServer(api.handler())
	t.Cleanup(srv.Close)
	return srv, kv, adm, m
}

// do sends one request and returns status, headers and body.
func do(t *testing.T, method, url string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func decodeError(t *testing.T, b []byte) client.ErrorBody {
	t.Helper()
	var e client.ErrorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return e
}

func TestHTTPPutGetDelete(t *testing.T) {
	srv, _, _, _ := newTestAPI(t)
	url := srv.URL + "/v1/kv/k1"

	code, _, body := do(t, "GET", url, nil, nil)
	if code != 404 || decodeError(t, body).Error != "not found" {
		t.Fatalf("GET absent = %d %s, want 404 not found", code, body)
	}
	code, h, _ := do(t, "PUT", url, []byte("v1"), nil)
	if code != 204 || h.Get(client.ContextHeader) == "" {
		t.Fatalf("PUT = %d ctx %q, want 204 with a context", code, h.Get(client.ContextHeader))
	}
	code, h, body = do(t, "GET", url+"?r=one", nil, nil)
	if code != 200 || string(body) != "v1" || h.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET = %d %q %q", code, body, h.Get("Content-Type"))
	}
	// A blind overwrite supersedes: still one value.
	do(t, "PUT", url+"?w=all", []byte("v2"), nil)
	if code, _, body = do(t, "GET", url, nil, nil); code != 200 || string(body) != "v2" {
		t.Fatalf("GET after blind overwrite = %d %q, want 200 v2", code, body)
	}
	code, _, _ = do(t, "DELETE", url, nil, nil)
	if code != 204 {
		t.Fatalf("DELETE = %d", code)
	}
	code, h, body = do(t, "GET", url, nil, nil)
	if code != 404 || h.Get(client.ContextHeader) == "" {
		t.Fatalf("GET deleted = %d ctx %q %s, want 404 with the tombstone's context", code, h.Get(client.ContextHeader), body)
	}
	// Writing with the tombstone's context supersedes it causally.
	tomb := h.Get(client.ContextHeader)
	do(t, "PUT", url, []byte("v3"), map[string]string{client.ContextHeader: tomb})
	if code, _, body = do(t, "GET", url, nil, nil); code != 200 || string(body) != "v3" {
		t.Fatalf("GET after causal write = %d %q", code, body)
	}
	// HEAD answers the status without a body.
	if code, _, body = do(t, "HEAD", url, nil, nil); code != 200 || len(body) != 0 {
		t.Fatalf("HEAD = %d %q", code, body)
	}
}

func TestHTTPSiblings(t *testing.T) {
	srv, _, _, _ := newTestAPI(t)
	url := srv.URL + "/v1/kv/s"
	_, h, _ := do(t, "PUT", url, []byte("base"), nil)
	ctx := h.Get(client.ContextHeader)
	// Two writers with the same context: two siblings, neither lost.
	do(t, "PUT", url, []byte("a"), map[string]string{client.ContextHeader: ctx})
	do(t, "PUT", url, []byte("b"), map[string]string{client.ContextHeader: ctx})
	code, h, body := do(t, "GET", url, nil, nil)
	if code != http.StatusMultipleChoices {
		t.Fatalf("GET = %d %s, want 300", code, body)
	}
	var sb client.SiblingsBody
	if err := json.Unmarshal(body, &sb); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sb.Siblings {
		got = append(got, string(s.Value))
		if !strings.HasPrefix(s.Dot, "fake:") || s.WallTime == "" {
			t.Errorf("sibling %+v lacks dot or wall time", s)
		}
	}
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Fatalf("siblings (-want +got):\n%s", diff)
	}
	if sb.Context == "" || sb.Context != h.Get(client.ContextHeader) {
		t.Fatalf("body context %q, header %q", sb.Context, h.Get(client.ContextHeader))
	}
	// The siblings' context resolves them.
	do(t, "PUT", url, []byte("merged"), map[string]string{client.ContextHeader: sb.Context})
	if code, _, body = do(t, "GET", url, nil, nil); code != 200 || string(body) != "merged" {
		t.Fatalf("GET after resolve = %d %q", code, body)
	}
}

func TestHTTPBadRequests(t *testing.T) {
	srv, kv, _, _ := newTestAPI(t)
	long := strings.Repeat("k", testLimits.MaxKeyBytes+1)
	tests := []struct {
		name, method, path string
		body               []byte
		hdr                map[string]string
		code               int
		mention            string
	}{
		{"empty key", "PUT", "/v1/kv/", []byte("v"), nil, 400, "empty"},
		{"long key", "PUT", "/v1/kv/" + long, []byte("v"), nil, 400, "limits.max_key_bytes"},
		{"long key get", "GET", "/v1/kv/" + long, nil, nil, 400, "limits.max_key_bytes"},
		{"bad w", "PUT", "/v1/kv/k?w=most", []byte("v"), nil, 400, "w"},
		{"w above N", "PUT", "/v1/kv/k?w=4", []byte("v"), nil, 400, "cluster.replication"},
		{"bad r", "GET", "/v1/kv/k?r=0", nil, nil, 400, "r"},
		{"bad w delete", "DELETE", "/v1/kv/k?w=x", nil, nil, 400, "w"},
		{"bad context", "PUT", "/v1/kv/k", []byte("v"), map[string]string{client.ContextHeader: "!!!"}, 400, client.ContextHeader},
		{"garbage context", "PUT", "/v1/kv/k", []byte("v"), map[string]string{client.ContextHeader: "AAAA"}, 400, client.ContextHeader},
		{"value too large", "PUT", "/v1/kv/k", bytes.Repeat([]byte("x"), testLimits.MaxValueBytes+1), nil, 413, "limits.max_value_bytes"},
		{"body far too large", "PUT", "/v1/kv/k", bytes.Repeat([]byte("x"), testLimits.MaxValueBytes+bodyMargin+10), nil, 413, "limits.max_value_bytes"},
		{"method", "POST", "/v1/kv/k", []byte("v"), nil, 405, "not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := kv.callCount()
			code, _, body := do(t, tc.method, srv.URL+tc.path, tc.body, tc.hdr)
			if code != tc.code {
				t.Fatalf("status %d (%s), want %d", code, body, tc.code)
			}
			if e := decodeError(t, body); !strings.Contains(e.Error, tc.mention) {
				t.Fatalf("error %q does not mention %q", e.Error, tc.mention)
			}
			if kv.callCount() != before {
				t.Fatal("a refused request reached the backend")
			}
		})
	}
	// A value exactly at the limit is accepted, as is an empty one.
	for _, n := range []int{testLimits.MaxValueBytes, 0} {
		if code, _, body := do(t, "PUT", srv.URL+"/v1/kv/edge", bytes.Repeat([]byte("x"), n), nil); code != 204 {
			t.Fatalf("PUT %d bytes = %d %s", n, code, body)
		}
		if code, _, body := do(t, "GET", srv.URL+"/v1/kv/edge", nil, nil); code != 200 || len(body) != n {
			t.Fatalf("GET %d bytes = %d, %d bytes", n, code, len(body))
		}
	}
}

func TestHTTPKeysAreBytes(t *testing.T) {
	srv, kv, _, _ := newTestAPI(t)
	// Slashes, dots and spaces survive when percent-encoded; nothing is
	// redirected by path cleaning.
	for _, key := range []string{"a/b", "../x", "sp ace", "a%2Fb"} {
		enc := strings.NewReplacer("%", "%25", "/", "%2F", " ", "%20", ".", "%2E").Replace(key)
		if code, _, body := do(t, "PUT", srv.URL+"/v1/kv/"+enc, []byte(key), nil); code != 204 {
			t.Fatalf("PUT %q = %d %s", key, code, body)
		}
		if _, ok := kv.data[key]; !ok {
			t.Fatalf("key %q not stored under its decoded name (have %v)", key, kv.data)
		}
		if code, _, body := do(t, "GET", srv.URL+"/v1/kv/"+enc, nil, nil); code != 200 || string(body) != key {
			t.Fatalf("GET %q = %d %q", key, code, body)
		}
	}
}

func TestHTTPQuorumFailure(t *testing.T) {
	srv, kv, _, _ := newTestAPI(t)
	kv.setFail(fmt.Errorf("replica: %w", &quorumFailure{Op: "put", Need: 2, Got: 1, Failures: map[string]string{"n3": "dead"}}))
	code, _, body := do(t, "PUT", srv.URL+"/v1/kv/k", []byte("v"), nil)
	if code != 503 {
		t.Fatalf("status %d, want 503", code)
	}
	want := client.ErrorBody{Error: "put quorum not met: need 2, got 1; n3: dead", Need: 2, Got: ptr(1), Failures: map[string]string{"n3": "dead"}}
	if diff := cmp.Diff(want, decodeError(t, body)); diff != "" {
		t.Fatalf("body (-want +got):\n%s", diff)
	}
	kv.setFail(fmt.Errorf("%w: need 4 of 3", errBadQuorum))
	if code, _, _ := do(t, "GET", srv.URL+"/v1/kv/k", nil, nil); code != 400 {
		t.Fatalf("bad quorum from backend = %d, want 400", code)
	}
	kv.setFail(fmt.Errorf("disk on fire"))
	if code, _, _ := do(t, "DELETE", srv.URL+"/v1/kv/k", nil, nil); code != 500 {
		t.Fatalf("internal error = %d, want 500", code)
	}
	_, _, metricsBody := do(t, "GET", srv.URL+"/metrics", nil, nil)
	for _, want := range []string{
		metricQuorumFailures + `{op="put"} 1`,
		metricRequests + `{op="put",proto="http",status="503"} 1`,
	} {
		if !strings.Contains(string(metricsBody), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestHTTPContextRoundTrip(t *testing.T) {
	// The header a client gets back decodes to the set's context.
	srv, kv, _, _ := newTestAPI(t)
	_, h, _ := do(t, "PUT", srv.URL+"/v1/kv/c", []byte("v"), nil)
	got, err := vclock.DecodeContextString(h.Get(client.ContextHeader))
	if err != nil {
		t.Fatal(err)
	}
	if want := kv.data["c"].Context(); !want.Equal(got) {
		t.Fatalf("context %v, want %v", got, want)
	}
}

func ptr[T any](v T) *T { return &v }
