package node

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/httpclient"
	"github.com/ringkv/ringkv/ring"
	"github.com/ringkv/ringkv/vclock"
)

func TestConsoleFiles(t *testing.T) {
	srv, _, _, _ := newTestAPI(t)
	client := &http.Client{CheckRedirect: httpclient.NoRedirect}
	resp, err := client.Get(srv.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d to %q, want 301 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, tc := range []struct {
		path, wantType, wantText string
	}{
		{"/ui/", "text/html", `<script src="console.js"`},
		{"/ui/console.js", "text/javascript", "function "},
		{"/ui/console.css", "text/css", "{"},
	} {
		status, h, b := do(t, http.MethodGet, srv.URL+tc.path, nil, nil)
		if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), tc.wantType) {
			t.Fatalf("GET %s: %d %q, want 200 %s", tc.path, status, h.Get("Content-Type"), tc.wantType)
		}
		if !strings.Contains(string(b), tc.wantText) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.wantText)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
	}
	if status, _, _ := do(t, http.MethodGet, srv.URL+"/ui/missing.js", nil, nil); status != http.StatusNotFound {
		t.Errorf("GET /ui/missing.js: %d, want 404", status)
	}
}

func TestConsoleNotOnClientListener(t *testing.T) {
	srv, _ := newAuthAPI(t, routesClient)
	for _, path := range []string{"/ui/", "/v1/ring/partitions", "/v1/versions?key=k"} {
		if status, _, _ := do(t, http.MethodGet, srv.URL+path, nil, map[string]string{"Authorization": "Bearer " + tokAdmin}); status != http.StatusNotFound {
			t.Errorf("GET %s on the client listener: %d, want 404", path, status)
		}
	}
}

func TestRingPartitionsRoute(t *testing.T) {
	srv, _, _, _ := newTestAPI(t)
	status, _, b := do(t, http.MethodGet, srv.URL+"/v1/ring/partitions", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, b)
	}
	var got struct{ Partitions [][]string }
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"n1", "n2"}, {"n2", "n1"}}, got.Partitions); diff != "" {
		t.Errorf("partitions (-want +got):\n%s", diff)
	}
	if status, _, _ := do(t, http.MethodGet, srv.URL+"/v1/ring/partitions?x=1", nil, nil); status != http.StatusBadRequest {
		t.Errorf("with a query: %d, want 400", status)
	}
}

