package client_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/ringkv/ringkv/client"
)

// TestNotFoundOnlyFromNode: a 404 is a missing key only when a node's key
// route gave it; a mux's or a proxy's 404 (a wrong prefix, the admin
// listener) is an error, else a read-modify-write would write blind.
func TestNotFoundOnlyFromNode(t *testing.T) {
	node, _ := server(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(client.ContextHeader, "")
		writeErr(w, http.StatusNotFound, client.ErrorBody{Error: "not found"})
	})
	res, err := newClient(t, client.Config{Nodes: []string{node.URL}}).Get(t.Context(), "k")
	if err != nil || res.Found {
		t.Fatalf("node's 404: %+v, %v; want not found, no error", res, err)
	}
	other, _ := server(t, http.NotFound)
	_, err = newClient(t, client.Config{Nodes: []string{other.URL}}).Get(t.Context(), "k")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
		t.Fatalf("a text 404: %v, want a 404 *client.Error", err)
	}
}
