package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
)

// fakeNode is an in-memory stand-in for a node's HTTP API, with the status
// codes and bodies docs/http-api.md documents. Keys named "sib" answer with
// siblings and "down" with a quorum failure, so every branch of the CLI is
// reachable without a cluster.
type fakeNode struct {
	mu       sync.Mutex // guards data, requests
	data     map[string][]byte
	requests []string // "METHOD path?query ctx=..." of each request
	seq      int
}

func newFakeNode(t *testing.T) (*fakeNode, string) {
	f := &fakeNode{data: map[string][]byte{}}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv.Listener.Addr().String()
}

func (f *fakeNode) handler() http.Handler {
	mux := http.NewServeMux()
	writeErr := func(w http.ResponseWriter, status int, body client.ErrorBody) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/v1/kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests = append(f.requests, fmt.Sprintf("%s %s?%s ctx=%s", r.Method, key, r.URL.RawQuery, r.Header.Get(client.ContextHeader)))
		if q := r.URL.Query().Get("w") + r.URL.Query().Get("r"); q == "lots" {
			writeErr(w, http.StatusBadRequest, client.ErrorBody{Error: `bad quorum "lots": must be one, quorum, all or 1..3`})
			return
		}
		if key == "down" {
			writeErr(w, http.StatusServiceUnavailable, client.ErrorBody{
				Error: "quorum not met: need 2 replicas, got 1", Need: 2, Got: ptr(1),
				Failures: map[string]string{"n3": "connection refused", "n2": "timeout"},
			})
			return
		}
		f.seq++
		ctxt := fmt.Sprintf("ctx-%d", f.seq)
		switch r.Method {
		case http.MethodPut:
			if key == "sib" {
				writeSiblings(w)
				return
			}
			v, _ := io.ReadAll(r.Body)
			if len(v) > 16 {
				writeErr(w, http.StatusRequestEntityTooLarge, client.ErrorBody{Error: "value is 17 bytes; limits.max_value_bytes is 16"})
				return
			}
			f.data[key] = v
			w.Header().Set(client.ContextHeader, ctxt)
			w.WriteHeader(http.StatusNoContent)
		case http.MethodDelete:
			delete(f.data, key)
			w.Header().Set(client.ContextHeader, ctxt)
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			if key == "sib" {
				writeSiblings(w)
				return
			}
			v, ok := f.data[key]
			w.Header().Set(client.ContextHeader, ctxt)
			if !ok {
				writeErr(w, http.StatusNotFound, client.ErrorBody{Error: "not found"})
				return
			}
			_, _ = w.Write(v)
		}
	})
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, []client.Member{
			{Name: "n2", HTTP: "127.0.0.1:8002", RESP: "127.0.0.1:6381", RPC: "127.0.0.1:7002", Gossip: "127.0.0.1:9002", Liveness: "dead", Status: "joined", PendingHints: 3, PendingHintBytes: 2048},
			{Name: "n1", HTTP: "127.0.0.1:8001", RESP: "127.0.0.1:6380", RPC: "127.0.0.1:7001", Gossip: "127.0.0.1:9001", Liveness: "alive", Status: "joined"},
		})
	})
	mux.HandleFunc("GET /v1/ring", func(w http.ResponseWriter, r *http.Request) {
		switch q := r.URL.Query(); {
		case q.Get("key") != "":
			writeJSON(w, client.KeyPlacement{Partition: 17, Replicas: []string{"n2", "n3", "n1"}, Fallbacks: []string{}})
		case q.Get("what_if") == "add:n4":
			moves := make([]client.PartitionMove, 12)
			for i := range moves {
				moves[i] = client.PartitionMove{Partition: i, Before: []string{"n1", "n2"}, After: []string{"n4", "n2"}, Added: []string{"n4"}, Dropped: []string{"n1"}}
			}
			writeJSON(w, client.WhatIf{Op: "add", Node: "n4", MembersBefore: 3, MembersAfter: 4, ChangedPartitions: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
				Moves: moves, TotalSlots: 100, MovedSlots: 25, MovedFraction: 0.25, OptimalFraction: 0.25, HasBytes: true, MovedBytes: 1 << 20,
				Shares: []client.ShareChange{{Node: "n4", OwnedAfter: 3, ReplicatedAfter: 25, ShareAfter: 0.25}}})
		case q.Get("what_if") != "":
			writeErr(w, http.StatusBadRequest, client.ErrorBody{Error: "ring: unknown node: " + strings.TrimPrefix(q.Get("what_if"), "remove:")})
		default:
			writeJSON(w, client.Ring{Partitions: 7, ReplicationFactor: 3, Replicas: 2, Degraded: true, Fingerprint: "00ff", Nodes: []client.RingNode{
				{Node: "n1", Owned: 4, Replicated: 7, KeySpaceShare: 4.0 / 7, ReplicaShare: 0.5, HasStats: true, Keys: 10, Bytes: 4096},
				{Node: "n2", Owned: 3, Replicated: 7, KeySpaceShare: 3.0 / 7, ReplicaShare: 0.5},
			}})
		}
	})
	mux.HandleFunc("POST /v1/leave", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, client.OKBody{OK: true, Message: "n1 is leaving; handing off 340 partitions"})
	})
	mux.HandleFunc("POST /v1/remove/{node}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("node") != "n3" {
			writeErr(w, http.StatusNotFound, client.ErrorBody{Error: "no member " + r.PathValue("node")})
			return
		}
		writeJSON(w, client.OKBody{OK: true})
	})
	return mux
}

