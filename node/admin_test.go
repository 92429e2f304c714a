package node

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/client"
)

func TestAdminRoutes(t *testing.T) {
	srv, _, adm, _ := newTestAPI(t)
	tests := []struct {
		name, method, path string
		code               int
		body               string // expected JSON, compared after decoding
	}{
		{"stats", "GET", "/v1/stats", 200, `{"node":"n1","keys":5,"bytes":50,"dropped_partitions":0}`},
		{"ring", "GET", "/v1/ring", 200, jsonOf(t, client.Ring{Nodes: []client.RingNode{{Node: "n1"}, {Node: "n2"}}})},
		{"ring key", "GET", "/v1/ring?key=a/b", 200, `{"partition":3,"replicas":["n1","n2"],"fallbacks":[]}`},
		{"ring empty key", "GET", "/v1/ring?key=", 400, `{"error":"key must not be empty"}`},
		{"what-if add", "GET", "/v1/ring?what_if=add:n9", 200, jsonOf(t, client.WhatIf{Op: "add", Node: "n9"})},
		{"what-if remove unknown", "GET", "/v1/ring?what_if=remove:n9", 404, `{"error":"node: not found: n9"}`},
		{"what-if bad", "GET", "/v1/ring?what_if=grow:n9", 400, `{"error":"node: bad request: what_if must be add:NAME or remove:NAME, got \"grow:n9\""}`},
		{"what-if and key", "GET", "/v1/ring?what_if=add:x&key=k", 400, `{"error":"give either key or what_if, not both"}`},
		{"what-if zone without add", "GET", "/v1/ring?what_if=remove:n2&zone=z1", 400, `{"error":"zone goes with what_if=add:NAME only"}`},
		{"what-if bad zone", "GET", "/v1/ring?what_if=add:n9&zone=a/b", 400, `{"error":"ring: invalid zone: \"a/b\" contains '/'"}`},
		{"remove self", "POST", "/v1/remove/n1", 400, `{"error":"node: bad request: cannot remove self"}`},
		{"remove unknown", "POST", "/v1/remove/zz", 404, `{"error":"node: not found: unknown node \"zz\""}`},
		{"remove", "POST", "/v1/remove/n2", 200, `{"ok":true,"message":"n2 removed from the ring"}`},
		{"leave", "POST", "/v1/leave", 200, `{"ok":true,"message":"this node is leaving: it hands its partitions to their new replicas, then leaves the ring and stops"}`},
		{"leave by GET", "GET", "/v1/leave", 405, ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := do(t, tc.method, srv.URL+tc.path, nil, nil)
			if code != tc.code {
				t.Fatalf("status %d (%s), want %d", code, body, tc.code)
			}
			if tc.body == "" {
				return
			}
			var got, want any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if err := json.Unmarshal([]byte(tc.body), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("body (-want +got):\n%s", diff)
			}
		})
	}
	if !adm.left || adm.members["n2"].Status != "removed" {
		t.Fatalf("admin actions not applied: left=%v n2=%+v", adm.left, adm.members["n2"])
	}
	var ms []client.Member
	_, _, body := do(t, "GET", srv.URL+"/v1/members", nil, nil)
	if err := json.Unmarshal(body, &ms); err != nil || len(ms) != 2 || ms[0].Name != "n1" || ms[1].Name != "n2" {
		t.Fatalf("members %s: %v", body, err)
	}
	_, _, metrics := do(t, "GET", srv.URL+"/metrics", nil, nil)
	if !strings.Contains(string(metrics), metricRequests+`{op="remove",proto="http",status="404"} 1`) {
		t.Fatalf("admin requests not counted:\n%s", metrics)
	}
}

// jsonOf is v as the admin routes write it.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseWhatIf(t *testing.T) {
	for _, tc := range []struct {
		in, op, name string
		ok           bool
	}{
		{"add:n4", "add", "n4", true},
		{"remove:n1", "remove", "n1", true},
		{"add:a:b", "add", "a:b", true},
		{"add:", "", "", false},
		{"add", "", "", false},
		{"drop:n1", "", "", false},
		{"", "", "", false},
	} {
		op, name, err := parseWhatIf(tc.in)
		if (err == nil) != tc.ok || op != tc.op || name != tc.name {
			t.Errorf("parseWhatIf(%q) = %q %q %v", tc.in, op, name, err)
		}
	}
}
