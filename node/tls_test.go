package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
)

// testTLS loads node self's files from dir, with its metrics registered
// in a fresh registry.
func testTLS(t *testing.T, dir, files, self string) (*nodeTLS, *metrics) {
	t.Helper()
	nt, err := newNodeTLS(tlsFiles(dir, files), self, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(metricSources{})
	nt.register(m.reg)
	return nt, m
}

// uncheckedTLS is a nodeTLS with dir's certificate file, which need not
// be a node's: an attacker's side of a handshake.
func uncheckedTLS(t *testing.T, dir, file string) *nodeTLS {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, file+".crt"), filepath.Join(dir, file+".key"))
	if err != nil {
		t.Fatal(err)
	}
	nt := &nodeTLS{log: testkit.Logger(t), refusals: newRefusalLog(testkit.Logger(t), nil)}
	nt.cur.Store(&tlsMaterial{cert: &cert, pool: caPool(t, dir)})
	return nt
}

// serveRPC runs a transport named self with TLS s on a loopback port,
// answering pings; it returns the address.
func serveRPC(t *testing.T, self string, s *replica.TCPTLS) string {
	t.Helper()
	cfg := replica.DefaultTCPConfig()
	cfg.Self = self
	cfg.Resolve = func(string) (string, bool) { return "", false }
	cfg.TLS = s
	cfg.Logger = testkit.Logger(t)
	tr, err := replica.NewTCPTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- tr.Serve(ln, replica.HandlerFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
			return replica.Response{}, nil
		}))
	}()
	t.Cleanup(func() {
		_ = tr.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// pingFrom calls node to at addr from a transport named self with TLS c.
func pingFrom(t *testing.T, self, to, addr string, c *replica.TCPTLS) error {
	t.Helper()
	cfg := replica.DefaultTCPConfig()
	cfg.Self = self
	cfg.Resolve = func(n string) (string, bool) { return addr, n == to }
	cfg.TLS = c
	cfg.Logger = testkit.Logger(t)
	tr, err := replica.NewTCPTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = tr.Call(ctx, to, replica.Request{Kind: replica.KindPing})
	return err
}

// TestRPCMutualTLS: nodes of one CA talk; a caller whose certificate
// names another node than its hello, and a server whose certificate does
// not name the node dialed, are refused and counted by reason.
func TestRPCMutualTLS(t *testing.T) {
	dir := makeCerts(t, "n1", "n2", "n3")
	n1, m1 := testTLS(t, dir, "n1", "n1")
	n2, m2 := testTLS(t, dir, "n2", "n2")
	addr := serveRPC(t, "n1", n1.rpc())

	if err := pingFrom(t, "n2", "n1", addr, n2.rpc()); err != nil {
		t.Fatalf("n2 -> n1 with certificates of one CA: %v", err)
	}

	// n3's certificate, while the hello says n2.
	n3as2, _ := testTLS(t, dir, "n3", "n3")
	if err := pingFrom(t, "n2", "n1", addr, n3as2.rpc()); err == nil {
		t.Fatal("hello n2 with n3's certificate was served")
	}
	testkit.Eventually(t, 10*time.Second, "the name refusal counted", func() bool {
		return counterValue(t, m1, metricRPCRefused, "reason", "name") == 1
	})

	// n2 dials "n1" but the address is served by n3 (which names itself
	// n1 in the hello): the client refuses n3's certificate.
	fake, _ := testTLS(t, dir, "n3", "n3")
	fakeAddr := serveRPC(t, "n1", fake.rpc())
	if err := pingFrom(t, "n2", "n1", fakeAddr, n2.rpc()); err == nil {
		t.Fatal("a server with n3's certificate answered for n1")
	} else if !errors.Is(err, ErrCertName) {
		t.Fatalf("client refusal: %v, want ErrCertName", err)
	}
	if got := counterValue(t, m2, metricRPCRefused, "reason", "name"); got != 1 {
		t.Fatalf("client-side name refusals = %v, want 1", got)
	}
}

// TestRPCRefusesForeignAndMissingCerts: a caller with a certificate of
// another CA, or none, never reaches the hello.
func TestRPCRefusesForeignAndMissingCerts(t *testing.T) {
	dir := makeCerts(t, "n1")
	other := makeCerts(t, "n2")
	n1, m1 := testTLS(t, dir, "n1", "n1")
	addr := serveRPC(t, "n1", n1.rpc())

	foreign, err := tls.LoadX509KeyPair(filepath.Join(other, "n2.crt"), filepath.Join(other, "n2.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		reason string
		certs  []tls.Certificate
	}{
		{"unknown_ca", []tls.Certificate{foreign}},
		{"no_cert", nil},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			// The attacker accepts any server; only the server's check
			// stands between it and the RPC.
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: tc.certs, MinVersion: tls.VersionTLS13})
			if err != nil {
				t.Fatal(err) // TLS 1.3: the client finishes before the server's verdict
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read after refused handshake: %v, want the server's alert", err)
			}
			testkit.Eventually(t, 10*time.Second, tc.reason+" counted", func() bool {
				return counterValue(t, m1, metricRPCRefused, "reason", tc.reason) == 1
			})
		})
	}
	// A node of the other CA is refused too, whichever side notices.
	n2, _ := testTLS(t, other, "n2", "n2")
	if err := pingFrom(t, "n2", "n1", addr, n2.rpc()); err == nil {
		t.Fatal("node of another CA was served")
	}
	// The CLI's certificate (client usage only) is not a node's.
	if err := pingFrom(t, ClientCertName, "n1", addr, uncheckedTLS(t, dir, "client").rpc()); err == nil {
		t.Fatal("the CLI's certificate was served as a node")
	}
	testkit.Eventually(t, 10*time.Second, "the client certificate refused as invalid_cert", func() bool {
		return counterValue(t, m1, metricRPCRefused, "reason", "invalid_cert") == 1
	})
	// And a plaintext caller.
	if err := pingFrom(t, "n2", "n1", addr, nil); err == nil {
		t.Fatal("plaintext caller was served")
	}
}

