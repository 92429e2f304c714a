package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSCATooLarge: a --tls-ca over its limit is refused unread, naming
// the file, before any request.
func TestTLSCATooLarge(t *testing.T) {
	big := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(big, make([]byte, maxCAFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "", "get", "--node", "127.0.0.1:1", "--tls-ca", big, "k")
	if code == 0 || !strings.Contains(stderr, "--tls-ca") || !strings.Contains(stderr, "larger than") {
		t.Fatalf("exit %d %q, want an error naming --tls-ca as too large", code, stderr)
	}
}
