package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// securedCluster is three servers with everything security.md offers
// turned on: TLS on every port (mutual on RPC), a gossip key and tokens.
type securedCluster struct {
	dir       string
	certs     string            // "ringkv certs" output: ca.crt, n1..n3, client
	roots     *x509.CertPool    // the cluster CA
	gossipKey string            // base64, the only key of every node
	tokens    map[string]string // role -> token (read, read-write, admin)
	nodes     []*server
	dataDirs  map[string]string // node name -> its data directory
	gossip    map[string]string // node name -> gossip address
	hc        *http.Client
	deadline  time.Time // the test's: retries stop there
}

// randomHex returns n random bytes in hex.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startSecuredCluster makes certificates with the built binary, writes a
// config per node and waits until every node serves HTTPS /readyz.
func startSecuredCluster(t *testing.T, deadline time.Time) *securedCluster {
	t.Helper()
	c := &securedCluster{deadline: deadline, dir: t.TempDir(), dataDirs: map[string]string{}, gossip: map[string]string{}}
	c.certs = filepath.Join(c.dir, "certs")
	if out, err := exec.Command(binary, "certs", "--dir", c.certs, "--client", "n1", "n2", "n3").CombinedOutput(); err != nil {
		t.Fatalf("ringkv certs: %v\n%s", err, out)
	}
	pem, err := os.ReadFile(filepath.Join(c.certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	c.roots = x509.NewCertPool()
	if !c.roots.AppendCertsFromPEM(pem) {
		t.Fatal("ca.crt holds no certificate")
	}
	c.hc = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.roots}}}
	t.Cleanup(c.hc.CloseIdleConnections)

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	c.gossipKey = base64.StdEncoding.EncodeToString(key)
	c.tokens = map[string]string{"read": randomHex(t, 32), "read-write": randomHex(t, 32), "admin": randomHex(t, 32)}
	var tokenLines strings.Builder
	for _, tk := range []struct{ name, role string }{{"viewer", "read"}, {"app", "read-write"}, {"ops", "admin"}} {
		sum := sha256.Sum256([]byte(c.tokens[tk.role]))
		fmt.Fprintf(&tokenLines, "    - {name: %s, token_sha256: %s, role: %s}\n", tk.name, hex.EncodeToString(sum[:]), tk.role)
	}

	const n = 3
	ports := freePorts(t, 4*n)
	addr := func(i, k int) string { return "127.0.0.1:" + strconv.Itoa(ports[4*i+k]) }
	for i := range n {
		c.gossip[fmt.Sprintf("n%d", i+1)] = addr(i, 3)
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		var seeds []string
		for j := range n {
			if j != i {
				seeds = append(seeds, "  - "+addr(j, 3))
			}
		}
		cfg := fmt.Sprintf(`node:
  name: %s
listen:
  http: %s
  resp: %s
  rpc: %s
  gossip: %s
seeds:
%s
bootstrap: %t
cluster:
  replication: 3
gossip:
  profile: local
  keys:
    - %s
tls:
  cert_file: %s
  key_file: %s
  ca_file: %s
auth:
  tokens:
%s`, name, addr(i, 0), addr(i, 1), addr(i, 2), addr(i, 3), strings.Join(seeds, "\n"), i == 0, c.gossipKey,
			filepath.Join(c.certs, name+".crt"), filepath.Join(c.certs, name+".key"), filepath.Join(c.certs, "ca.crt"),
			tokenLines.String())
		path := filepath.Join(c.dir, name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c.dataDirs[name] = filepath.Join(c.dir, "data-"+name)
		c.nodes = append(c.nodes, startServer(t, name, "server", "--config", path, "--data-dir", c.dataDirs[name]))
	}
	for _, s := range c.nodes {
		select {
		case <-s.ready:
		case <-s.done:
			t.Fatalf("%s exited: %v\n%s", s.name, s.err, s.out)
		case <-time.After(time.Until(deadline)):
			t.Fatalf("%s printed no ready line\n%s", s.name, s.out)
		}
	}
	start := time.Now()
	for _, s := range c.nodes {
		eventually(t, deadline, s.name+" serves clients over HTTPS", func() error { return c.serving(s) })
		t.Logf("%s serves %s after the ready lines", s.name, time.Since(start).Round(time.Millisecond))
	}
	return c
}

// serving is nil when s runs and answers HTTPS /readyz with 200.
func (c *securedCluster) serving(s *server) error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited: %v", s.name, s.err)
	default:
	}
	code, _, body, err := c.do(http.MethodGet, s, "/readyz", "", nil, nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("%s /readyz: %d %s", s.name, code, body)
	}
	return err
}

// do sends one HTTPS request to s with the given bearer token (none when
// empty) and extra headers; it returns status, headers and at most 2 MiB of
// body.
func (c *securedCluster) do(method string, s *server, path, token string, hdr http.Header, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, "https://"+s.addrs["http"]+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	return resp.StatusCode, resp.Header, b, err
}

// retry is do, repeated while the answer is a 503 that changed nothing:
// any 503 to a read, and to a write only one refused before anything was
// stored (`"unavailable":true`). Under load the failure detector may
// suspect a live node for a moment, and a w=all or r=all request is then
// refused; any other 503 is returned, as a write it answers may have
// reached some replicas.
func (c *securedCluster) retry(t *testing.T, method string, s *server, path, token string, hdr http.Header, body []byte) (int, http.Header, []byte, error) {
	t.Helper()
	for i := 0; ; i++ {
		code, h, b, err := c.do(method, s, path, token, hdr, body)
		nothingDone := method == http.MethodGet || method == http.MethodHead || bytes.Contains(b, []byte(`"unavailable":true`))
		if err != nil || code != http.StatusServiceUnavailable || !nothingDone || i == 1000 || time.Now().After(c.deadline) {
			return code, h, b, err
		}
		if i == 0 {
			t.Logf("%s %.60s through %s: 503 %.200s; retrying", method, path, s.name, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tlsConfig is a client configuration trusting the cluster CA, presenting
// cert when given.
func (c *securedCluster) tlsConfig(cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: c.roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// metrics returns every sample of s's /metrics, keyed by the series as
// written (name and labels).
func (c *securedCluster) metrics(s *server) (map[string]float64, error) {
	code, _, body, err := c.do(http.MethodGet, s, "/metrics", c.tokens["read"], nil, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %d %s", s.name, code, body)
	}
	m, err := parseMetrics(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	return m, nil
}

// parseMetrics returns every sample of a /metrics answer, keyed by the
// series as written (name and labels).
func parseMetrics(body []byte) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// sumOf adds up every series of metric name whose labels contain each of
// labels (`reason="no_cert"` and so on).
func sumOf(m map[string]float64, name string, labels ...string) float64 {
	var sum float64
	for series, v := range m {
		base, rest, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// checkFileModes fails unless every file under dir is 0600 and every
// directory, dir included, 0700 (storage.file_mode's default).
func checkFileModes(t *testing.T, dir string) {
	t.Helper()
	files := 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Errorf("%s holds no files: nothing was checked", dir)
	}
}