// TestRefusalLogRateLimited: one line per reason per interval, with the
// count of lines left out; the counter counts every refusal.
func TestRefusalLogRateLimited(t *testing.T) {
	var buf testkit.Buffer
	now := time.Unix(1000, 0)
	r := newRefusalLog(slog.New(slog.NewTextHandler(&buf, nil)), func() time.Time { return now })
	cause := errors.New(strings.Repeat("x", 10_000))
	for range 50 {
		r.refused("unknown_ca", "127.0.0.1:1", cause)
	}
	r.refused("name", "127.0.0.1:2", cause)
	if lines := buf.Lines(); len(lines) != 2 {
		t.Fatalf("logged %d lines for 51 refusals of two reasons, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	now = now.Add(rpcRefusalLogInterval)
	r.refused("unknown_ca", "127.0.0.1:1", cause)
	lines := buf.Lines()
	if len(lines) != 3 || !strings.Contains(lines[2], "suppressed=49") {
		t.Fatalf("after the interval: %q, want a third line with suppressed=49", lines)
	}
	if len(lines[2]) > 2*maxRefusalErrBytes {
		t.Fatalf("logged %d bytes for one refusal", len(lines[2]))
	}
	m := newMetrics(metricSources{})
	m.reg.MustRegister(r.counter)
	if got := counterValue(t, m, metricRPCRefused, "reason", "unknown_ca"); got != 51 {
		t.Fatalf("counted %v unknown_ca refusals, want 51", got)
	}
}

// TestTLSCluster: three nodes with certificates from WriteCerts serve
// HTTPS and RESP over TLS, replicate over mutual TLS and answer the ring
// inspection with every node's statistics (over the RPC's mutual TLS).
func TestTLSCluster(t *testing.T) {
	dir := makeCerts(t, "n1", "n2", "n3")
	cfg := func(name string, seeds ...string) Config {
		c := testConfig(t, name, seeds...)
		c.TLS = tlsFiles(dir, name)
		return c
	}
	n1 := startNode(t, cfg("n1"))
	n2 := startNode(t, cfg("n2", n1.Addrs().Gossip))
	n3 := startNode(t, cfg("n3", n1.Addrs().Gossip))
	nodes := []*runningNode{n1, n2, n3}
	waitConverged(t, nodes...)

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, dir)}}}
	t.Cleanup(hc.CloseIdleConnections)
	call := func(method, url string, body []byte) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, b
	}
	if code, body := call("PUT", "https://"+n1.Addrs().HTTP+"/v1/kv/k1?w=all", []byte("v1")); code != 204 {
		t.Fatalf("PUT = %d %s", code, body)
	}
	for _, n := range nodes {
		if code, body := call("GET", "https://"+n.Addrs().HTTP+"/v1/kv/k1?r=all", nil); code != 200 || string(body) != "v1" {
			t.Fatalf("GET on %s = %d %q", n.cfg.Node.Name, code, body)
		}
	}
	code, body := call("GET", "https://"+n2.Addrs().HTTP+"/v1/ring", nil)
	if code != 200 || strings.Count(string(body), `"has_stats":true`) != 3 {
		t.Fatalf("ring over HTTPS = %d %s, want stats of 3 nodes", code, body)
	}
	// A client certificate is optional on HTTPS; one of another CA is refused.
	other := makeCerts(t, "n1")
	foreign, err := tls.LoadX509KeyPair(filepath.Join(other, "client.crt"), filepath.Join(other, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	fc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, dir), Certificates: []tls.Certificate{foreign}}}}
	if resp, err := fc.Get("https://" + n1.Addrs().HTTP + "/v1/kv/k1"); err == nil {
		resp.Body.Close()
		t.Fatal("HTTPS served a client certificate of another CA")
	}
	own, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	oc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, dir), Certificates: []tls.Certificate{own}}}}
	if resp, err := oc.Get("https://" + n1.Addrs().HTTP + "/v1/kv/k1"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTPS with the cluster's client certificate: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Plain HTTP on the TLS port gets nothing served.
	if resp, err := http.Get("http://" + n1.Addrs().HTTP + "/v1/kv/k1"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plaintext GET served on the TLS port")
		}
	}

	rc, err := tls.Dial("tcp", n3.Addrs().RESP, &tls.Config{RootCAs: caPool(t, dir), ServerName: "n3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	resp := &respClient{conn: rc, rd: bufio.NewReader(rc)}
	if got := resp.do(t, "SET", "r1", "over-tls"); got != "OK" {
		t.Fatalf("SET over TLS = %v", got)
	}
	if got, ok := resp.do(t, "GET", "k1").([]byte); !ok || string(got) != "v1" {
		t.Fatalf("GET over TLS = %v", got)
	}
	for _, n := range nodes {
		for _, reason := range []string{"no_cert", "unknown_ca", "name", "handshake", "invalid_cert"} {
			if v := counterValue(t, n.metrics, metricRPCRefused, "reason", reason); v != 0 {
				t.Fatalf("%s refused %v RPC connections (%s) within one CA", n.cfg.Node.Name, v, reason)
			}
		}
	}
}

// TestTLSReload: new files are served after ReloadTLS and after the
// watcher sees them change; bad files leave the current certificate.
func TestTLSReload(t *testing.T) {
	dir := makeCerts(t, "n1")
	n := startNode(t, func() Config { c := testConfig(t, "n1"); c.TLS = tlsFiles(dir, "n1"); return c }())
	serial := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", n.Addrs().HTTP, &tls.Config{RootCAs: caPool(t, dir), ServerName: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}, Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := n.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	second := serial()
	if second == first {
		t.Fatal("ReloadTLS kept serving the old certificate")
	}
	// A key that does not match is refused; the node keeps its certificate.
	key := filepath.Join(dir, "n1.key")
	good, _ := os.ReadFile(key)
	other := makeCerts(t, "n1")
	bad, _ := os.ReadFile(filepath.Join(other, "n1.key"))
	if err := os.WriteFile(key, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.ReloadTLS(); err == nil {
		t.Fatal("mismatched key accepted")
	}
	if serial() != second {
		t.Fatal("a failed reload changed the certificate")
	}
	if err := os.WriteFile(key, good, 0o600); err != nil {
		t.Fatal(err)
	}
	// The node's own watcher may have tried the bad files too.
	if v := counterValue(t, n.metrics, metricTLSReloads, "result", "error"); v < 1 {
		t.Fatalf("failed reloads counted %v, want at least 1", v)
	}
}

// TestTLSWatchReloads: the watcher reloads after the files change.
func TestTLSWatchReloads(t *testing.T) {
	dir := makeCerts(t, "n1")
	nt, _ := testTLS(t, dir, "n1", "n1")
	nt.reloaded = make(chan error, 8)
	watching := make(chan struct{})
	nt.watching = func() { close(watching) }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); nt.watch(ctx) }()
	defer func() { cancel(); <-done }()
	<-watching
	before := nt.currentCert().Leaf.SerialNumber
	if _, err := WriteCerts(CertsConfig{Dir: dir, Nodes: []string{"n1"}, Force: true}); err != nil {
		t.Fatal(err)
	}
	// On a loaded machine the debounce may fall between the key and the
	// certificate being written: that reload fails, the next succeeds.
	deadline := time.After(30 * time.Second)
	for nt.currentCert().Leaf.SerialNumber.Cmp(before) == 0 {
		select {
		case err := <-nt.reloaded:
			if err != nil {
				t.Logf("reload: %v", err)
			}
		case <-deadline:
			t.Fatal("the new certificate was not loaded within 30s of rewriting the files")
		}
	}
}