func TestPartitionsBody(t *testing.T) {
	cfg := ring.DefaultConfig()
	r, err := ring.New(cfg, []string{"a", "b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	got := partitionsBody(r)
	if len(got.Partitions) != cfg.Partitions {
		t.Fatalf("%d partitions, want %d", len(got.Partitions), cfg.Partitions)
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d"}, got.Members); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	for p, reps := range got.Partitions {
		if diff := cmp.Diff(r.Replicas(p), reps); diff != "" {
			t.Fatalf("partition %d (-ring +json):\n%s", p, diff)
		}
		if reps[0] != r.Owner(p) {
			t.Fatalf("partition %d: first replica %s, owner %s", p, reps[0], r.Owner(p))
		}
	}
}

func TestVersionsRoute(t *testing.T) {
	srv, kv, _, _ := newTestAPI(t)
	_, s := vclock.Mint(nil, "n1", vclock.Write{Value: []byte("one"), WallTime: 1e9})
	_, s2 := vclock.Mint(nil, "n2", vclock.Write{Value: []byte("two"), WallTime: 2e9})
	_, s3 := vclock.Mint(nil, "n3", vclock.Write{Tombstone: true, WallTime: 3e9})
	set := vclock.Merge(vclock.Merge(s, s2), s3)
	kv.inject("k/1", set)

	status, _, b := do(t, http.MethodGet, srv.URL+"/v1/versions?key=k%2F1", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, b)
	}
	var got client.Versions
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := []client.Version{
		{Sibling: client.Sibling{Value: []byte("one"), WallTime: "1970-01-01T00:00:01Z", Dot: "n1:1"}},
		{Sibling: client.Sibling{Value: []byte("two"), WallTime: "1970-01-01T00:00:02Z", Dot: "n2:1"}},
		{Sibling: client.Sibling{WallTime: "1970-01-01T00:00:03Z", Dot: "n3:1"}, Deleted: true},
	}
	if diff := cmp.Diff(want, got.Versions); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	c, err := vclock.DecodeContextString(got.Context)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range set {
		if !c.Covers(v.Dot) {
			t.Errorf("context %s does not cover %v", got.Context, v.Dot)
		}
	}
	wantPlace := client.KeyPlacement{Partition: len("k/1"), Replicas: []string{"n1", "n2"}, Fallbacks: []string{}}
	if diff := cmp.Diff(wantPlace, got.Placement); diff != "" {
		t.Errorf("placement (-want +got):\n%s", diff)
	}
}

func TestVersionsRouteErrors(t *testing.T) {
	srv, kv, _, _ := newTestAPI(t)
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"no key", "", http.StatusBadRequest},
		{"empty key", "?key=", http.StatusBadRequest},
		{"long key", "?key=" + strings.Repeat("k", testLimits.MaxKeyBytes+1), http.StatusBadRequest},
		{"bad r", "?key=k&r=9", http.StatusBadRequest},
		{"unknown parameter", "?key=k&w=1", http.StatusBadRequest},
		{"key twice", "?key=a&key=b", http.StatusBadRequest},
		{"absent key", "?key=nothing", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := do(t, http.MethodGet, srv.URL+"/v1/versions"+tc.query, nil, nil)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, b)
			}
			if tc.want != http.StatusOK && decodeError(t, b).Error == "" {
				t.Errorf("no error text: %s", b)
			}
		})
	}
	kv.setFail(&quorumFailure{Op: "get", Need: 2, Got: 1})
	if status, _, b := do(t, http.MethodGet, srv.URL+"/v1/versions?key=k", nil, nil); status != http.StatusServiceUnavailable {
		t.Errorf("quorum failure: %d, want 503: %s", status, b)
	}
	kv.setFail(errors.New("disk on fire"))
	if status, _, _ := do(t, http.MethodGet, srv.URL+"/v1/versions?key=k", nil, nil); status != http.StatusInternalServerError {
		t.Errorf("backend error: %d, want 500", status)
	}
}

func TestWhoAmI(t *testing.T) {
	srv, m := newAuthAPI(t, routesAll)
	want := map[string]float64{}
	for _, tc := range []struct {
		name, header string
		want         client.WhoAmI
		refused      string // the refusal counted, if any
	}{
		{"no token", "", client.WhoAmI{Auth: true, Role: "none"}, ""}, // the console's first load
		{"malformed", "Basic x", client.WhoAmI{Auth: true, Role: "none"}, refuseMalformed},
		{"unknown token", "Bearer nope", client.WhoAmI{Auth: true, Role: "none"}, refuseBadToken},
		{"read", "Bearer " + tokRead, client.WhoAmI{Auth: true, Role: "read", Name: "reader"}, ""},
		{"admin", "Bearer " + tokAdmin, client.WhoAmI{Auth: true, Role: "admin", Name: "root"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Authorization"] = tc.header
			}
			status, _, b := do(t, http.MethodGet, srv.URL+"/v1/whoami", nil, hdr)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, b)
			}
			var got client.WhoAmI
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
		if tc.refused != "" {
			want[tc.refused]++
		}
	}
	for _, reason := range refusalReasons {
		if got := refusedCount(t, m, "http", reason); got != want[reason] {
			t.Errorf("refused{http,%s} = %v, want %v", reason, got, want[reason])
		}
	}
	open, _, _, _ := newTestAPI(t) // no gate: no tokens asked
	_, _, b := do(t, http.MethodGet, open.URL+"/v1/whoami", nil, nil)
	var got client.WhoAmI
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(client.WhoAmI{Role: "admin"}, got); diff != "" {
		t.Errorf("without tokens (-want +got):\n%s", diff)
	}
}
