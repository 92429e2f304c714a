package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/atomicfile"
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
	cfg := CertsConfig{Dir: dir, Nodes: []string{"n1", "n2"}, Hosts: map[string][]string{"n1": {"db.example", "10.0.0.7"}, "n2": {"db.example"}}, Client: true}
	written, err := WriteCerts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 8 {
		t.Fatalf("wrote %d files: %v", len(written), written)
	}
	if st, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", st.Mode())
	}
	for _, p := range written {
		if st, err := os.Stat(p); err != nil {
			t.Fatal(err)
		} else if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", p, st.Mode())
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
			if err := c.Leaf.VerifyHostname(h); (err == nil) != (name == "n1" || h != "10.0.0.7") {
				t.Fatalf("%s for %s: %v", name, h, err)
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
	// The CLI's certificate (client usage only) cannot serve: a node
	// with it would be refused by every peer that dials it.
	if _, err := loadTLSMaterial(tlsFiles(dir, "client"), ClientCertName); err == nil {
		t.Fatal("a client-only certificate accepted as a node's")
	}
	missing := tlsFiles(dir, "n9")
	if _, err := loadTLSMaterial(missing, "n9"); err == nil {
		t.Fatal("missing files accepted")
	}
}

// TestWriteCertsNameClashes: no certificate may carry another node's
// name, and a node named by an IP address or a loopback name is refused
// (every node certificate would name it, or peers could not check it).
func TestWriteCertsNameClashes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}, Hosts: map[string][]string{"n1": {"db1.example"}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		cfg   CertsConfig
		clash bool // ErrCertNameClash rather than another refusal
	}{
		{"localhost", CertsConfig{Nodes: []string{"localhost"}}, true},
		{"LOCALHOST", CertsConfig{Nodes: []string{"LOCALHOST"}}, true},
		{"IPv4 literal", CertsConfig{Nodes: []string{"10.0.0.1"}}, true},
		{"IPv6 literal", CertsConfig{Nodes: []string{"::1"}}, true},
		{"host of another node in the run", CertsConfig{Nodes: []string{"n2", "n3"}, Hosts: map[string][]string{"n2": {"n3"}}}, true},
		{"host of another node, other case", CertsConfig{Nodes: []string{"n2", "n3"}, Hosts: map[string][]string{"n2": {"N3"}}}, true},
		{"node named like a host of an existing certificate", CertsConfig{Nodes: []string{"db1.example"}}, true},
		{"host naming an existing node", CertsConfig{Nodes: []string{"n2"}, Hosts: map[string][]string{"n2": {"n1"}}}, true},
		{"hosts for a node not issued", CertsConfig{Nodes: []string{"n2"}, Hosts: map[string][]string{"n9": {"x.example"}}}, false},
		{"wildcard", CertsConfig{Nodes: []string{"*.example"}}, false},
		{"twice", CertsConfig{Nodes: []string{"n2", "n2"}}, false},
		{"empty host", CertsConfig{Nodes: []string{"n2"}, Hosts: map[string][]string{"n2": {""}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Dir = dir
			written, err := WriteCerts(cfg)
			if err == nil || errors.Is(err, ErrCertNameClash) != tc.clash || len(written) != 0 {
				t.Fatalf("WriteCerts: %v (wrote %v), want a refusal (name clash: %v)", err, written, tc.clash)
			}
		})
	}
	// Re-issuing a node may keep its own names; nodes may share a host
	// that is no node's name (a load balancer's).
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}, Hosts: map[string][]string{"n1": {"db1.example", "lb.example"}}, Force: true}); err != nil {
		t.Fatalf("re-issue n1: %v", err)
	}
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n2"}, Hosts: map[string][]string{"n2": {"lb.example", "10.0.0.2"}}}); err != nil {
		t.Fatalf("n2 sharing lb.example: %v", err)
	}
	// Every node certificate still names loopback, which no node is.
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, "n2.crt"), filepath.Join(dir, "n2.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"n2", "localhost", "127.0.0.1", "::1", "lb.example", "10.0.0.2"} {
		if err := c.Leaf.VerifyHostname(h); err != nil {
			t.Fatalf("n2 certificate: %v", err)
		}
	}
	if err := c.Leaf.VerifyHostname("db1.example"); err == nil {
		t.Fatal("n2's certificate names n1's host")
	}
}

