package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
)

// server is an httptest server that counts requests and answers with h.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func writeErr(w http.ResponseWriter, status int, b client.ErrorBody) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAgainstNode(t *testing.T) {
	addr, stop, err := startNode()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctx := t.Context()
	// The first address refuses connections: every request moves on to the
	// live node.
	c := newClient(t, client.Config{Nodes: []string{testkit.RefusedAddr(t), addr}})
	if _, err := c.Put(ctx, "a/b c", []byte("v1"), client.W(client.N(1))); err != nil {
		t.Fatal(err)
	}
	res, err := c.Get(ctx, "a/b c", client.R(client.All))
	if err != nil || !res.Found || string(res.Value) != "v1" || res.Context == "" {
		t.Fatalf("get: %+v, %v", res, err)
	}
	_, err = c.Get(ctx, "k", client.R("lots"))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Fatalf("bad quorum: %v, want a 400 *client.Error", err)
	}
	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 1 || ms[0].Name != "n1" || ms[0].Liveness != "alive" {
		t.Fatalf("members: %+v, %v", ms, err)
	}
	r, err := c.Ring(ctx)
	if err != nil || r.Partitions != 31 || len(r.Nodes) != 1 || r.Nodes[0].Owned != 31 {
		t.Fatalf("ring: %+v, %v", r, err)
	}
	kp, err := c.Placement(ctx, "a/b c")
	if err != nil || len(kp.Replicas) != 1 || kp.Replicas[0] != "n1" {
		t.Fatalf("placement: %+v, %v", kp, err)
	}
	wi, err := c.WhatIf(ctx, "add", "n2")
	if err != nil || wi.Op != "add" || wi.MembersAfter != 2 {
		t.Fatalf("what-if: %+v, %v", wi, err)
	}
	consoleCalls(ctx, t, c, addr)
	if _, err := c.Delete(ctx, "a/b c"); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Get(ctx, "a/b c"); err != nil || res.Found || res.Context == "" {
		t.Fatalf("after delete: %+v, %v", res, err)
	}
	v, err := c.Versions(ctx, "a/b c", client.R(client.All))
	if err != nil || len(v.Versions) != 1 || !v.Versions[0].Deleted || v.Context == "" {
		t.Fatalf("versions after delete: %+v, %v", v, err)
	}
}

// consoleCalls checks the calls the web console's routes answer, on a
// one-node ring at addr holding "a/b c" = v1.
func consoleCalls(ctx context.Context, t *testing.T, c *client.Client, addr string) {
	t.Helper()
	wz, err := c.WhatIfAddZone(ctx, "n2", "z2")
	if err != nil || wz.Op != "add" || wz.Node != "n2" || wz.Zone != "z2" || wz.MembersAfter != 2 {
		t.Fatalf("what-if in a zone: %+v, %v", wz, err)
	}
	var ce *client.Error
	if _, err := c.WhatIfAddZone(ctx, "n2", "a/b"); !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Fatalf("what-if in a bad zone: %v, want a 400 *client.Error", err)
	}
	p, err := c.Partitions(ctx)
	if err != nil || len(p.Partitions) != 31 || len(p.Members) != 1 || p.Fingerprint == "" {
		t.Fatalf("partitions: %+v, %v", p, err)
	}
	for i, reps := range p.Partitions {
		if len(reps) != 1 || reps[0] != "n1" {
			t.Fatalf("partition %d: replicas %v, want [n1]", i, reps)
		}
	}
	v, err := c.Versions(ctx, "a/b c")
	if err != nil || len(v.Versions) != 1 || string(v.Versions[0].Value) != "v1" || v.Versions[0].Deleted ||
		len(v.Placement.Replicas) != 1 || v.Context == "" {
		t.Fatalf("versions: %+v, %v", v, err)
	}
	// WhoAmI asks the first node only: c's first one is down.
	if _, err := c.WhoAmI(ctx); err == nil {
		t.Fatal("whoami moved on from the first node")
	}
	who, err := newClient(t, client.Config{Nodes: []string{addr}}).WhoAmI(ctx)
	if err != nil || who.Auth || who.Role != "admin" {
		t.Fatalf("whoami without tokens: %+v, %v", who, err)
	}
}

func TestRetries(t *testing.T) {
	unavailable := func(w http.ResponseWriter, _ *http.Request) {
		writeErr(w, http.StatusServiceUnavailable, client.ErrorBody{Error: "too few replicas up", Need: 2, Got: new(int), Unavailable: true, Reachable: 1})
	}
	notJoined := func(w http.ResponseWriter, _ *http.Request) {
		writeErr(w, http.StatusServiceUnavailable, client.ErrorBody{Error: "not joined yet: this node has not reached a seed", Got: new(int)})
	}
	quorumFailed := func(w http.ResponseWriter, _ *http.Request) {
		one := 1
		writeErr(w, http.StatusServiceUnavailable, client.ErrorBody{Error: "quorum not met", Need: 2, Got: &one})
	}
	hangUp := func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	ok := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(client.ContextHeader, "ctx")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("v"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	tests := []struct {
		name      string
		first     http.HandlerFunc
		method    string
		wantNext  bool // the request reached the second node
		wantError bool
	}{
		{"put after 503 that did nothing", unavailable, http.MethodPut, true, false},
		{"put after not joined", notJoined, http.MethodPut, true, false},
		{"put after quorum failure", quorumFailed, http.MethodPut, false, true},
		{"put after a hang-up", hangUp, http.MethodPut, false, true},
		{"get after a hang-up", hangUp, http.MethodGet, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, firstN := server(t, tt.first)
			second, secondN := server(t, ok)
			c := newClient(t, client.Config{Nodes: []string{first.URL, second.URL}})
			var err error
			if tt.method == http.MethodPut {
				_, err = c.Put(t.Context(), "k", []byte("v"))
			} else {
				_, err = c.Get(t.Context(), "k")
			}
			if (err != nil) != tt.wantError {
				t.Fatalf("err = %v, want error %v", err, tt.wantError)
			}
			if firstN.Load() != 1 || (secondN.Load() == 1) != tt.wantNext {
				t.Fatalf("requests: first %d, second %d; want the second asked: %v", firstN.Load(), secondN.Load(), tt.wantNext)
			}
		})
	}
}