// runCLI runs one command line in-process and returns its exit code and
// output streams.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestClientCommands(t *testing.T) {
	f, addr := newFakeNode(t)
	f.data["hello"] = []byte("world")
	f.data["bin"] = []byte{0, 1, 2}
	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantCode   int
		wantOut    string // exact stdout, unless wantOutHas is set
		wantOutHas []string
		wantErrHas []string
	}{
		{name: "get value", args: []string{"get", "hello"}, wantOut: "world\n", wantErrHas: []string{"context: ctx-"}},
		{name: "get binary is byte exact", args: []string{"get", "bin"}, wantOut: "\x00\x01\x02"},
		{name: "get missing", args: []string{"get", "nope"}, wantCode: 1, wantErrHas: []string{"error: not found", "context: ctx-"}},
		{name: "get siblings", args: []string{"get", "sib"}, wantOutHas: []string{"2 siblings", "n1:4", "left", `"\xff\x00"`, "context: sibctx"}},
		{name: "get json", args: []string{"get", "hello", "--json"}, wantOutHas: []string{`"found": true`, `"value": "d29ybGQ="`}},
		{name: "get json missing", args: []string{"get", "nope", "--json"}, wantCode: 1, wantOutHas: []string{`"found": false`}},
		{name: "get json siblings", args: []string{"get", "sib", "--json"}, wantOutHas: []string{`"dot": "n2:7"`, `"context": "sibctx"`}},
		{name: "put", args: []string{"put", "k", "v", "--w", "all", "--context", "abc"}, wantOutHas: []string{"OK", "context: ctx-"}},
		{name: "put stdin", stdin: "from stdin", args: []string{"put", "s", "-"}, wantOutHas: []string{"OK"}},
		{name: "put too large", args: []string{"put", "k", strings.Repeat("x", 17)}, wantCode: 1, wantErrHas: []string{"error: value is 17 bytes; limits.max_value_bytes is 16"}},
		{name: "put leaving siblings", args: []string{"put", "sib", "v", "--context", "abc"}, wantOutHas: []string{"OK\n2 siblings", "n1:4", "left", "context: sibctx"}},
		{name: "put json siblings", args: []string{"put", "sib", "v", "--json"}, wantOutHas: []string{`"ok": true`, `"dot": "n2:7"`, `"context": "sibctx"`}},
		{name: "put json", args: []string{"put", "k", "v", "--json"}, wantOutHas: []string{`"ok": true`, `"context": "ctx-`}},
		{name: "bad quorum", args: []string{"put", "k", "v", "--w", "lots"}, wantCode: 1, wantErrHas: []string{`error: bad quorum "lots"`}},
		{name: "quorum failure", args: []string{"get", "down", "--r", "quorum"}, wantCode: 1, wantErrHas: []string{"error: quorum not met: need 2 replicas, got 1; n2: timeout; n3: connection refused"}},
		{name: "delete", args: []string{"delete", "hello"}, wantOutHas: []string{"OK"}},
		{name: "members", args: []string{"members"}, wantOutHas: []string{"NAME", "n1", "alive", "n2", "dead", "3 (2.0 KiB)"}},
		{name: "members json", args: []string{"members", "--json"}, wantOutHas: []string{`"liveness": "dead"`}},
		{name: "ring", args: []string{"ring"}, wantOutHas: []string{"partitions=7", "DEGRADED", "57.1%", "4.0 KiB", "total"}},
		{name: "ring json", args: []string{"ring", "--json"}, wantOutHas: []string{`"partitions_owned": 4`}},
		{name: "ring key", args: []string{"ring", "--key", "hello"}, wantOut: "key:       hello\npartition: 17\nreplicas:  n2 n3 n1\nfallbacks: (none)\n"},
		{name: "ring what-if colon", args: []string{"ring", "--what-if", "add:n4"}, wantOutHas: []string{"what if add n4: 3 -> 4 members", "25 of 100 (25.0%", "about 1.0 MiB", "0 -> 3", "partition 0: n1 n2 -> n4 n2 (gains n4; drops n1)", "and 2 more partitions"}},
		{name: "ring what-if two words", args: []string{"ring", "--what-if", "add", "n4"}, wantOutHas: []string{"what if add n4"}},
		{name: "ring what-if server error", args: []string{"ring", "--what-if", "remove:n9"}, wantCode: 1, wantErrHas: []string{"error: ring: unknown node: n9"}},
		{name: "ring what-if bad op", args: []string{"ring", "--what-if", "grow:n4"}, wantCode: 2, wantErrHas: []string{"add or remove"}},
		{name: "ring zone without add", args: []string{"ring", "--what-if", "remove:n2", "--zone", "z1"}, wantCode: 2, wantErrHas: []string{"--zone goes with --what-if add NAME only"}},
		{name: "ring stray argument", args: []string{"ring", "n4"}, wantCode: 2, wantErrHas: []string{"takes no arguments"}},
		{name: "leave", args: []string{"leave", "--no-wait"}, wantOut: "OK: n1 is leaving; handing off 340 partitions\n"},
		{name: "remove", args: []string{"remove", "n3"}, wantOut: "OK\n"},
		{name: "remove unknown", args: []string{"remove", "n9"}, wantCode: 1, wantErrHas: []string{"error: no member n9"}},
		{name: "missing argument", args: []string{"get"}, wantCode: 2, wantErrHas: []string{"get takes KEY"}},
		{name: "unknown flag", args: []string{"get", "k", "--bogus"}, wantCode: 2, wantErrHas: []string{"unknown flag: --bogus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args[0] != "version" {
				args = append(append([]string{}, args...), "--node", addr)
			}
			code, out, errOut := runCLI(t, tt.stdin, args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tt.wantCode, errOut)
			}
			if tt.wantOutHas == nil && out != tt.wantOut {
				t.Errorf("stdout = %q, want %q", out, tt.wantOut)
			}
			for _, w := range tt.wantOutHas {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantErrHas {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := string(f.data["s"]); got != "from stdin" {
		t.Errorf("put - stored %q, want the stdin bytes", got)
	}
	if _, ok := f.data["hello"]; ok {
		t.Error("delete did not reach the node")
	}
	var sawPut bool
	for _, r := range f.requests {
		if strings.HasPrefix(r, "PUT k?w=all ctx=abc") {
			sawPut = true
		}
	}
	if !sawPut {
		t.Errorf("no request carried ?w=all and the context: %q", f.requests)
	}
}

// TestClientKeyEscaping checks that keys with slashes, spaces and non-ASCII
// bytes reach the node as one path segment, unchanged.
func TestClientKeyEscaping(t *testing.T) {
	f, addr := newFakeNode(t)
	for _, key := range []string{"a/b", "with space", "ключ", "q?x=1#frag", "%2F"} {
		if code, _, errOut := runCLI(t, "", "put", key, "v", "--node", addr); code != 0 {
			t.Fatalf("put %q: %s", key, errOut)
		}
		f.mu.Lock()
		_, ok := f.data[key]
		f.mu.Unlock()
		if !ok {
			t.Errorf("key %q did not arrive intact; requests %q", key, f.requests)
		}
	}
}

func TestClientUnreachableNode(t *testing.T) {
	addr := testkit.RefusedAddr(t)
	code, _, errOut := runCLI(t, "", "get", "k", "--node", addr)
	if code != 1 || !strings.Contains(errOut, "error: node "+addr) || !strings.Contains(errOut, "refused") {
		t.Errorf("code %d stderr %q, want an error naming the node and the refusal", code, errOut)
	}
}

func TestClientNonAPIAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	code, _, errOut := runCLI(t, "", "members", "--node", srv.URL)
	if code != 1 || !strings.Contains(errOut, "error: HTTP 502 Bad Gateway: upstream exploded") {
		t.Errorf("code %d stderr %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "ringkv ") {
		t.Errorf("version: code %d out %q", code, out)
	}
	code, out, _ = runCLI(t, "", "version", "--json")
	var v buildVersion
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Go == "" || v.Version == "" {
		t.Errorf("version --json: code %d out %q", code, out)
	}
}

func TestParseWhatIf(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"add:n4", "add:n4", true},
		{"remove:n1", "remove:n1", true},
		{"add", "", false},
		{"add:", "", false},
		{"move:n1", "", false},
		{"add:a b", "", false},
	}
	for _, tt := range tests {
		got, err := parseWhatIf(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseWhatIf(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 1 << 30: "1.0 GiB", 5 << 40: "5.0 TiB"} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestDisplayValue(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                 "plain",
		"":                      `""`,
		"tab\there":             `"tab\there"`,
		strings.Repeat("a", 81): strings.Repeat("a", 80) + "... (81 bytes)",
	} {
		if got := displayValue([]byte(in)); got != want {
			t.Errorf("displayValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// writeSiblings answers 300 with two siblings, as a node does for a GET of
// a key with concurrent versions or a write that leaves them.
func writeSiblings(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMultipleChoices)
	_ = json.NewEncoder(w).Encode(client.SiblingsBody{
		Siblings: []client.Sibling{
			{Value: []byte("left"), WallTime: "2025-01-01T00:00:00Z", Dot: "n1:4"},
			{Value: []byte{0xff, 0}, WallTime: "2025-01-01T00:00:01Z", Dot: "n2:7"},
		},
		Context: "sibctx",
	})
}

// TestClientDoesNotFollowRedirects: a put answered with a redirect (an
// http-to-https ingress, say) fails; followed as a GET, its 200 would read
// as the value stored.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.Redirect(w, r, "/moved", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	code, _, errOut := runCLI(t, "", "put", "k", "v", "--node", srv.URL)
	if code != 1 || !strings.Contains(errOut, `Location "/moved"`) {
		t.Errorf("code %d stderr %q, want exit 1 and an error naming the Location", code, errOut)
	}
}
