package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/ringkv/ringkv/internal/atomicfile"
	"github.com/ringkv/ringkv/internal/vfs"
)

// ErrCertExists is returned by WriteCerts when a file it would write is
// already there and Force is off: keys are not replaced by accident.
var ErrCertExists = errors.New("node: certificate file exists")

// File names WriteCerts uses inside its directory. Node files are
// <name>.crt and <name>.key.
const (
	CAKeyFile      = "ca.key"
	CACertFile     = "ca.crt"
	ClientCertFile = "client.crt"
	ClientKeyFile  = "client.key"
)

// ClientCertName is the common name of the CLI's client certificate. It is
// not a node name, so that a stolen CLI key cannot pose as a node on the
// internal RPC port.
const ClientCertName = "ringkv-client"

// CertsConfig says what WriteCerts makes.
type CertsConfig struct {
	// Dir receives the files; it is created 0700 if missing.
	Dir string
	// Nodes are the node names, each written into its certificate as a
	// DNS name: the internal RPC checks that name against node.name.
	Nodes []string
	// Hosts are, by node name, the extra DNS names and IP addresses put
	// into that node's certificate: the names clients reach it at. A
	// host is never another node's name.
	Hosts map[string][]string
	// Client also writes a client certificate for the CLI.
	Client bool
	// Validity is how long the node and client certificates are valid,
	// capped at the CA's own expiry. Default 825 days.
	Validity time.Duration
	// Force replaces existing files; otherwise any of them existing is
	// ErrCertExists and nothing is written.
	Force bool
	// Now is the issue time; zero means time.Now.
	Now time.Time
	// Waiting, if set, is called with the lock file's path when another
	// run holds the directory's lock (CertsLockFile), before WriteCerts
	// waits for it, so that a caller can say why nothing happens.
	Waiting func(lockPath string)
}

// defaultCertValidity is 825 days, the longest lifetime browsers accept
// for a server certificate.
const defaultCertValidity = 825 * 24 * time.Hour

// caValidity is a new CA's lifetime, whatever the leaves': a CA that
// expires with the first leaves would take every later one with it.
const caValidity = 10 * 365 * 24 * time.Hour

// loopbackNames are in every node certificate, so that a client on the
// node's own host can dial it by loopback. No node may be named one of
// them: every node's certificate would name it.
var loopbackNames = []string{"localhost", "127.0.0.1", "::1"}

// WriteCerts writes a cluster CA and, signed by it, a key and certificate
// per node (usable for both server and client authentication, since nodes
// dial each other) and optionally one for the CLI (client authentication
// only, which the RPC port refuses). Every node certificate
// names the node, localhost, 127.0.0.1, ::1 and the node's cfg.Hosts.
// Because a node certificate's DNS names are what peers check node names
// against, a node name may not be a loopback name, an IP address, or a
// name any other node's certificate carries (in this run or among the
// certificates already in Dir), and a host may not be another node's
// name. An existing ca.key and ca.crt are reused, so that nodes added
// later join the same CA; every other file must not exist unless Force.
// A new CA is valid caValidity; no certificate outlives its CA. Keys are
// ECDSA P-256, files are 0600 in a 0700 directory. It returns the paths
// written.
func WriteCerts(cfg CertsConfig) ([]string, error) {
	cfg, unlock, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	defer unlock()
	w := &certWriter{dir: cfg.Dir}
	ca, caKey, err := w.openCA(cfg.Now)
	if err != nil {
		return w.written, err
	}
	if !cfg.Now.Before(ca.NotAfter) {
		return w.written, fmt.Errorf("node: certs: the CA in %s expired on %s: make a new one (move ca.crt and ca.key away) and re-issue every certificate",
			cfg.Dir, ca.NotAfter.UTC().Format(time.DateOnly))
	}
	validity := min(cfg.Validity, ca.NotAfter.Sub(cfg.Now))
	for _, n := range cfg.Nodes {
		names := append(append([]string{n}, loopbackNames...), cfg.Hosts[n]...)
		dns, ips := certNames(names)
		if err := w.issue(ca, caKey, n, dns, ips, nodeUsage, cfg.Now, validity); err != nil {
			return w.written, err
		}
	}
	if cfg.Client {
		// Client authentication only: the RPC port takes node
		// certificates alone (nodeTLS.rpc).
		if err := w.issue(ca, caKey, "client", []string{ClientCertName}, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, cfg.Now, validity); err != nil {
			return w.written, err
		}
	}
	return w.written, nil
}

