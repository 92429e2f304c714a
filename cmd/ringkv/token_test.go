package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/node"
)

// authNode answers like a node with tokens: "good" may do anything,
// "weak" only read, anything else is a 401. It records the bearers seen.
type authNode struct {
	mu      sync.Mutex // guards bearers
	bearers []string
}

func newAuthNode(t *testing.T) (*authNode, string) {
	t.Helper()
	f := &authNode{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		f.mu.Lock()
		f.bearers = append(f.bearers, auth)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case auth == "Bearer good" || (auth == "Bearer weak" && r.Method == http.MethodGet):
			if strings.HasPrefix(r.URL.Path, "/v1/kv/") {
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = io.WriteString(w, "value")
				return
			}
			_ = json.NewEncoder(w).Encode([]client.Member{{Name: "n1", Liveness: "alive", Status: "joined"}})
		case auth == "Bearer weak":
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(client.ErrorBody{Error: "token weak has role read; this request needs admin"})
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="ringkv"`)
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(client.ErrorBody{Error: "this node requires a token"})
		}
	}))
	t.Cleanup(srv.Close)
	return f, srv.Listener.Addr().String()
}

func (f *authNode) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bearers) == 0 {
		return "<none>"
	}
	return f.bearers[len(f.bearers)-1]
}

func TestClientToken(t *testing.T) {
	f, addr := newAuthNode(t)
	t.Setenv(tokenEnv, "")

	code, _, stderr := runCLI(t, "", "members", "--node", addr)
	if code != 1 || !strings.Contains(stderr, "not authorised") || !strings.Contains(stderr, tokenEnv) || !strings.Contains(stderr, "--token") {
		t.Errorf("members without a token: exit %d, stderr %q", code, stderr)
	}
	if got := f.last(); got != "" {
		t.Errorf("sent Authorization %q without a token", got)
	}

	code, stdout, stderr := runCLI(t, "", "get", "k", "--node", addr, "--token", "good")
	if code != 0 || stdout != "value\n" {
		t.Errorf("get --token good: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := f.last(); got != "Bearer good" {
		t.Errorf("sent Authorization %q, want Bearer good", got)
	}

	code, _, stderr = runCLI(t, "", "leave", "--node", addr, "--token", "weak")
	if code != 1 || !strings.Contains(stderr, "refused: token weak has role read; this request needs admin") {
		t.Errorf("leave with a read token: exit %d, stderr %q", code, stderr)
	}

	t.Setenv(tokenEnv, "good")
	for _, args := range [][]string{
		{"put", "k", "v"}, {"get", "k"}, {"delete", "k"}, {"members"}, {"ring", "--key", "k"}, {"remove", "n9"}, {"leave"},
	} {
		runCLI(t, "", append(args, "--node", addr)...)
		if got := f.last(); got != "Bearer good" {
			t.Errorf("%v with %s set: sent Authorization %q", args, tokenEnv, got)
		}
	}
	// The flag wins over the environment.
	runCLI(t, "", "get", "k", "--node", addr, "--token", "weak")
	if got := f.last(); got != "Bearer weak" {
		t.Errorf("--token weak with %s=good: sent %q", tokenEnv, got)
	}
	// The help never shows the token the environment holds.
	_, stdout, _ = runCLI(t, "", "get", "--help")
	if strings.Contains(stdout, "good") || !strings.Contains(stdout, "--token") {
		t.Errorf("get --help:\n%s", stdout)
	}
}

func TestBenchHTTPToken(t *testing.T) {
	f, addr := newAuthNode(t)
	t.Setenv(tokenEnv, "")
	code, rep, stderr := runBench(t, t.Context(), "--workload", "c", "--records", "10", "--ops", "20", "--clients", "1", "--nodes", addr, "--token", "good")
	if code != 0 || rep.Read == nil || rep.Read.OK != 20 {
		t.Fatalf("bench --token good: exit %d, report %+v, stderr %s", code, rep, stderr)
	}
	if got := f.last(); got != "Bearer good" {
		t.Errorf("bench sent Authorization %q", got)
	}
}

// TestRESPDriverAuth: a RESP bench connection authenticates first, and a
// refused AUTH is the operation's error.
func TestRESPDriverAuth(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				rd := bufio.NewReader(c)
				authed := false
				for {
					args, err := readCommand(rd)
					if err != nil || len(args) == 0 {
						return
					}
					reply := "-NOAUTH Authentication required.\r\n"
					switch {
					case strings.EqualFold(string(args[0]), "AUTH") && len(args) == 2 && string(args[1]) == "good":
						authed, reply = true, "+OK\r\n"
					case strings.EqualFold(string(args[0]), "AUTH"):
						reply = "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
					case authed:
						reply = "$-1\r\n"
					}
					if _, err := io.WriteString(c, reply); err != nil {
						return
					}
				}
			})
		}
	})
	addr := ln.Addr().String()

	d := newRESPDriver(addr, 5*time.Second)
	d.token = "good"
	defer d.close()
	if found, err := d.read(t.Context(), "k"); err != nil || found {
		t.Errorf("read after AUTH good: found %v, err %v", found, err)
	}
	bad := newRESPDriver(addr, 5*time.Second)
	bad.token = "bad"
	defer bad.close()
	if _, err := bad.read(t.Context(), "k"); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("read after AUTH bad: err %v, want WRONGPASS", err)
	}
	none := newRESPDriver(addr, 5*time.Second)
	defer none.close()
	if _, err := none.read(t.Context(), "k"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("read without a token: err %v, want NOAUTH", err)
	}
}

// TestLoadConfigTokens: auth.tokens, a list of maps in YAML, reaches the
// node's config, and a bad entry is refused naming it.
func TestLoadConfigTokens(t *testing.T) {
	dir := t.TempDir()
	hash := strings.Repeat("ab", 32)
	path := filepath.Join(dir, "auth.yaml")
	yaml := "auth:\n  tokens:\n    - name: app\n      token_sha256: " + hash + "\n      role: read-write\n" +
		"    - {name: ops, token_sha256: " + hash + "0, role: admin}\nsecurity:\n  protected_mode: false\nlisten:\n  admin: 127.0.0.1:0\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(path, nil); err == nil || !strings.Contains(err.Error(), "auth.tokens[1]") {
		t.Fatalf("65 hex digits: err = %v, want one naming auth.tokens[1]", err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(yaml, hash+"0", hash, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []node.TokenConfig{{Name: "app", TokenSHA256: hash, Role: "read-write"}, {Name: "ops", TokenSHA256: hash, Role: "admin"}}
	if diff := cmp.Diff(want, cfg.Auth.Tokens); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}
	if cfg.Security.ProtectedMode || cfg.Listen.Admin != "127.0.0.1:0" {
		t.Errorf("security %+v, listen.admin %q", cfg.Security, cfg.Listen.Admin)
	}
	t.Setenv("RINGKV_AUTH_TOKENS_FILE", filepath.Join(dir, "tokens"))
	t.Setenv(tokenEnv, "secret")
	cfg, err = loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.TokensFile != filepath.Join(dir, "tokens") {
		t.Errorf("RINGKV_AUTH_TOKENS_FILE: tokens_file = %q", cfg.Auth.TokensFile)
	}
	if unknown := lookupEnvKeys(); len(unknown) != 0 {
		t.Errorf("%s reported as an unknown variable: %v", tokenEnv, unknown)
	}
}
