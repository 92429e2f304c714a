package node

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringkv/ringkv/internal/atomicfile"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/replica"
)

// ErrCertName is a peer certificate that does not name the node the peer
// claims to be (as server: the hello's name; as client: the node dialed).
var ErrCertName = errors.New("node: certificate does not name the peer")

// errNoCert is a peer that presented no certificate where one is required.
var errNoCert = errors.New("node: peer presented no certificate")

// maxPeerChain bounds the certificates a peer may present: a leaf and a
// few intermediates. More is refused before any is verified.
const maxPeerChain = 4

// tlsMaterial is one reading of the configured files. It is never
// changed once stored: a reload stores a new one.
type tlsMaterial struct {
	cert *tls.Certificate
	pool *x509.CertPool
	// expiry is when the certificate stops verifying: the earliest
	// NotAfter along its chain to the CA (of the chain that lasts
	// longest, when ca_file holds several CAs it chains to).
	expiry time.Time
	// digest identifies the files' bytes, so that the watcher can tell
	// a rewrite with the same content from a change.
	digest [sha256.Size]byte
}

// nodeTLS holds the node's current certificate and CA and hands out the
// TLS configurations of its listeners and dials. Every configuration
// reads the current material at each handshake, so a reload applies to
// new connections at once and leaves established ones alone.
type nodeTLS struct {
	cfg  TLSConfig
	self string
	log  *slog.Logger
	cur  atomic.Pointer[tlsMaterial]
	// reloadMu serializes reloads (SIGHUP and the watcher): reading the
	// files and storing what was read happen as one, so that a slower,
	// older reading never replaces a newer one.
	reloadMu sync.Mutex
	// refusals counts and logs refused RPC connections.
	refusals *refusalLog
	// reloads counts reloads by result; expiry is the current
	// material's, Unix seconds.
	reloads *prometheus.CounterVec
	expiry  atomic.Int64
	// reloaded, when set (tests), receives each reload's result if it
	// has room; watching, when set (tests), is called once the watcher
	// watches the files' directories.
	reloaded chan error
	watching func()
}

// newNodeTLS loads the files of cfg, checking that the certificate chains
// to the CA and names self.
func newNodeTLS(cfg TLSConfig, self string, log *slog.Logger) (*nodeTLS, error) {
	t := &nodeTLS{cfg: cfg, self: self, log: log, refusals: newRefusalLog(log, nil),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricTLSReloads,
			Help: "Reloads of the TLS certificate, key and CA files (SIGHUP or a file change), by result (ok, error).",
		}, []string{"result"}),
	}
	m, err := loadTLSMaterial(cfg, self)
	if err != nil {
		return nil, err
	}
	t.store(m)
	return t, nil
}

// Metric names of the TLS layer.
const (
	metricTLSReloads    = "ringkv_tls_reloads_total"
	metricTLSCertExpiry = "ringkv_tls_cert_expiry_timestamp_seconds"
	metricRPCRefused    = "ringkv_rpc_refused_total"
)

// register exports the TLS metrics.
func (t *nodeTLS) register(reg prometheus.Registerer) {
	reg.MustRegister(t.reloads, t.refusals.counter,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricTLSCertExpiry,
			Help: "When this node's TLS certificate stops verifying, Unix seconds: the earliest expiry of the certificate and the CA it chains to.",
		}, func() float64 { return float64(t.expiry.Load()) }))
}

func (t *nodeTLS) store(m *tlsMaterial) {
	t.cur.Store(m)
	t.expiry.Store(m.expiry.Unix())
}

// reload reads the files again. On any error the current material stays.
func (t *nodeTLS) reload() error { return t.reloadFiles(false) }

// reloadFiles reads the files again; with ifChanged, files whose bytes
// are those already loaded are left alone, neither counted nor logged
// (the watcher sees writes that change nothing: a touch, a sync job).
func (t *nodeTLS) reloadFiles(ifChanged bool) error {
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	f, err := readTLSFiles(t.cfg)
	if err == nil && ifChanged && f.digest() == t.cur.Load().digest {
		return nil
	}
	var m *tlsMaterial
	if err == nil {
		m, err = f.material(t.cfg, t.self)
	}
	if err == nil {
		t.store(m)
		t.reloads.WithLabelValues("ok").Inc()
		t.log.Info("tls certificate reloaded", "not_after", m.cert.Leaf.NotAfter.UTC(), "chain_not_after", m.expiry.UTC())
	} else {
		t.reloads.WithLabelValues("error").Inc()
		t.log.Error("tls reload failed; keeping the previous certificate", "err", err)
	}
	if t.reloaded != nil {
		select {
		case t.reloaded <- err:
		default: // a test that stopped listening
		}
	}
	return err
}

