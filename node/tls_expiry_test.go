package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTLSExpiryGaugeShowsTheChain: a certificate that outlives its CA
// (as an older "ringkv certs" could issue) stops verifying with the CA;
// the expiry gauge says when, not the certificate's own NotAfter.
func TestTLSExpiryGaugeShowsTheChain(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, caKey, err := newCA(now, 100*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := certTemplate("n1", now, defaultCertValidity)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.DNSNames, tmpl.ExtKeyUsage = []string{"n1"}, nodeUsage
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"n1.crt":   {Type: "CERTIFICATE", Bytes: der},
		"n1.key":   {Type: "EC PRIVATE KEY", Bytes: mustMarshalKey(key)},
		CACertFile: {Type: "CERTIFICATE", Bytes: ca.Raw},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, m := testTLS(t, dir, "n1", "n1")
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() == metricTLSCertExpiry {
			got, found = mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	if want := float64(ca.NotAfter.Unix()); !found || got != want {
		t.Fatalf("%s = %v (found %v), want the CA's expiry %v, not the certificate's %v",
			metricTLSCertExpiry, got, found, want, tmpl.NotAfter.Unix())
	}
}
