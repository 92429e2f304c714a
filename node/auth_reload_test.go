package node

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
)

const tokNew = "new-token-0123456789"

// TestReloadTokensRESP: a reload takes effect for RESP sessions logged in
// before it, at their next command: a removed token's session is logged
// out (NOAUTH), so is one whose token's hash was replaced (its old token
// is refused from then on, the new one accepted), and one whose token
// changed role gets the new role; a token added is accepted. HTTP's gate
// shares the authenticator and sees the same set.
func TestReloadTokensRESP(t *testing.T) {
	a := testAuthenticator(t)
	n := &Node{auth: a, log: testkit.Logger(t)}
	m := newMetrics(metricSources{})
	addr := startRESPGate(t, newGate(a, true, "127.0.0.1:0", m, testkit.Logger(t)), m)
	httpGate := newGate(a, true, "127.0.0.1:0", m, testkit.Logger(t))

	reader, writer, root := dialRESP(t, addr), dialRESP(t, addr), dialRESP(t, addr)
	for c, tok := range map[*respClient]string{reader: tokRead, writer: tokRW, root: tokAdmin} {
		if got := c.do(t, "AUTH", tok); got != "OK" {
			t.Fatalf("AUTH: %v", got)
		}
	}
	if got := writer.do(t, "SET", "k", "v"); got != "OK" {
		t.Fatalf("SET as writer before the reload: %v", got)
	}

	cfg := DefaultConfig()
	cfg.Auth = AuthConfig{Tokens: []TokenConfig{
		{Name: "writer", TokenSHA256: sha(tokRW), Role: "read"},       // demoted
		{Name: "root", TokenSHA256: sha(tokNew), Role: "admin"},       // token replaced
		{Name: "ops", TokenSHA256: sha(tokRead + "x"), Role: "admin"}, // added
	}} // reader removed
	if err := n.ReloadTokens(cfg); err != nil {
		t.Fatal(err)
	}

	wantErr := func(c *respClient, prefix string, args ...string) {
		t.Helper()
		got := c.do(t, args...)
		if e, ok := got.(respError); !ok || !strings.HasPrefix(string(e), prefix) {
			t.Fatalf("%v after the reload: %v, want %s...", args, got, prefix)
		}
	}
	// Pipelined: both commands are checked against the new set.
	if _, err := io.WriteString(reader.conn, "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := readReply(reader.rd); err != nil || !strings.HasPrefix(fmt.Sprint(got), "NOAUTH") {
			t.Fatalf("pipelined command of the removed token's session: %v, %v; want NOAUTH", got, err)
		}
	}
	wantErr(root, "NOAUTH", "HELLO", "2")
	wantErr(writer, "NOPERM", "SET", "k", "v2")
	if got, ok := writer.do(t, "GET", "k").([]byte); !ok || string(got) != "v" {
		t.Fatalf("GET as the demoted writer: %v", got)
	}
	wantErr(root, "WRONGPASS", "AUTH", "root", tokAdmin)
	if got := root.do(t, "AUTH", "root", tokNew); got != "OK" {
		t.Fatalf("AUTH with the replaced token: %v", got)
	}
	if got := root.do(t, "SET", "k", "v3"); got != "OK" {
		t.Fatalf("SET as root with its new token: %v", got)
	}
	wantErr(reader, "WRONGPASS", "AUTH", tokRead)
	if got := dialRESP(t, addr).do(t, "AUTH", "ops", tokRead+"x"); got != "OK" {
		t.Fatalf("AUTH with the added token: %v", got)
	}
	// Logged out, the session is held to the limits before AUTH again:
	// a command larger than they allow is refused from its header on.
	expectRefusedAndClosed(t, reader, fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n", respUnauthBytes+1),
		"ERR Protocol error: unauthenticated command is larger than")
	if role, _ := httpGate.authenticate("", []byte(tokRead)); role != RoleNone {
		t.Fatalf("HTTP: the removed token has role %v", role)
	}
	if role, name := httpGate.authenticate("", []byte(tokNew)); role != RoleAdmin || name != "root" {
		t.Fatalf("HTTP: the replaced token gives %v %q, want admin root", role, name)
	}
}

// TestReloadTokensRefused: a reload that cannot apply leaves the tokens
// in force, and one that changes nothing keeps their generation.
func TestReloadTokensRefused(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "tokens")
	if err := os.WriteFile(bad, []byte("ops admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withTokens := DefaultConfig()
	withTokens.Auth = testAuthConfig()
	for _, tc := range []struct {
		name    string
		started *authenticator // nil: the node started without tokens
		auth    AuthConfig
		want    string // in the error; "" for none
	}{
		{"off stays off", nil, AuthConfig{}, ""},
		{"turning on", nil, testAuthConfig(), "turning authentication on takes a restart"},
		{"bad file while off", nil, AuthConfig{TokensFile: bad}, "line 1"},
		{"turning off", testAuthenticator(t), AuthConfig{}, "turning authentication off takes a restart"},
		{"bad file", testAuthenticator(t), AuthConfig{Tokens: testAuthConfig().Tokens, TokensFile: bad}, "line 1"},
		{"missing file", testAuthenticator(t), AuthConfig{TokensFile: filepath.Join(dir, "none")}, "tokens_file"},
		{"unchanged", testAuthenticator(t), testAuthConfig(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &Node{auth: tc.started, log: testkit.Logger(t)}
			cfg := DefaultConfig()
			cfg.Auth = tc.auth
			err := n.ReloadTokens(cfg)
			if (err != nil) != (tc.want != "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("ReloadTokens = %v, want an error containing %q", err, tc.want)
			}
			if tc.started == nil {
				return
			}
			if gen := tc.started.generation(); gen != 1 {
				t.Fatalf("generation %d after the reload, want 1: the set in force changed", gen)
			}
			if tok, ok := tc.started.lookup("", []byte(tokAdmin)); !ok || tok.name != "root" {
				t.Fatalf("the admin token no longer works: %v %v", tok, ok)
			}
		})
	}
}