// loadTLSMaterial reads and checks cfg's files.
func loadTLSMaterial(cfg TLSConfig, self string) (*tlsMaterial, error) {
	f, err := readTLSFiles(cfg)
	if err != nil {
		return nil, err
	}
	return f.material(cfg, self)
}

// maxTLSFileBytes bounds each TLS file read: certificates, keys and a
// CA bundle are a few KiB.
const maxTLSFileBytes = 1 << 20

// tlsFileBytes are the bytes of the certificate, key and CA files.
type tlsFileBytes struct{ cert, key, ca []byte }

// readTLSFiles reads cfg's three files, each at most maxTLSFileBytes.
func readTLSFiles(cfg TLSConfig) (tlsFileBytes, error) {
	var f tlsFileBytes
	for _, r := range []struct {
		key, path string
		dst       *[]byte
	}{{"tls.cert_file", cfg.CertFile, &f.cert}, {"tls.key_file", cfg.KeyFile, &f.key}, {"tls.ca_file", cfg.CAFile, &f.ca}} {
		b, err := atomicfile.ReadBounded(vfs.OSFS{}, r.path, maxTLSFileBytes)
		if err != nil {
			return tlsFileBytes{}, fmt.Errorf("config %s: %w", r.key, err)
		}
		*r.dst = b
	}
	return f, nil
}

// digest identifies the three files' contents together.
func (f tlsFileBytes) digest() [sha256.Size]byte {
	h := sha256.New()
	for _, b := range [][]byte{f.cert, f.key, f.ca} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// material parses and checks the files read for node self.
func (f tlsFileBytes) material(cfg TLSConfig, self string) (*tlsMaterial, error) {
	cert, err := tls.X509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("config tls.cert_file %s, tls.key_file %s: %w", cfg.CertFile, cfg.KeyFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(f.ca) {
		return nil, fmt.Errorf("config tls.ca_file %s: no PEM certificate in it", cfg.CAFile)
	}
	m := &tlsMaterial{cert: &cert, pool: pool, digest: f.digest()}
	// A node whose own certificate its peers would refuse must not start
	// (or swap it in): the failure would show only as refused connections.
	// Peers check both usages: a node serves and dials.
	for _, usage := range nodeUsage {
		chains, err := m.verify(cert.Leaf, nil, usage)
		if err != nil {
			return nil, fmt.Errorf("config tls.cert_file %s: %w", cfg.CertFile, err)
		}
		m.expiry = chainExpiry(chains)
	}
	if err := checkCertName(cert.Leaf, self); err != nil {
		return nil, fmt.Errorf("config tls.cert_file %s (node.name %s): %w", cfg.CertFile, self, err)
	}
	return m, nil
}

// verify checks that leaf, with intermediates, chains to the CA and may
// be used for usage; it returns the chains found.
func (m *tlsMaterial) verify(leaf *x509.Certificate, intermediates []*x509.Certificate, usage x509.ExtKeyUsage) ([][]*x509.Certificate, error) {
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	return leaf.Verify(x509.VerifyOptions{Roots: m.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
}

// chainExpiry is when the longest-lasting of chains stops verifying: a
// chain ends with its first certificate to expire.
func chainExpiry(chains [][]*x509.Certificate) time.Time {
	var best time.Time
	for _, chain := range chains {
		end := chain[0].NotAfter
		for _, c := range chain[1:] {
			if c.NotAfter.Before(end) {
				end = c.NotAfter
			}
		}
		if end.After(best) {
			best = end
		}
	}
	return best
}

// verifyPeer checks a handshake's peer chain against the current CA.
func (t *nodeTLS) verifyPeer(cs tls.ConnectionState, usage x509.ExtKeyUsage) (*x509.Certificate, error) {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return nil, errNoCert
	}
	if len(certs) > maxPeerChain {
		return nil, fmt.Errorf("node: peer presented %d certificates, at most %d accepted", len(certs), maxPeerChain)
	}
	if _, err := t.cur.Load().verify(certs[0], certs[1:], usage); err != nil {
		return nil, err
	}
	return certs[0], nil
}

// checkCertName requires name among leaf's DNS names, exactly: node
// names are case-sensitive and never wildcards.
func checkCertName(leaf *x509.Certificate, name string) error {
	if slices.Contains(leaf.DNSNames, name) {
		return nil
	}
	names := leaf.DNSNames
	if len(names) > 8 {
		names = append(names[:8:8], "...")
	}
	return fmt.Errorf("%w: %q is not among its DNS names %q", ErrCertName, truncateString(name, 64), names)
}

// currentCert returns the current certificate for a handshake.
func (t *nodeTLS) currentCert() *tls.Certificate { return t.cur.Load().cert }

// clientFacing is the configuration of the HTTP and RESP listeners.
// Clients verify the node with the CA; a client certificate is optional,
// but one that does not chain to the CA is refused.
func (t *nodeTLS) clientFacing() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.currentCert(), nil },
		ClientAuth:     tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			_, err := t.verifyPeer(cs, x509.ExtKeyUsageClientAuth)
			return err
		},
	}
}

