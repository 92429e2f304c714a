package node

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestTLSAdminListener: with TLS configured, the admin listener serves
// HTTPS like the client one, never plain HTTP (admin tokens would cross
// the network in clear).
func TestTLSAdminListener(t *testing.T) {
	dir := makeCerts(t, "n1")
	cfg := testConfig(t, "n1")
	cfg.TLS = tlsFiles(dir, "n1")
	cfg.Listen.Admin = "127.0.0.1:0"
	n1 := startNode(t, cfg)

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, dir), ServerName: "n1"}}}
	t.Cleanup(hc.CloseIdleConnections)
	resp, err := hc.Get("https://" + n1.Addrs().Admin + "/v1/members")
	if err != nil {
		t.Fatalf("HTTPS on the admin listener: %v", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS GET /v1/members on the admin listener = %d %s", resp.StatusCode, body)
	}
	pc := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(pc.CloseIdleConnections)
	if resp, err := pc.Get("http://" + n1.Addrs().Admin + "/v1/members"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served on the admin listener of a TLS node")
		}
	}
}
