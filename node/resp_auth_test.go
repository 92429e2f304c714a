package node

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/testkit"
)

// startRESPGate serves a respServer over a fake store behind g, which
// newGate built with m.
func startRESPGate(t *testing.T, g *gate, m *metrics) string {
	t.Helper()
	info := func() respInfo { return respInfo{Node: "n1", RingMembers: 3, LiveMembers: 3} }
	s := newRESPServer(newFakeKV(), info, m, testLimits, testkit.Logger(t))
	s.gate = g
	return serveRESP(t, s)
}

// startRESPAuth serves RESP with the test tokens.
func startRESPAuth(t *testing.T) (string, *metrics) {
	t.Helper()
	m := newMetrics(metricSources{})
	return startRESPGate(t, newGate(testAuthenticator(t), true, "127.0.0.1:0", m, testkit.Logger(t)), m), m
}

// respAuthCommands are the commands tried before and after AUTH, with the
// role each needs; RoleNone runs without AUTH.
var respAuthCommands = []struct {
	args []string
	need Role
}{
	{[]string{"PING"}, RoleRead},
	{[]string{"ECHO", "x"}, RoleRead},
	{[]string{"SELECT", "0"}, RoleRead},
	{[]string{"INFO"}, RoleRead},
	{[]string{"CONFIG", "GET", "save"}, RoleRead},
	{[]string{"COMMAND"}, RoleRead},
	{[]string{"CLIENT", "SETNAME", "x"}, RoleRead},
	{[]string{"GET", "k"}, RoleRead},
	{[]string{"EXISTS", "k"}, RoleRead},
	{[]string{"MGET", "k", "j"}, RoleRead},
	{[]string{"SET", "k", "v"}, RoleReadWrite},
	{[]string{"DEL", "k"}, RoleReadWrite},
}

func TestRESPAuthEveryCommand(t *testing.T) {
	addr, m := startRESPAuth(t)
	want := map[string]float64{}
	for _, login := range []struct {
		name string
		auth []string // nil: no AUTH
		role Role
	}{
		{"none", nil, RoleNone},
		{"read", []string{"AUTH", tokRead}, RoleRead},
		{"read-write by name", []string{"AUTH", "writer", tokRW}, RoleReadWrite},
		{"admin as default", []string{"AUTH", "default", tokAdmin}, RoleAdmin},
		{"hello", []string{"HELLO", "2", "AUTH", "reader", tokRead}, RoleRead},
	} {
		t.Run(login.name, func(t *testing.T) {
			c := dialRESP(t, addr)
			if login.auth != nil {
				r := c.do(t, login.auth...)
				if _, isErr := r.(respError); isErr {
					t.Fatalf("%v: %v", login.auth, r)
				}
			}
			for _, cmd := range respAuthCommands {
				r := c.do(t, cmd.args...)
				e, isErr := r.(respError)
				switch {
				case login.role == RoleNone:
					want[refuseNoToken]++
					if e != respNoAuth {
						t.Errorf("%v before AUTH: %v, want %q", cmd.args, r, respNoAuth)
					}
				case login.role < cmd.need:
					want[refuseRole]++
					if !strings.HasPrefix(string(e), "NOPERM ") {
						t.Errorf("%v as %s: %v, want NOPERM", cmd.args, login.name, r)
					}
				case isErr:
					t.Errorf("%v as %s: %v", cmd.args, login.name, e)
				}
			}
		})
	}
	for _, reason := range refusalReasons {
		if got := refusedCount(t, m, "resp", reason); got != want[reason] {
			t.Errorf("refused{resp,%s} = %v, want %v", reason, got, want[reason])
		}
	}
}