// TestWriteCertsCAValidity: a new CA lives caValidity whatever --days
// says, and no certificate outlives the CA it is issued under.
func TestWriteCertsCAValidity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}, Validity: 24 * time.Hour, Now: now}); err != nil {
		t.Fatal(err)
	}
	ca, err := ReadCertFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(caValidity); !ca.NotAfter.Equal(want) {
		t.Fatalf("CA valid until %v, want %v (its own lifetime, not the first leaf's)", ca.NotAfter, want)
	}
	// Nine years on, 825-day leaves would outlive the CA: they end with it.
	later := now.Add(9 * 365 * 24 * time.Hour)
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n2"}, Client: true, Now: later}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"n2.crt", ClientCertFile} {
		c, err := ReadCertFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !c.NotAfter.Equal(ca.NotAfter) {
			t.Fatalf("%s valid until %v, want the CA's %v", f, c.NotAfter, ca.NotAfter)
		}
	}
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n3"}, Now: ca.NotAfter}); err == nil {
		t.Fatal("issued under an expired CA")
	}
}

// TestWriteCertsOverStaleTemps: temp files an interrupted run left, torn
// and world-readable, neither widen the mode of the keys and certificates
// written over them (0600) nor stay behind.
func TestWriteCertsOverStaleTemps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CAKeyFile, CACertFile, "n1.key", "n1.crt"} {
		if err := os.WriteFile(filepath.Join(dir, f+".tmp"), []byte("-----BEGIN EC PRIV"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	written, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range written {
		if st, err := os.Stat(p); err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, st.Mode())
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The lock file stays: removing it could let a run that waits on it
	// and a later one both hold a lock.
	var names []string
	for _, e := range ents {
		if e.Name() != CertsLockFile {
			names = append(names, e.Name())
		}
	}
	if len(names) != len(written) {
		t.Errorf("directory holds %v besides %s, want only the %d files written", names, CertsLockFile, len(written))
	}
	if _, err := loadTLSMaterial(tlsFiles(dir, "n1"), "n1"); err != nil {
		t.Fatalf("certificates written over torn temps: %v", err)
	}
}

// An existing --dir that someone else can write is refused before
// anything is written: they could swap the keys in it
// (vfs.CheckPrivateDir decides; its tests cover the group cases).
func TestWriteCertsRefusesWritableDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows reports no directory modes")
	}
	mkdir := func(mode os.FileMode) string {
		dir := filepath.Join(t.TempDir(), "certs")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, mode := range []os.FileMode{0o777, 0o757, 0o703} {
		dir := mkdir(mode)
		_, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}})
		if !errors.Is(err, ErrCertDirWritable) {
			t.Errorf("dir %v: WriteCerts returned %v, want ErrCertDirWritable", mode, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("dir %v: %d files written", mode, len(ents))
		}
	}
	if _, err := WriteCerts(CertsConfig{Dir: mkdir(0o750), Nodes: []string{"n1"}}); err != nil {
		t.Errorf("dir 0750: %v", err)
	}
}

// loadCA says a CA is incomplete only when one of its two files is
// missing; a file it cannot use for another reason (here too large) is
// named with that reason.
func TestLoadCAErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}}); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, CAKeyFile)
	if err := os.WriteFile(key, make([]byte, maxCertFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadCA(dir)
	if !errors.Is(err, atomicfile.ErrTooLarge) || strings.Contains(err.Error(), "incomplete") || !strings.Contains(err.Error(), key) {
		t.Errorf("oversized ca.key: %v, want ErrTooLarge naming %s, not incomplete", err, key)
	}
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCA(dir); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("missing ca.key: %v, want incomplete", err)
	}
}
