package replica

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// selfSignedTLS is a TLS pair trusting one self-signed certificate for
// "n1", with refusals recorded.
func selfSignedTLS(t *testing.T) (*TCPTLS, *refusals) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "n1"}, DNSNames: []string{"n1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(der)
	pool.AddCert(leaf)
	r := &refusals{}
	return &TCPTLS{
		Server: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS13},
		Client: func(peer string) *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: peer, MinVersion: tls.VersionTLS13}
		},
		Refused: r.add,
	}, r
}

// refusals records what TCPTLS.Refused was told.
type refusals struct {
	mu   sync.Mutex // guards errs
	errs []error
}

func (r *refusals) add(_ string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *refusals) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs)
}

func tlsTransport(t *testing.T, s *TCPTLS) *TCPTransport {
	t.Helper()
	cfg := DefaultTCPConfig()
	cfg.Self = "n1"
	cfg.Resolve = func(string) (string, bool) { return "", false }
	cfg.TLS = s
	tr, err := NewTCPTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// TestTLSServedQuietEndIsNoRefusal: an accepted connection that hangs
// up during the handshake, before or after its hello, refused nothing;
// one that speaks something else than TLS is a refusal.
func TestTLSServedQuietEndIsNoRefusal(t *testing.T) {
	s, r := selfSignedTLS(t)
	tr := tlsTransport(t, s)

	// A port probe: connect, say nothing, hang up.
	client, server := net.Pipe()
	_ = client.Close()
	if _, ok := tr.secureServed(server); ok {
		t.Fatal("handshake with a closed connection succeeded")
	}
	// A caller whose ctx ends after it began its ClientHello: the server
	// reads on only once the caller has given up and closed.
	client, server = net.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	gaveUp := make(chan error, 1)
	go func() {
		err := tls.Client(client, s.Client("n1")).HandshakeContext(ctx)
		_ = client.Close()
		gaveUp <- err
	}()
	var clientErr error
	_, ok := tr.secureServed(&cancelOnRead{Conn: server, cancel: func() { cancel(); clientErr = <-gaveUp }})
	if ok {
		t.Fatal("handshake with a caller that gave up succeeded")
	}
	if !errors.Is(clientErr, context.Canceled) {
		t.Fatalf("client handshake: %v, want its ctx's cancel", clientErr)
	}
	if n := r.count(); n != 0 {
		t.Fatalf("%d refusals counted for connections that hung up: %v", n, r.errs)
	}

	// Plaintext is refused.
	client, server = net.Pipe()
	go func() {
		_, _ = client.Write([]byte("GET / HTTP/1.1\r\nHost: n1\r\n\r\n"))
		_, _ = io.Copy(io.Discard, client) // the alert, until the server closes
	}()
	if _, ok := tr.secureServed(server); ok {
		t.Fatal("plaintext handshake succeeded")
	}
	_ = server.Close()
	_ = client.Close()
	if n := r.count(); n != 1 {
		t.Fatalf("plaintext caller: %d refusals, want 1", n)
	}
}

// cancelOnRead calls cancel once the first bytes (of the ClientHello)
// were read, before returning them: the dialer's ctx ends mid-handshake.
type cancelOnRead struct {
	net.Conn
	once   sync.Once
	cancel func()
}

func (c *cancelOnRead) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(c.cancel)
	}
	return n, err
}

// TestTLSDialCancelledIsNoRefusal: a dial whose own ctx ends during the
// handshake is the caller's doing, not a refusal.
func TestTLSDialCancelledIsNoRefusal(t *testing.T) {
	s, r := selfSignedTLS(t)
	tr := tlsTransport(t, s)
	client, server := net.Pipe()
	defer server.Close()
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		// Read the ClientHello, then the dialer gives up.
		_, _ = server.Read(make([]byte, 1))
		cancel()
		_, _ = io.Copy(io.Discard, server)
	}()
	if _, err := tr.secureDialed(ctx, client, "n1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("secureDialed: %v, want the ctx's cancel", err)
	}
	if n := r.count(); n != 0 {
		t.Fatalf("%d refusals counted for the caller's own cancel: %v", n, r.errs)
	}
}
