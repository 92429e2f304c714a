package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSFilesTooLarge: a --tls-ca, --tls-cert or --tls-key over its
// limit is refused unread, naming the option, before any request.
func TestTLSFilesTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, maxTLSFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small.pem")
	if err := os.WriteFile(small, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	for flag, args := range map[string][]string{
		"--tls-ca":   {"--tls-ca", big},
		"--tls-cert": {"--tls-cert", big, "--tls-key", small},
		"--tls-key":  {"--tls-cert", small, "--tls-key", big},
	} {
		args = append([]string{"get", "--node", "127.0.0.1:1"}, append(args, "k")...)
		code, _, stderr := runCLI(t, "", args...)
		if code == 0 || !strings.Contains(stderr, flag+":") || !strings.Contains(stderr, "larger than") {
			t.Errorf("%s too large: exit %d %q, want an error naming %s as too large", flag, code, stderr, flag)
		}
	}
}
