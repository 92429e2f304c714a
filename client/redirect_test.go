package client_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/client"
)

// redirector answers a write on /v1/kv/ with status, pointing at /moved,
// and a GET of /moved with a 200: a client that followed the redirect
// would read that 200 as the write done.
func redirector(t *testing.T, status int) (string, func() int32) {
	srv, n := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		w.Header().Set("Location", "/moved")
		w.WriteHeader(status)
	})
	return srv.URL, n.Load
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		addr, requests := redirector(t, status)
		own := &http.Client{}
		for _, c := range []*client.Client{
			newClient(t, client.Config{Nodes: []string{addr}}),
			newClient(t, client.Config{Nodes: []string{addr}, HTTPClient: own}),
		} {
			before := requests()
			_, err := c.Put(t.Context(), "k", []byte("v"))
			if err == nil || !strings.Contains(err.Error(), `Location "/moved"`) {
				t.Errorf("PUT answered %d: err %v, want an error naming the Location", status, err)
			}
			if got := requests() - before; got != 1 {
				t.Errorf("PUT answered %d: %d requests, want 1 (the redirect not followed)", status, got)
			}
		}
		if own.CheckRedirect != nil {
			t.Error("New changed the caller's HTTPClient")
		}
	}
}