func TestTLSConfigAllOrNone(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.TLS = TLSConfig{CertFile: "n1.crt", KeyFile: "n1.key"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "config tls:") {
		t.Fatalf("cert and key without ca: %v", err)
	}
	cfg.TLS.CAFile = "ca.crt"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// A certificate for another node stops New before anything is bound.
	dir := makeCerts(t, "n2")
	cfg.TLS = tlsFiles(dir, "n2")
	if _, err := New(cfg, testkit.Logger(t)); !errors.Is(err, ErrCertName) {
		t.Fatalf("New with n2's certificate as n1: %v, want ErrCertName", err)
	}
}

// TestRESPHandshakeDeadline: a client that opens a TLS RESP connection and
// never sends its hello is disconnected after respHandshakeTimeout, as on
// the HTTP and RPC ports; before, it held a descriptor and a goroutine for
// good (3,000 such connections held 3,000 descriptors, and the file limit
// was 20,000).
func TestRESPHandshakeDeadline(t *testing.T) {
	dir := makeCerts(t, "n1")
	cfg := testConfig(t, "n1")
	cfg.TLS = tlsFiles(dir, "n1")
	n1 := startNode(t, cfg)
	c, err := net.Dial("tcp", n1.Addrs().RESP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Far beyond the server's deadline: a read that times out here means
	// the server never let go.
	_ = c.SetReadDeadline(time.Now().Add(respHandshakeTimeout + 60*time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept a connection without a TLS handshake open for %s", respHandshakeTimeout+60*time.Second)
		}
	}
	// A client that does complete the handshake is served as before.
	rc, err := tls.Dial("tcp", n1.Addrs().RESP, &tls.Config{RootCAs: caPool(t, dir), ServerName: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	resp := &respClient{conn: rc, rd: bufio.NewReader(rc)}
	if got := resp.do(t, "PING"); got != "PONG" {
		t.Fatalf("PING over TLS = %v", got)
	}
}
