package client_test

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ringkv/ringkv/client"
)

// TestBasePathKeepsEscapes: a node address's prefix reaches the node as
// written, %25 and %2F included.
func TestBasePathKeepsEscapes(t *testing.T) {
	got := make(chan string, 1)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.EscapedPath()
		_, _ = w.Write([]byte("v"))
	})
	c := newClient(t, client.Config{Nodes: []string{srv.URL + "/a%25b%2Fc/"}})
	if _, err := c.Get(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != "/a%25b%2Fc/v1/kv/k" {
		t.Errorf("path %q, want /a%%25b%%2Fc/v1/kv/k", p)
	}
}

func TestEmptyKeyRefused(t *testing.T) {
	srv, n := server(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	c := newClient(t, client.Config{Nodes: []string{srv.URL}})
	if _, err := c.Get(t.Context(), ""); err == nil {
		t.Error("Get of an empty key succeeded")
	}
	if _, err := c.Put(t.Context(), "", []byte("v")); err == nil {
		t.Error("Put of an empty key succeeded")
	}
	if _, err := c.Delete(t.Context(), ""); err == nil {
		t.Error("Delete of an empty key succeeded")
	}
	if n.Load() != 0 {
		t.Errorf("%d requests sent for an empty key", n.Load())
	}
}

// TestForeignErrorText: a non-ringkv answer's text is cut on a character
// boundary and its control characters do not reach a terminal.
func TestForeignErrorText(t *testing.T) {
	body := strings.Repeat("a", 199) + "é\x1b[2J" + strings.Repeat("b", 300)
	srv, _ := server(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(body))
	})
	_, err := newClient(t, client.Config{Nodes: []string{srv.URL}}).Put(t.Context(), "k", nil)
	if err == nil {
		t.Fatal("a 502 succeeded")
	}
	msg := err.Error()
	if !utf8.ValidString(msg) || !strings.HasSuffix(msg, strings.Repeat("a", 199)+"...") {
		t.Errorf("message %q: want valid UTF-8 cut before the split character", msg)
	}
	srv2, _ := server(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("bad\x1b[2Jgateway"))
	})
	_, err = newClient(t, client.Config{Nodes: []string{srv2.URL}}).Put(t.Context(), "k", nil)
	if err == nil || strings.ContainsRune(err.Error(), 0x1b) {
		t.Errorf("message %v: want the escape character replaced", err)
	}
}
