package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ringkv/ringkv/internal/atomicfile"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/node"
)

// Environment variables the client commands read when the matching flag is
// not given. They are not server config keys: the server does not warn
// about them.
var clientTLSEnv = []struct{ flag, env string }{
	{"tls-dir", "RINGKV_TLS_DIR"},
	{"tls-ca", "RINGKV_TLS_CA"},
	{"tls-cert", "RINGKV_TLS_CERT"},
	{"tls-key", "RINGKV_TLS_KEY"},
}

// clientTLS is how a client command reaches a node over TLS.
type clientTLS struct {
	dir, ca, cert, key string
}

func (o *clientTLS) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.dir, "tls-dir", "", "directory written by \"ringkv certs\": its ca.crt, and client.crt and client.key when there (env RINGKV_TLS_DIR)")
	f.StringVar(&o.ca, "tls-ca", "", "CA certificate to verify the node with; talks HTTPS (env RINGKV_TLS_CA)")
	f.StringVar(&o.cert, "tls-cert", "", "client certificate to present (env RINGKV_TLS_CERT)")
	f.StringVar(&o.key, "tls-key", "", "key of --tls-cert (env RINGKV_TLS_KEY)")
}

// resolve fills unset flags from the environment and from --tls-dir.
func (o *clientTLS) resolve(cmd *cobra.Command) {
	vals := map[string]*string{"tls-dir": &o.dir, "tls-ca": &o.ca, "tls-cert": &o.cert, "tls-key": &o.key}
	for _, e := range clientTLSEnv {
		if cmd != nil && cmd.Flags().Changed(e.flag) {
			continue
		}
		if v, ok := os.LookupEnv(e.env); ok {
			*vals[e.flag] = v
		}
	}
	if o.dir == "" {
		return
	}
	if o.ca == "" {
		o.ca = filepath.Join(o.dir, node.CACertFile)
	}
	if o.cert == "" && o.key == "" {
		c, k := filepath.Join(o.dir, node.ClientCertFile), filepath.Join(o.dir, node.ClientKeyFile)
		if _, err := os.Stat(c); err == nil {
			o.cert, o.key = c, k
		}
	}
}

// enabled reports whether any TLS option is set.
func (o *clientTLS) enabled() bool { return o.ca != "" || o.cert != "" || o.key != "" }

// maxTLSFileBytes bounds --tls-ca, --tls-cert and --tls-key as a node
// bounds its TLS files: room for a bundle of many certificates, not for a
// mistaken path to a large file.
const maxTLSFileBytes = 1 << 20

// config builds the client's TLS configuration: the node is verified with
// the CA (the system's roots without --tls-ca) and the client certificate is
// presented when given.
func (o *clientTLS) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.ca != "" {
		b, err := atomicfile.ReadBounded(vfs.OSFS{}, o.ca, maxTLSFileBytes)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", o.ca)
		}
		cfg.RootCAs = pool
	}
	if (o.cert == "") != (o.key == "") {
		return nil, usageError("--tls-cert and --tls-key go together")
	}
	if o.cert != "" {
		c, err := o.keyPair()
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// keyPair reads --tls-cert and --tls-key, each bounded as --tls-ca is.
func (o *clientTLS) keyPair() (tls.Certificate, error) {
	certPEM, err := atomicfile.ReadBounded(vfs.OSFS{}, o.cert, maxTLSFileBytes)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-cert: %w", err)
	}
	keyPEM, err := atomicfile.ReadBounded(vfs.OSFS{}, o.key, maxTLSFileBytes)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-key: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", o.cert, o.key, err)
	}
	return c, nil
}

// clientConfig is the TLS configuration of a client command when TLS is
// asked for, by an option or by an https:// --node; nil for plain HTTP.
func (o *clientTLS) clientConfig(cmd *cobra.Command, https bool) (*tls.Config, error) {
	o.resolve(cmd)
	if !o.enabled() && !https {
		return nil, nil
	}
	return o.config()
}

// benchConfig is the TLS configuration of "ringkv bench", nil without TLS.
func (o *clientTLS) benchConfig(cmd *cobra.Command) (*tls.Config, error) {
	o.resolve(cmd)
	if !o.enabled() {
		return nil, nil
	}
	return o.config()
}

// secureBenchDriver makes a bench driver talk TLS with cfg (nil: leave it
// plaintext, unless an https:// address asked for TLS with the system's
// roots, which net/http does by itself).
func secureBenchDriver(d benchDriver, cfg *tls.Config) {
	if cfg == nil {
		return
	}
	switch d := d.(type) {
	case *httpDriver:
		d.tr.TLSClientConfig = cfg.Clone()
		if rest, ok := strings.CutPrefix(d.base, "http://"); ok {
			d.base = "https://" + rest
		}
	case *respDriver:
		c := cfg.Clone()
		if host, _, err := net.SplitHostPort(d.addr); err == nil {
			c.ServerName = host
		}
		d.tls = c
	}
}

// secure runs the TLS handshake on a fresh RESP connection when the
// driver has a TLS configuration; a failure closes conn.
func (d *respDriver) secure(ctx context.Context, conn net.Conn) (net.Conn, error) {
	if d.tls == nil {
		return conn, nil
	}
	tc := tls.Client(conn, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close() // the handshake failed; err says why
		return nil, classifyNetErr(err)
	}
	return tc, nil
}