func TestEveryNodeRefused(t *testing.T) {
	refuse := func(w http.ResponseWriter, _ *http.Request) {
		writeErr(w, http.StatusServiceUnavailable, client.ErrorBody{Error: "too few replicas up", Need: 2, Got: new(int), Unavailable: true, Reachable: 1})
	}
	a, _ := server(t, refuse)
	b, _ := server(t, refuse)
	c := newClient(t, client.Config{Nodes: []string{a.URL, b.URL}})
	_, err := c.Put(t.Context(), "k", nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable || !ce.Body.Unavailable {
		t.Fatalf("err = %v, want the 503", err)
	}
}

func TestLeaveStaysOnFirstNode(t *testing.T) {
	c := newClient(t, client.Config{Nodes: []string{testkit.RefusedAddr(t), testkit.RefusedAddr(t)}})
	if _, err := c.Leave(t.Context()); err == nil {
		t.Fatal("leave reached a node")
	}
	a, aN := server(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	b, bN := server(t, func(w http.ResponseWriter, _ *http.Request) {})
	c = newClient(t, client.Config{Nodes: []string{a.URL, b.URL}})
	if _, err := c.Leave(t.Context()); err == nil || aN.Load() != 1 || bN.Load() != 0 {
		t.Fatalf("leave: %v; requests %d, %d: only the first node may be asked", err, aN.Load(), bN.Load())
	}
}

func TestDeadlineFromContext(t *testing.T) {
	srv, _ := server(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := newClient(t, client.Config{Nodes: []string{srv.URL}})
	// The handler never answers: only the deadline ends the call, mid-request.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestTLSAndToken(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			writeErr(w, http.StatusUnauthorized, client.ErrorBody{Error: "missing token"})
			return
		}
		_, _ = w.Write([]byte("v"))
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	host := srv.Listener.Addr().String() // no scheme: TLS makes it https
	c := newClient(t, client.Config{Nodes: []string{host}, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Token: "s3cret"})
	if res, err := c.Get(t.Context(), "k"); err != nil || string(res.Value) != "v" {
		t.Fatalf("get over TLS: %+v, %v", res, err)
	}
	c = newClient(t, client.Config{Nodes: []string{host}, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	_, err := c.Get(t.Context(), "k")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Fatalf("without token: %v, want 401", err)
	}
}

func TestResponseBound(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(make([]byte, 100)) })
	c := newClient(t, client.Config{Nodes: []string{srv.URL}, MaxResponseBytes: 99})
	if _, err := c.Get(t.Context(), "k"); err == nil || !strings.Contains(err.Error(), "MaxResponseBytes") {
		t.Fatalf("an answer over the bound: %v, want an error naming Config.MaxResponseBytes", err)
	}
}

// TestDefaultBoundFitsSiblings: with a node's default limits (max_siblings
// 100, max_value_bytes 1 MiB) the largest sibling list, values in base64,
// fits the default bound, or such a key could never be read and resolved.
func TestDefaultBoundFitsSiblings(t *testing.T) {
	const siblings, value = 100, 1 << 20
	if need := siblings * base64.StdEncoding.EncodedLen(value); client.DefaultMaxResponseBytes < need+need/10 {
		t.Fatalf("DefaultMaxResponseBytes %d, need %d plus room for the JSON", client.DefaultMaxResponseBytes, need)
	}
}

func TestParseNode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"127.0.0.1:8001", "http://127.0.0.1:8001", true},
		{"http://h:1/", "http://h:1", true},
		{"https://h:1/prefix", "https://h:1/prefix", true},
		{"ftp://h:1", "", false},
		{"", "", false},
		{"http://", "", false},
	}
	for _, tt := range tests {
		u, err := client.ParseNode(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseNode(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err == nil && u.String() != tt.want {
			t.Errorf("ParseNode(%q) = %s, want %s", tt.in, u, tt.want)
		}
	}
	if _, err := client.New(client.Config{}); err == nil {
		t.Error("New without nodes succeeded")
	}
}

func TestErrorNamesEachFailureOnce(t *testing.T) {
	one, three := 1, 3
	tests := []struct {
		name string
		body client.ErrorBody
		want string
	}{
		{"server message names them", client.ErrorBody{Error: "get quorum not met: need 3, got 1; n3: dead", Need: three, Got: &one,
			Failures: map[string]string{"n3": "dead"}}, "get quorum not met: need 3, got 1; n3: dead"},
		{"server message does not", client.ErrorBody{Error: "quorum not met", Need: 2, Got: &one,
			Failures: map[string]string{"n2": "timeout"}}, "quorum not met (need 2, got 1); n2: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &client.Error{Status: 503, Body: tt.body}
			if got := e.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