func TestRESPAuthFailures(t *testing.T) {
	addr, m := startRESPAuth(t)
	c := dialRESP(t, addr)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"AUTH", "wrong"}, respWrongPass},
		{[]string{"AUTH", "reader", tokAdmin}, respWrongPass}, // another token's name
		{[]string{"AUTH", "nobody", tokAdmin}, respWrongPass},
		{[]string{"AUTH", strings.Repeat("t", maxTokenBytes+1)}, respWrongPass},
		{[]string{"AUTH", "a", "b", "c"}, "ERR syntax error"},
		{[]string{"AUTH"}, "ERR wrong number of arguments for 'auth' command"},
		{[]string{"HELLO"}, respHelloAuth},
		{[]string{"HELLO", "2"}, respHelloAuth},
		{[]string{"HELLO", "3"}, respNoProto},
		{[]string{"HELLO", "x"}, "ERR Protocol version is not an integer or out of range"},
		{[]string{"HELLO", "2", "AUTH", "root"}, "ERR Syntax error in HELLO option 'auth'"},
		{[]string{"HELLO", "2", "AUTH", "root", "wrong"}, respWrongPass},
		{[]string{"HELLO", "2", "FOO"}, "ERR Syntax error in HELLO option 'FOO'"},
		{[]string{"GET", "k"}, respNoAuth},
	} {
		if r := c.do(t, tc.args...); r != respError(tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, r, tc.want)
		}
	}
	if got := refusedCount(t, m, "resp", refuseBadToken); got != 4 {
		t.Errorf("refused{resp,unknown_token} = %v, want 4", got)
	}
	if got := refusedCount(t, m, "resp", refuseMalformed); got != 1 {
		t.Errorf("refused{resp,malformed} = %v, want 1", got)
	}
	// A failed AUTH after a good one keeps the good one, as in Redis.
	if r := c.do(t, "AUTH", tokRW); r != "OK" {
		t.Fatalf("AUTH: %v", r)
	}
	if r := c.do(t, "AUTH", "wrong"); r != respError(respWrongPass) {
		t.Fatalf("AUTH wrong: %v", r)
	}
	if r := c.do(t, "SET", "k", "v"); r != "OK" {
		t.Errorf("SET after a failed re-AUTH: %v", r)
	}
	// HELLO once authenticated answers the RESP2 map.
	r, ok := c.do(t, "HELLO", "2", "SETNAME", "app").([]any)
	if !ok || len(r) != 14 || string(r[0].([]byte)) != "server" || r[5] != int64(2) {
		t.Errorf("HELLO: %v", r)
	}
}

func TestRESPAuthOff(t *testing.T) {
	m := newMetrics(metricSources{})
	addr := startRESPGate(t, newGate(nil, true, "127.0.0.1:0", m, testkit.Logger(t)), m)
	c := dialRESP(t, addr)
	if r := c.do(t, "SET", "k", "v"); r != "OK" {
		t.Errorf("SET without tokens configured: %v", r)
	}
	if r := c.do(t, "AUTH", "x"); r != respError(respNoPasswd) {
		t.Errorf("AUTH without tokens configured: %v", r)
	}
	if r := c.do(t, "HELLO", "2", "AUTH", "default", "x"); r != respError(respNoPasswd) {
		t.Errorf("HELLO AUTH without tokens configured: %v", r)
	}
	if r, ok := c.do(t, "HELLO").([]any); !ok || len(r) != 14 {
		t.Errorf("HELLO without tokens configured: %v", r)
	}
}

func TestRESPProtectedMode(t *testing.T) {
	m := newMetrics(metricSources{})
	g := newGate(nil, true, "0.0.0.0:6380", m, testkit.Logger(t))
	g.loopbackPeer = func(string) bool { return false } // every peer is remote
	addr := startRESPGate(t, g, m)
	c := dialRESP(t, addr)
	r := c.do(t, "PING")
	e, _ := r.(respError)
	if !strings.HasPrefix(string(e), "DENIED ") || !strings.Contains(string(e), "security.protected_mode: false") {
		t.Fatalf("PING from a remote peer in protected mode: %v", r)
	}
	if err := c.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.rd.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("connection still open after DENIED: %v", err)
	}
	if got := refusedCount(t, m, "resp", refuseProtected); got != 1 {
		t.Errorf("refused{resp,protected_mode} = %v, want 1", got)
	}
}

// TestRESPProtectedModeServesLoopback uses the real peer check over a real
// loopback connection.
func TestRESPProtectedModeServesLoopback(t *testing.T) {
	m := newMetrics(metricSources{})
	addr := startRESPGate(t, newGate(nil, true, "0.0.0.0:6380", m, testkit.Logger(t)), m)
	c := dialRESP(t, addr)
	if r := c.do(t, "SET", "k", "v"); r != "OK" {
		t.Fatalf("SET from loopback in protected mode: %v", r)
	}
	if r := c.do(t, "GET", "k"); string(r.([]byte)) != "v" {
		t.Errorf("GET: %v", r)
	}
}
