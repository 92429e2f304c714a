package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTLSCluster runs three servers with certificates from "ringkv certs":
// HTTPS and the CLI over TLS work, replication crosses mutual TLS, a node
// takes a re-issued certificate on SIGHUP without a restart (its files are
// symlinks from a directory that does not change, so its file watcher sees
// nothing and only the signal can reload them), new connections between
// the nodes use it, and plaintext is refused.
func TestTLSCluster(t *testing.T) {
	deadline := testDeadline(t, 3*time.Minute)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if out, err := exec.Command(binary, "certs", "--dir", certs, "--client", "n1", "n2", "n3").CombinedOutput(); err != nil {
		t.Fatalf("ringkv certs: %v\n%s", err, out)
	}
	pem, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer hc.CloseIdleConnections()
	do := func(method, url string, body []byte) (int, []byte, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, b, err
	}

	// The dev cluster's layout on free ports, with a tls section each.
	const n = 3
	ports := freePorts(t, 4*n)
	var pairs []string
	for i := range n {
		for k, base := range []int{8001, 6380, 7001, 9001} {
			pairs = append(pairs, "127.0.0.1:"+strconv.Itoa(base+i), "127.0.0.1:"+strconv.Itoa(ports[4*i+k]))
		}
	}
	mapping := strings.NewReplacer(pairs...)
	servers := make([]*server, n)
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		cfg := devConfigFor(t, i+1, mapping, dir)
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		files := certs
		if name == "n1" {
			files = filepath.Join(dir, "n1-tls")
			if err := os.Mkdir(files, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"n1.crt", "n1.key", "ca.crt"} {
				if err := os.Symlink(filepath.Join(certs, f), filepath.Join(files, f)); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, err = fmt.Fprintf(f, "\ntls:\n  cert_file: %s\n  key_file: %s\n  ca_file: %s\n",
			filepath.Join(files, name+".crt"), filepath.Join(files, name+".key"), filepath.Join(files, "ca.crt"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = startServer(t, name, "server", "--config", cfg, "--data-dir", filepath.Join(dir, name))
	}
	for _, s := range servers {
		select {
		case <-s.ready:
		case <-s.done:
			t.Fatalf("%s exited: %v\n%s", s.name, s.err, s.out)
		case <-time.After(time.Until(deadline)):
			t.Fatalf("%s not ready\n%s", s.name, s.out)
		}
		eventually(t, deadline, s.name+" serves clients over HTTPS", func() error {
			code, body, err := do("GET", "https://"+s.addrs["http"]+"/readyz", nil)
			if err == nil && code != 200 {
				err = fmt.Errorf("readyz %d %s", code, body)
			}
			return err
		})
	}
	n1, n2, n3 := servers[0], servers[1], servers[2]

	eventually(t, deadline, "a write with w=all over mutual TLS", func() error {
		code, body, err := do("PUT", "https://"+n1.addrs["http"]+"/v1/kv/k?w=all", []byte("secret"))
		if err == nil && code != 204 {
			err = fmt.Errorf("PUT %d %s", code, body)
		}
		return err
	})
	for _, s := range []*server{n2, n3} {
		if code, body, err := do("GET", "https://"+s.addrs["http"]+"/v1/kv/k?r=all", nil); err != nil || code != 200 || string(body) != "secret" {
			t.Fatalf("GET on %s: %d %q %v", s.name, code, body, err)
		}
	}
	out, err := exec.Command(binary, "get", "--node", n3.addrs["http"], "--tls-dir", certs, "k").Output()
	if err != nil || strings.TrimSpace(string(out)) != "secret" {
		t.Fatalf("ringkv get --tls-dir: %q %v", out, err)
	}
	if code, _, err := httpDo("GET", "http://"+n1.addrs["http"]+"/v1/kv/k", nil); err == nil && code == 200 {
		t.Fatal("plaintext HTTP served by a TLS node")
	}

	serial := func() string {
		c, err := tls.Dial("tcp", n1.addrs["http"], &tls.Config{RootCAs: roots, ServerName: "n1"})
		if err != nil {
			return "dial: " + err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	reloads := func(result string) string {
		_, body, err := do("GET", "https://"+n1.addrs["http"]+"/metrics", nil)
		if err != nil {
			t.Fatalf("n1 /metrics: %v", err)
		}
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, `ringkv_tls_reloads_total{result="`+result+`"} `); ok {
				return v
			}
		}
		return "0"
	}
	before := serial()
	if out, err := exec.Command(binary, "certs", "--dir", certs, "--force", "n1").CombinedOutput(); err != nil {
		t.Fatalf("re-issue n1: %v\n%s", err, out)
	}
	if err := n1.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, deadline, "n1 serves its re-issued certificate", func() error {
		select {
		case <-n1.done:
			t.Fatalf("n1 exited on SIGHUP: %v\n%s", n1.err, n1.out)
		default:
		}
		if s := serial(); s == before || strings.HasPrefix(s, "dial: ") {
			return fmt.Errorf("serial %s, before %s", s, before)
		}
		return nil
	})
	if ok, bad := reloads("ok"), reloads("error"); ok != "1" || bad != "0" {
		t.Fatalf("n1 reloads: ok=%s error=%s, want the one SIGHUP's", ok, bad)
	}
	if !strings.Contains(n1.out.String(), "SIGHUP: reloading tls files") {
		t.Fatalf("n1 did not log the SIGHUP:\n%s", n1.out)
	}
	// Peers talk to n1 under its new certificate on new connections: a
	// restarted n2 dials n1 afresh, and n1 dials the new n2 process.
	if code := n2.stop(t, 30*time.Second); code != 0 {
		t.Fatalf("n2 exited %d\n%s", code, n2.out)
	}
	n2 = startServer(t, n2.name, n2.args...)
	servers[1] = n2
	select {
	case <-n2.ready:
	case <-n2.done:
		t.Fatalf("restarted n2 exited: %v\n%s", n2.err, n2.out)
	case <-time.After(time.Until(deadline)):
		t.Fatalf("restarted n2 not ready\n%s", n2.out)
	}
	for _, s := range []*server{n2, n1} {
		eventually(t, deadline, "a write with w=all through "+s.name+" after the rotation", func() error {
			code, body, err := do("PUT", "https://"+s.addrs["http"]+"/v1/kv/k2?w=all", []byte("v2"))
			if err == nil && code != 204 {
				err = fmt.Errorf("PUT %d %s", code, body)
			}
			return err
		})
	}
	for _, s := range servers {
		if code := s.stop(t, 30*time.Second); code != 0 {
			t.Fatalf("%s exited %d\n%s", s.name, code, s.out)
		}
	}
}
