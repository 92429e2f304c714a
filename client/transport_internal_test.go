package client

import (
	"crypto/tls"
	"net/http"
	"testing"
)

// TestTLSTransportHasTimeouts: the transport built for Config.TLS keeps
// http.DefaultTransport's dial, handshake and idle timeouts (a peer that
// stalls the handshake must not hang a call without a deadline) and its
// proxy setting, and uses its own copy of the TLS configuration.
func TestTLSTransportHasTimeouts(t *testing.T) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "n1"}
	for _, hc := range []*http.Client{nil, {Timeout: 1}} {
		c, err := New(Config{Nodes: []string{"127.0.0.1:1"}, TLS: cfg, HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		tr, ok := c.hc.Transport.(*http.Transport)
		if !ok {
			t.Fatalf("transport %T, want *http.Transport", c.hc.Transport)
		}
		def := http.DefaultTransport.(*http.Transport)
		if tr.TLSHandshakeTimeout != def.TLSHandshakeTimeout || tr.TLSHandshakeTimeout == 0 ||
			tr.IdleConnTimeout == 0 || tr.DialContext == nil || tr.Proxy == nil {
			t.Errorf("transport lacks the default timeouts: handshake %v idle %v dial set %v proxy set %v",
				tr.TLSHandshakeTimeout, tr.IdleConnTimeout, tr.DialContext != nil, tr.Proxy != nil)
		}
		if tr.MaxIdleConnsPerHost < 16 {
			t.Errorf("MaxIdleConnsPerHost %d: a shared client would redial", tr.MaxIdleConnsPerHost)
		}
		if tr.TLSClientConfig == cfg || tr.TLSClientConfig.ServerName != "n1" {
			t.Error("TLS configuration not a copy of Config.TLS")
		}
	}
}
