package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ringkv/ringkv/node"
)

func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errOut := runCLI(t, "", "certs", "--dir", dir, "--host", "n2=db.example", "--client", "n1", "n2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{"ca.crt", "ca.key", "n1.crt", "n1.key", "n2.crt", "n2.key", "client.crt", "client.key"} {
		if !strings.Contains(out, filepath.Join(dir, f)) {
			t.Errorf("output does not list %s:\n%s", f, out)
		}
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st, err)
		}
	}
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, "n2.crt"), filepath.Join(dir, "n2.key"))
	if err != nil || c.Leaf.VerifyHostname("db.example") != nil || c.Leaf.VerifyHostname("n2") != nil {
		t.Fatalf("n2 certificate: %v", err)
	}
	if c, err := tls.LoadX509KeyPair(filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key")); err != nil || c.Leaf.VerifyHostname("db.example") == nil {
		t.Fatalf("n1's certificate names n2's host (%v)", err)
	}
	// A bare --host needs a single node; a node name may not be a host.
	if code, _, errOut := runCLI(t, "", "certs", "--dir", dir, "--host", "db3.example", "n3", "n4"); code != 2 || !strings.Contains(errOut, "--host NODE=") {
		t.Fatalf("bare --host with two nodes: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "certs", "--dir", dir, "--host", "n1", "n3"); code != 1 || !strings.Contains(errOut, "name of node") {
		t.Fatalf("--host naming node n1: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "certs", "--dir", dir, "--host", "db3.example", "n3"); code != 0 {
		t.Fatalf("bare --host with one node: exit %d, %s", code, errOut)
	} else if c, err := tls.LoadX509KeyPair(filepath.Join(dir, "n3.crt"), filepath.Join(dir, "n3.key")); err != nil || c.Leaf.VerifyHostname("db3.example") != nil {
		t.Fatalf("n3 certificate: %v", err)
	}
	if code, _, errOut := runCLI(t, "", "certs", "--dir", dir, "n1"); code != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("overwrite without --force: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "certs", "--dir", dir, "--force", "n1"); code != 0 {
		t.Fatalf("--force: exit %d, %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "certs", "--dir", dir); code != 2 {
		t.Fatalf("no names: exit %d, want 2", code)
	}
	// The CA lives 10 years: longer certificates end with it, and say so.
	if code, out, errOut := runCLI(t, "", "certs", "--dir", dir, "--days", "5000", "n6"); code != 0 || !strings.Contains(out, "note: the certificates expire with the CA") {
		t.Fatalf("--days beyond the CA: exit %d, %q %s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "", "certs", "--dir", dir, "--days", "0", "n5"); code != 2 {
		t.Fatalf("--days 0: exit %d, want 2", code)
	}
}

// tlsServerConfig serves name's certificate from dir and requires a
// client certificate of dir's CA.
func tlsServerConfig(t *testing.T, dir, name string) *tls.Config {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, node.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &tls.Config{Certificates: []tls.Certificate{c}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
}

func TestClientCommandsOverTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := node.WriteCerts(node.CertsConfig{Dir: dir, Nodes: []string{"n1"}, Client: true}); err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{data: map[string][]byte{}}
	srv := httptest.NewUnstartedServer(f.handler())
	srv.TLS = tlsServerConfig(t, dir, "n1")
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	if code, _, errOut := runCLI(t, "", "put", "--node", addr, "--tls-dir", dir, "k", "v1"); code != 0 {
		t.Fatalf("put over TLS: exit %d, %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, "", "get", "--node", addr, "--tls-ca", filepath.Join(dir, "ca.crt"),
		"--tls-cert", filepath.Join(dir, "client.crt"), "--tls-key", filepath.Join(dir, "client.key"), "k"); code != 0 || !strings.Contains(out, "v1") {
		t.Fatalf("get with --tls-ca --tls-cert --tls-key: exit %d, %q %s", code, out, errOut)
	}
	t.Setenv("RINGKV_TLS_DIR", dir)
	if code, out, errOut := runCLI(t, "", "get", "--node", addr, "k"); code != 0 || !strings.Contains(out, "v1") {
		t.Fatalf("get with RINGKV_TLS_DIR: exit %d, %q %s", code, out, errOut)
	}
	if unknown := lookupEnvKeys(); len(unknown) != 0 {
		t.Fatalf("the server would warn about the client's variables: %v", unknown)
	}
	t.Setenv("RINGKV_TLS_DIR", "")
	// This server requires a client certificate; the CA alone is refused.
	if code, _, _ := runCLI(t, "", "get", "--node", addr, "--tls-ca", filepath.Join(dir, "ca.crt"), "k"); code == 0 {
		t.Fatal("get without a client certificate succeeded against a server that requires one")
	}
	// A CA that did not sign the node's certificate is refused.
	other := filepath.Join(t.TempDir(), "other")
	if _, err := node.WriteCerts(node.CertsConfig{Dir: other, Client: true}); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "", "get", "--node", addr, "--tls-dir", other, "k"); code == 0 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("get with another CA: exit %d, %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "get", "--node", addr, "--tls-cert", filepath.Join(dir, "client.crt"), "k"); code != 2 {
		t.Fatalf("--tls-cert without --tls-key: exit %d, want 2", code)
	}
}

func TestBenchOverTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := node.WriteCerts(node.CertsConfig{Dir: dir, Nodes: []string{"n1"}, Client: true}); err != nil {
		t.Fatal(err)
	}
	t.Run("http", func(t *testing.T) {
		no := func(int) bool { return false }
		f := &fakeKV{fail503: no, closeConn: no, hang: no, data: map[string][]byte{}, puts: map[string]int{}, queries: map[string]bool{}}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
		srv.TLS = tlsServerConfig(t, dir, "n1")
		srv.StartTLS()
		t.Cleanup(srv.Close)
		code, rep, stderr := runBench(t, t.Context(), "--ops", "200", "--clients", "2", "--records", "50",
			"--nodes", srv.Listener.Addr().String(), "--tls-dir", dir)
		if code != 0 || rep.Read.Errors.Total+rep.Update.Errors.Total != 0 || rep.Run.Count != 200 {
			t.Fatalf("exit %d, %+v; stderr %s", code, rep, stderr)
		}
	})
	t.Run("resp", func(t *testing.T) {
		no := func(int) bool { return false }
		f := &fakeRESP{failQuorum: no, closeConn: no, data: map[string][]byte{}, sets: map[string]int{}}
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := tls.NewListener(raw, tlsServerConfig(t, dir, "n1"))
		var wg sync.WaitGroup
		t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Go(func() { defer c.Close(); f.serve(c) })
			}
		})
		code, rep, stderr := runBench(t, t.Context(), "--protocol", "resp", "--ops", "200", "--clients", "2",
			"--records", "50", "--nodes", ln.Addr().String(), "--tls-dir", dir)
		if code != 0 || rep.Read.Errors.Total+rep.Update.Errors.Total != 0 || rep.Run.Count != 200 {
			t.Fatalf("exit %d, %+v; stderr %s", code, rep, stderr)
		}
	})
}

func TestTLSConfigFromEnv(t *testing.T) {
	t.Setenv("RINGKV_TLS_CERT_FILE", "/etc/ringkv/n1.crt")
	t.Setenv("RINGKV_TLS_KEY_FILE", "/etc/ringkv/n1.key")
	t.Setenv("RINGKV_TLS_CA_FILE", "/etc/ringkv/ca.crt")
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (node.TLSConfig{CertFile: "/etc/ringkv/n1.crt", KeyFile: "/etc/ringkv/n1.key", CAFile: "/etc/ringkv/ca.crt"}); cfg.TLS != want {
		t.Fatalf("tls from env = %+v, want %+v", cfg.TLS, want)
	}
	t.Setenv("RINGKV_TLS_CA_FILE", "")
	if _, err := loadConfig("", nil); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("partial tls from env: %v", err)
	}
}
