package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// makeCerts writes a CA, node certificates for names and a client
// certificate into a new temp directory.
func makeCerts(t *testing.T, names ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: names, Client: true}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tlsFiles is the TLSConfig of node name in a makeCerts directory.
func tlsFiles(dir, name string) TLSConfig {
	return TLSConfig{
		CertFile: filepath.Join(dir, name+".crt"),
		KeyFile:  filepath.Join(dir, name+".key"),
		CAFile:   filepath.Join(dir, CACertFile),
	}
}

func caPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatal("no CA in ca.crt")
	}
	return p
}

func TestWriteCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	cfg := CertsConfig{Dir: dir, Nodes: []string{"n1", "n2"}, Hosts: []string{"db.example", "10.0.0.7"}, Client: true}
	written, err := WriteCerts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 8 {
		t.Fatalf("wrote %d files: %v", len(written), written)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v", st.Mode(), err)
	}
	for _, p := range written {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, %v", p, st.Mode(), err)
		}
	}
	roots := caPool(t, dir)
	for _, name := range []string{"n1", "n2", "client"} {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			_, err := c.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
			if want := name != "client" || usage == x509.ExtKeyUsageClientAuth; (err == nil) != want {
				t.Fatalf("%s for usage %v: %v, want accepted=%v", name, usage, err, want)
			}
		}
		if name == "client" {
			if !slices.Equal(c.Leaf.DNSNames, []string{ClientCertName}) {
				t.Fatalf("client names %v", c.Leaf.DNSNames)
			}
			continue
		}
		if want := []string{name, "localhost", "db.example"}; !slices.Equal(c.Leaf.DNSNames, want) {
			t.Fatalf("%s DNS names %v, want %v", name, c.Leaf.DNSNames, want)
		}
		for _, h := range []string{"127.0.0.1", "::1", "10.0.0.7"} {
			if err := c.Leaf.VerifyHostname(h); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}

	// Existing files are kept unless forced.
	before, _ := os.ReadFile(filepath.Join(dir, "n1.crt"))
	if _, err := WriteCerts(cfg); !errors.Is(err, ErrCertExists) {
		t.Fatalf("second run: %v, want ErrCertExists", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "n1.crt")); string(after) != string(before) {
		t.Fatal("refused run changed n1.crt")
	}
	// A later node joins the same CA; --force re-issues and keeps the CA.
	caBefore, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n3"}}); err != nil {
		t.Fatal(err)
	}
	cfg.Force = true
	if _, err := WriteCerts(cfg); err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	after, _ := os.ReadFile(filepath.Join(dir, "n1.crt"))
	if string(caAfter) != string(caBefore) || string(after) == string(before) {
		t.Fatal("force must re-issue n1.crt under the same CA")
	}
	if _, err := loadTLSMaterial(tlsFiles(dir, "n3"), "n3"); err != nil {
		t.Fatalf("n3 added later: %v", err)
	}

	for _, bad := range [][]string{{""}, {"a b"}, {"x/y"}, {"ca"}, {"client"}} {
		if _, err := WriteCerts(CertsConfig{Dir: t.TempDir(), Nodes: bad}); err == nil {
			t.Fatalf("node name %q accepted", bad[0])
		}
	}
	// Half a CA is not silently replaced by a new one.
	half := t.TempDir()
	if err := os.WriteFile(filepath.Join(half, CACertFile), before, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteCerts(CertsConfig{Dir: half, Nodes: []string{"n1"}}); err == nil {
		t.Fatal("ca.crt without ca.key accepted")
	}
}

func TestLoadTLSMaterialChecks(t *testing.T) {
	dir := makeCerts(t, "n1", "n2")
	other := makeCerts(t, "n1")
	if _, err := loadTLSMaterial(tlsFiles(dir, "n1"), "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTLSMaterial(tlsFiles(dir, "n2"), "n1"); !errors.Is(err, ErrCertName) {
		t.Fatalf("n2's certificate for node n1: %v, want ErrCertName", err)
	}
	mixed := tlsFiles(dir, "n1")
	mixed.CAFile = filepath.Join(other, CACertFile)
	if _, err := loadTLSMaterial(mixed, "n1"); err == nil {
		t.Fatal("certificate of another CA accepted")
	}
	missing := tlsFiles(dir, "n9")
	if _, err := loadTLSMaterial(missing, "n9"); err == nil {
		t.Fatal("missing files accepted")
	}
}
