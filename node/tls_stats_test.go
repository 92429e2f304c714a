package node

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// TestRemoteStatsChecksCertificate: over HTTPS, statistics count for a
// member only when the answering node's certificate names it, whatever
// node name the answer claims.
func TestRemoteStatsChecksCertificate(t *testing.T) {
	dir := makeCerts(t, "n1", "n2")
	asker, _ := testTLS(t, dir, "n1", "n1")
	serve := func(certOf string) string {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, certOf+".crt"), filepath.Join(dir, certOf+".key"))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(NodeStats{Node: "n2", Keys: 7})
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: asker.peerHTTP()}}
	t.Cleanup(client.CloseIdleConnections)
	a := &clusterAdmin{self: "n1", client: client, scheme: "https", log: slog.New(slog.DiscardHandler)}

	// n1 answers in n2's name: its certificate says otherwise.
	if st, err := a.remoteStats(t.Context(), "n2", serve("n1")); !errors.Is(err, ErrCertName) {
		t.Fatalf("n1's certificate answering for n2: %+v, %v; want ErrCertName", st, err)
	}
	if st, err := a.remoteStats(t.Context(), "n2", serve("n2")); err != nil || st.Keys != 7 {
		t.Fatalf("n2's own answer: %+v, %v", st, err)
	}
}
