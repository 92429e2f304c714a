package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTokensReloadOnSIGHUP: a running server re-reads auth.tokens_file on
// SIGHUP. The token taken out of the file is refused from then on, the one
// put in is accepted, and a tokens file that does not parse leaves the
// tokens in force, with an error logged.
func TestTokensReloadOnSIGHUP(t *testing.T) {
	deadline := testDeadline(t, 2*time.Minute)
	dir := t.TempDir()
	hash := func(tok string) string {
		h := sha256.Sum256([]byte(tok))
		return hex.EncodeToString(h[:])
	}
	const oldTok, newTok = "old-token-0123456789", "new-token-0123456789"
	tokens := filepath.Join(dir, "tokens")
	writeTokens := func(body string) {
		t.Helper()
		if err := os.WriteFile(tokens, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeTokens("ops admin " + hash(oldTok) + "\n")
	ports := freePorts(t, 4)
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	cfg := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(cfg, []byte("cluster:\n  replication: 1\nauth:\n  tokens_file: "+tokens+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "n1", "server", "--config", cfg, "--name", "n1", "--data-dir", filepath.Join(dir, "n1"),
		"--http", addr(0), "--resp", addr(1), "--rpc", addr(2), "--gossip", addr(3), "--bootstrap")
	s.waitReady(t, deadline)

	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	status := func(tok string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+s.addrs["http"]+"/v1/members", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET /v1/members: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(oldTok); got != http.StatusOK {
		t.Fatalf("old token before the reload: %d", got)
	}
	if got := status(newTok); got != http.StatusUnauthorized {
		t.Fatalf("new token before the reload: %d, want 401", got)
	}

	writeTokens("ops admin " + hash(newTok) + "\n")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, deadline, "the new token accepted", func() error {
		if got := status(newTok); got != http.StatusOK {
			return fmt.Errorf("new token: %d", got)
		}
		return nil
	})
	if got := status(oldTok); got != http.StatusUnauthorized {
		t.Fatalf("old token after the reload: %d, want 401", got)
	}

	writeTokens("ops admin\n")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, deadline, "the bad tokens file reported", func() error {
		if !strings.Contains(s.out.String(), "reload config auth.tokens_file") {
			return fmt.Errorf("no error logged yet")
		}
		return nil
	})
	if got := status(newTok); got != http.StatusOK {
		t.Fatalf("new token after a failed reload: %d, want 200 (the tokens in force stay)", got)
	}
	select {
	case <-s.done:
		t.Fatalf("the server exited: %v", s.err)
	default:
	}
}