// CertsLockFile is the file in a certificate directory that WriteCerts
// holds locked while it checks and writes: two runs on one directory at
// once (two operators, a script started twice) would otherwise each make
// a CA, the second replacing the first's, or each pass the name checks
// with the other's certificates not yet written.
const CertsLockFile = ".certs.lock"

// prepare checks cfg, fills its defaults, creates its directory, locks it
// (the caller calls unlock once done) and refuses to overwrite an output
// without Force. The names are checked before the directory is created,
// so that a mistake leaves nothing behind, and again under the lock.
func (cfg CertsConfig) prepare() (CertsConfig, func(), error) {
	if cfg.Dir == "" {
		return cfg, nil, errors.New("node: certs: no directory")
	}
	if len(cfg.Nodes) == 0 && !cfg.Client {
		return cfg, nil, errors.New("node: certs: no node names and no client certificate asked for")
	}
	if cfg.Validity <= 0 {
		cfg.Validity = defaultCertValidity
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	if err := cfg.checkNames(); err != nil {
		return cfg, nil, err
	}
	if err := vfs.MkdirAllSynced(vfs.OSFS{FileMode: 0o600}, cfg.Dir); err != nil { // directories 0700
		return cfg, nil, fmt.Errorf("node: certs: %w", err)
	}
	if err := checkCertDirMode(cfg.Dir); err != nil {
		return cfg, nil, err
	}
	release, err := lockCertDir(cfg.Dir, cfg.Waiting)
	if err != nil {
		return cfg, nil, err
	}
	if err := cfg.checkNames(); err != nil {
		release()
		return cfg, nil, err
	}
	if err := cfg.checkOutputs(); err != nil {
		release()
		return cfg, nil, err
	}
	return cfg, release, nil
}

// checkNames checks cfg's node names and hosts against each other and
// against the certificates already in cfg.Dir.
func (cfg CertsConfig) checkNames() error {
	existing, err := existingNodeNames(cfg.Dir)
	if err != nil {
		return err
	}
	return checkNodeNames(cfg.Nodes, cfg.Hosts, existing)
}

// lockCertDir takes CertsLockFile in dir, waiting for another run that
// holds it (after calling waiting, if set), and returns what releases it.
func lockCertDir(dir string, waiting func(string)) (func(), error) {
	l := flock.New(filepath.Join(dir, CertsLockFile), flock.SetPermissions(0o600))
	locked, err := l.TryLock()
	if err == nil && !locked {
		if waiting != nil {
			waiting(l.Path())
		}
		err = l.Lock()
	}
	if err != nil {
		return nil, fmt.Errorf("node: certs: lock %s: %w", l.Path(), err)
	}
	return func() { _ = l.Unlock() }, nil // the lock goes with the process anyway
}

// checkOutputs refuses, without Force, to overwrite a file cfg would
// write.
func (cfg CertsConfig) checkOutputs() error {
	var outputs []string
	for _, n := range cfg.Nodes {
		outputs = append(outputs, n+".crt", n+".key")
	}
	if cfg.Client {
		outputs = append(outputs, ClientCertFile, ClientKeyFile)
	}
	if !cfg.Force {
		for _, f := range outputs {
			if _, err := os.Lstat(filepath.Join(cfg.Dir, f)); err == nil {
				return fmt.Errorf("%w: %s (use --force to replace it)", ErrCertExists, filepath.Join(cfg.Dir, f))
			}
		}
	}
	return nil
}

// certWriter writes PEM files into dir and records the paths written.
type certWriter struct {
	dir     string
	written []string
}

// write writes der as a PEM block of blockType to name in w.dir.
func (w *certWriter) write(name string, blockType string, der []byte) error {
	p := filepath.Join(w.dir, name)
	if err := writeFileAtomic(p, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})); err != nil {
		return fmt.Errorf("node: certs: %w", err)
	}
	w.written = append(w.written, p)
	return nil
}

// openCA loads the CA in w.dir, or makes and writes a new one.
func (w *certWriter) openCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	ca, caKey, err := loadCA(w.dir)
	if errors.Is(err, errNoCA) {
		ca, caKey, err = newCA(now, caValidity)
		if err == nil {
			if err = w.write(CAKeyFile, "EC PRIVATE KEY", mustMarshalKey(caKey)); err == nil {
				err = w.write(CACertFile, "CERTIFICATE", ca.Raw)
			}
		}
	}
	return ca, caKey, err
}