// rpc returns the transport's mutual TLS: each side verifies the other's
// chain against the current CA itself (VerifyConnection), rather than
// through tls.Config's static pools, so that a reloaded CA applies; the
// server then checks the certificate against the name the hello claims,
// the client against the node it dialed.
func (t *nodeTLS) rpc() *replica.TCPTLS {
	return &replica.TCPTLS{
		Server: &tls.Config{
			MinVersion:     tls.VersionTLS13,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.currentCert(), nil },
			// Requested, not required: VerifyConnection refuses a
			// missing one with an error the refusal counter can name.
			ClientAuth: tls.RequestClientCert,
			VerifyConnection: func(cs tls.ConnectionState) error {
				leaf, err := t.verifyPeer(cs, x509.ExtKeyUsageClientAuth)
				if err == nil && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
					// Node certificates serve too; a client-only one (the
					// CLI's) is not a node's, whatever name it has.
					err = x509.CertificateInvalidError{Cert: leaf, Reason: x509.IncompatibleUsage, Detail: "a client-only certificate is not a node's"}
				}
				return err
			},
		},
		Client: func(peer string) *tls.Config {
			return &tls.Config{
				MinVersion:           tls.VersionTLS13,
				ServerName:           peer,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return t.currentCert(), nil },
				// Verification is VerifyConnection's below: against the
				// current CA, and by exact node name rather than host
				// name rules.
				InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
				VerifyConnection: func(cs tls.ConnectionState) error {
					leaf, err := t.verifyPeer(cs, x509.ExtKeyUsageServerAuth)
					if err != nil {
						return err
					}
					return checkCertName(leaf, peer)
				},
			}
		},
		CheckPeer: func(claimed string, cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errNoCert
			}
			return checkCertName(cs.PeerCertificates[0], claimed)
		},
		Refused: func(remote string, err error) { t.refusals.refused(refusalReason(err), remote, err) },
	}
}

// refusalReason names the cause of a refused connection for the metric's
// reason label: a small fixed set, whatever the peer sent.
func refusalReason(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.Is(err, errNoCert):
		return "no_cert"
	case errors.Is(err, ErrCertName):
		return "name"
	case errors.As(err, &unknownCA):
		return "unknown_ca"
	case errors.As(err, &invalid):
		return "invalid_cert"
	default:
		return "handshake"
	}
}

// tlsReloadDebounce lets a rotation that rewrites several files finish
// before the files are read again.
const tlsReloadDebounce = 250 * time.Millisecond

// ReloadTLS reads the TLS certificate, key and CA files again (the server
// calls it on SIGHUP); new connections use them, established ones keep
// theirs. On error the node keeps its current files. Without TLS it does
// nothing.
func (n *Node) ReloadTLS() error {
	if n.tls == nil {
		return nil
	}
	return n.tls.reload()
}

// secureListeners wraps the HTTP, admin and RESP listeners in TLS and
// gives the RPC transport config its mutual TLS, when TLS is configured.
func (n *Node) secureListeners(tcfg *replica.TCPConfig) {
	if n.tls == nil {
		return
	}
	n.httpLn = tls.NewListener(n.httpLn, n.tls.clientFacing())
	n.respLn = tls.NewListener(n.respLn, n.tls.clientFacing())
	if n.adminLn != nil {
		n.adminLn = tls.NewListener(n.adminLn, n.tls.clientFacing())
	}
	tcfg.TLS = n.tls.rpc()
}

// watchTLS runs the file watcher until ctx is done; the returned func
// stops it and waits.
func (n *Node) watchTLS(ctx context.Context) (stop func()) {
	if n.tls == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); n.tls.watch(ctx) }()
	return func() { cancel(); <-done }
}