// issue makes a key and a certificate for name signed by ca, and writes
// both.
func (w *certWriter) issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, dns []string, ips []net.IP,
	usage []x509.ExtKeyUsage, now time.Time, validity time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("node: certs: %w", err)
	}
	tmpl, err := certTemplate(name, now, validity)
	if err != nil {
		return err
	}
	tmpl.DNSNames, tmpl.IPAddresses = dns, ips
	tmpl.ExtKeyUsage = usage
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("node: certs: sign %s: %w", name, err)
	}
	if err := w.write(name+".key", "EC PRIVATE KEY", mustMarshalKey(key)); err != nil {
		return err
	}
	return w.write(name+".crt", "CERTIFICATE", der)
}

// nodeUsage is a node certificate's: it serves and, dialing its peers,
// is a client.
var nodeUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}

// certNames splits names into DNS names and IP addresses, dropping repeats.
func certNames(names []string) (dns []string, ips []net.IP) {
	seen := map[string]bool{}
	for _, h := range names {
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// certTemplate is the common part of every certificate: a random serial
// and the validity window, backdated an hour for clocks that lag.
func certTemplate(cn string, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("node: certs: serial: %w", err)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"ringkv"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, nil
}

// newCA makes a self-signed CA that may sign only leaf certificates.
func newCA(now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("node: certs: %w", err)
	}
	tmpl, err := certTemplate("ringkv cluster CA", now, validity)
	if err != nil {
		return nil, nil, err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("node: certs: self-sign CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("node: certs: %w", err)
	}
	return ca, key, nil
}

// ErrCertDirWritable is returned by WriteCerts for a directory someone
// else may write (vfs.CheckPrivateDir): they could swap the CA key or a
// node's key for their own. Nothing is written.
var ErrCertDirWritable = errors.New("node: certs: directory is writable by others")

// checkCertDirMode refuses dir when someone else may write it; a
// directory MkdirAllSynced just made is 0700, an existing one keeps its
// mode.
func checkCertDirMode(dir string) error {
	err := vfs.CheckPrivateDir(dir)
	if errors.Is(err, vfs.ErrNotPrivate) {
		return fmt.Errorf("%w: %v", ErrCertDirWritable, err)
	}
	if err != nil {
		return fmt.Errorf("node: certs: %w", err)
	}
	return nil
}

// errNoCA is loadCA's answer for a directory without ca.crt and ca.key.
var errNoCA = errors.New("node: certs: no CA")

// loadCA reads dir's ca.crt and ca.key; errNoCA when neither is there. One without the other is an error, not a reason to make a new CA
// that the existing certificates would not chain to.
func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, cerr := atomicfile.ReadBounded(vfs.OSFS{}, filepath.Join(dir, CACertFile), maxCertFileBytes)
	keyPEM, kerr := atomicfile.ReadBounded(vfs.OSFS{}, filepath.Join(dir, CAKeyFile), maxCertFileBytes)
	if errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist) {
		return nil, nil, errNoCA
	}
	if errors.Is(cerr, fs.ErrNotExist) != errors.Is(kerr, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("node: certs: existing CA in %s is incomplete: %w", dir, errors.Join(cerr, kerr))
	}
	if err := errors.Join(cerr, kerr); err != nil {
		return nil, nil, fmt.Errorf("node: certs: read the existing CA: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("node: certs: %s or %s in %s is not PEM", CACertFile, CAKeyFile, dir)
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("node: certs: %s: %w", CACertFile, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("node: certs: %s: %w", CAKeyFile, err)
	}
	if !ca.IsCA || !key.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, fmt.Errorf("node: certs: %s is not a CA certificate for %s", CACertFile, CAKeyFile)
	}
	return ca, key, nil
}

// mustMarshalKey encodes a P-256 key, which cannot fail for a key
// ecdsa.GenerateKey made.
func mustMarshalKey(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(fmt.Sprintf("node: marshal a generated P-256 key: %v", err))
	}
	return der
}

// writeFileAtomic replaces path with b, mode 0600 (keys and certificates
// alike), so that a node reloading the file never reads half of it and a
// crash leaves the old file or the new one.
func writeFileAtomic(path string, b []byte) error {
	return atomicfile.Replace(vfs.OSFS{FileMode: 0o600}, path, b)
}
