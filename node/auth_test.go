package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/internal/testkit"

	"github.com/google/go-cmp/cmp"
)

// The test tokens, one per role.
const (
	tokRead  = "read-token-0123456789"
	tokRW    = "rw-token-0123456789"
	tokAdmin = "admin-token-0123456789"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// testAuthConfig has one token per role, named after it.
func testAuthConfig() AuthConfig {
	return AuthConfig{Tokens: []TokenConfig{
		{Name: "reader", TokenSHA256: sha(tokRead), Role: "read"},
		{Name: "writer", TokenSHA256: sha(tokRW), Role: "read-write"},
		{Name: "root", TokenSHA256: sha(tokAdmin), Role: "admin"},
	}}
}

func testAuthenticator(t *testing.T) *authenticator {
	t.Helper()
	a, err := newAuthenticator(testAuthConfig())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// refusedCount reads one series of metricAuthRefused.
func refusedCount(t *testing.T, m *metrics, api, reason string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metricAuthRefused {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["api"] == api && labels["reason"] == reason {
				return s.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{api=%q,reason=%q}", metricAuthRefused, api, reason)
	return 0
}

func TestParseRole(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Role
		err  bool
	}{
		{"read", RoleRead, false}, {"read-write", RoleReadWrite, false}, {"admin", RoleAdmin, false},
		{"Admin", RoleNone, true}, {"", RoleNone, true}, {"write", RoleNone, true},
	} {
		got, err := ParseRole(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseRole(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
	if !(RoleAdmin > RoleReadWrite && RoleReadWrite > RoleRead && RoleRead > RoleNone) {
		t.Error("roles do not nest")
	}
}

func TestAuthenticatorLookup(t *testing.T) {
	a := testAuthenticator(t)
	for _, tc := range []struct {
		user, token string
		want        string // token name, "" for no match
	}{
		{"", tokRead, "reader"},
		{"", tokAdmin, "root"},
		{"root", tokAdmin, "root"},
		{"reader", tokAdmin, ""}, // another name's token
		{"nobody", tokAdmin, ""},
		{"", "wrong", ""},
		{"", "", ""},
		{"", tokRead + "x", ""},
	} {
		got, ok := a.lookup(tc.user, []byte(tc.token))
		if (tc.want != "") != ok || got.name != tc.want {
			t.Errorf("lookup(%q, %q) = %q, %v; want %q", tc.user, tc.token, got.name, ok, tc.want)
		}
	}
}

func TestNewAuthenticatorErrors(t *testing.T) {
	good := TokenConfig{Name: "a", TokenSHA256: sha("x"), Role: "read"}
	for _, tc := range []struct {
		name   string
		tokens []TokenConfig
		want   string
	}{
		{"none", nil, "no auth tokens"},
		{"bad role", []TokenConfig{{Name: "a", TokenSHA256: sha("x"), Role: "root"}}, "role must be"},
		{"short hash", []TokenConfig{{Name: "a", TokenSHA256: "abcd", Role: "read"}}, "64 hex digits"},
		{"not hex", []TokenConfig{{Name: "a", TokenSHA256: strings.Repeat("z", 64), Role: "read"}}, "64 hex digits"},
		{"no name", []TokenConfig{{TokenSHA256: sha("x"), Role: "read"}}, "name must be"},
		{"space in name", []TokenConfig{{Name: "a b", TokenSHA256: sha("x"), Role: "read"}}, "name must be"},
		{"duplicate", []TokenConfig{good, good}, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newAuthenticator(AuthConfig{Tokens: tc.tokens})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTokensFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	body := "# operators\n\nops admin " + sha(tokAdmin) + "\n  app   read-write   " + sha(tokRW) + "  \n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := newAuthenticator(AuthConfig{Tokens: testAuthConfig().Tokens[:1], TokensFile: path})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range a.set.Load().tokens {
		got = append(got, tk.name+"="+tk.role.String())
	}
	if diff := cmp.Diff([]string{"reader=read", "ops=admin", "app=read-write"}, got); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("ops admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newAuthenticator(AuthConfig{TokensFile: bad}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short line: err = %v, want one naming line 1", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxTokensFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newAuthenticator(AuthConfig{TokensFile: big}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: err = %v", err)
	}
	if _, err := newAuthenticator(AuthConfig{TokensFile: filepath.Join(dir, "absent")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: err = %v, want ErrNotExist", err)
	}
}

func TestConfigValidateTokens(t *testing.T) {
	c := DefaultConfig()
	c.Auth = testAuthConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid tokens: %v", err)
	}
	c.Auth.Tokens[1].Role = "writer"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "auth.tokens[1]") {
		t.Errorf("bad role: err = %v, want one naming auth.tokens[1]", err)
	}
	c = DefaultConfig()
	c.Listen.Admin = "nohost"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "listen.admin") {
		t.Errorf("bad listen.admin: err = %v", err)
	}
	if !DefaultConfig().Security.ProtectedMode {
		t.Error("protected mode is off by default")
	}
}

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		token  string
		reason string
	}{
		{"absent", nil, "", refuseNoToken},
		{"ok", []string{"Bearer abc"}, "abc", ""},
		{"scheme case", []string{"bearer abc"}, "abc", ""},
		{"basic", []string{"Basic YWJj"}, "", refuseMalformed},
		{"empty token", []string{"Bearer "}, "", refuseMalformed},
		{"no space", []string{"Bearerabc"}, "", refuseMalformed},
		{"twice", []string{"Bearer a", "Bearer b"}, "", refuseMalformed},
		{"too long", []string{"Bearer " + strings.Repeat("a", maxTokenBytes+1)}, "", refuseMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add("Authorization", v)
			}
			tok, reason := bearer(h)
			if tok != tc.token || reason != tc.reason {
				t.Errorf("bearer = %q, %q; want %q, %q", tok, reason, tc.token, tc.reason)
			}
		})
	}
}

// newAuthAPI serves an httpAPI over fakes with the test tokens, on the
// routes of set, with pprof on.
func newAuthAPI(t *testing.T, set routeSet) (*httptest.Server, *metrics) {
	t.Helper()
	kv := newFakeKV()
	adm := &fakeAdmin{self: "n1", members: map[string]client.Member{
		"n1": {Name: "n1", Liveness: "alive", Status: "joined"},
		"n2": {Name: "n2", Liveness: "alive", Status: "joined"},
	}}
	m := newMetrics(metricSources{})
	api := &httpAPI{kv: kv, admin: adm, keyring: fakeKeyring{}, metrics: m, limits: testLimits, n: 3, log: testkit.Logger(t), pprof: true,
		gate: newGate(testAuthenticator(t), true, "127.0.0.1:0", m, testkit.Logger(t))}
	srv := httptest.NewServer(api.handlerFor(set))
	t.Cleanup(srv.Close)
	return srv, m
}

// authRoutes are every HTTP route with the role it needs (RoleNone: open).
var authRoutes = []struct {
	method, path string
	need         Role
}{
	{http.MethodGet, "/v1/kv/k", RoleRead},
	{http.MethodHead, "/v1/kv/k", RoleRead},
	{http.MethodPut, "/v1/kv/k", RoleReadWrite},
	{http.MethodDelete, "/v1/kv/k", RoleReadWrite},
	{http.MethodGet, "/v1/members", RoleRead},
	{http.MethodGet, "/v1/ring", RoleRead},
	{http.MethodGet, "/v1/stats", RoleRead},
	{http.MethodGet, "/v1/aae", RoleRead},
	{http.MethodGet, "/v1/ring/partitions", RoleRead},
	{http.MethodGet, "/v1/versions?key=k", RoleRead},
	{http.MethodGet, "/metrics", RoleRead},
	{http.MethodPost, "/v1/leave", RoleAdmin},
	{http.MethodPost, "/v1/remove/n2", RoleAdmin},
	{http.MethodPut, "/v1/transfer/rate?mb=5", RoleAdmin},
	{http.MethodGet, "/v1/gossip/keys", RoleAdmin},
	{http.MethodPut, "/v1/gossip/keys", RoleAdmin},
	{http.MethodGet, "/debug/pprof/", RoleAdmin},
	{http.MethodGet, "/debug/pprof/cmdline", RoleAdmin},
	{http.MethodGet, "/ui", RoleNone},
	{http.MethodGet, "/ui/", RoleNone},
	{http.MethodGet, "/v1/whoami", RoleNone},
	{http.MethodGet, "/healthz", RoleNone},
	{http.MethodGet, "/readyz", RoleNone},
}

// authCallers are the credentials each route is tried with.
var authCallers = []struct {
	name   string
	header string // the Authorization header; "" sends none
	role   Role   // what the header is worth
	reason string // the refusal reason when it is not enough
}{
	{"none", "", RoleNone, refuseNoToken},
	{"malformed", "Basic " + tokAdmin, RoleNone, refuseMalformed},
	{"unknown", "Bearer not-a-token", RoleNone, refuseBadToken},
	{"read", "Bearer " + tokRead, RoleRead, refuseRole},
	{"read-write", "Bearer " + tokRW, RoleReadWrite, refuseRole},
	{"admin", "Bearer " + tokAdmin, RoleAdmin, refuseRole},
}

func TestHTTPAuthEveryRoute(t *testing.T) {
	srv, m := newAuthAPI(t, routesAll)
	want := map[string]float64{}
	for _, rt := range authRoutes {
		for _, c := range authCallers {
			t.Run(rt.method+" "+rt.path+" as "+c.name, func(t *testing.T) {
				hdr := map[string]string{}
				if c.header != "" {
					hdr["Authorization"] = c.header
				}
				var body []byte
				if rt.method == http.MethodPut {
					body = []byte("v")
				}
				status, h, b := do(t, rt.method, srv.URL+rt.path, body, hdr)
				switch {
				case rt.need == RoleNone || c.role >= rt.need:
					if status == http.StatusUnauthorized || status == http.StatusForbidden {
						t.Fatalf("status %d, want the route's own answer; body %s", status, b)
					}
					// whoami answers every caller, but counts a token
					// that is malformed or unknown as every route does.
					if rt.path == "/v1/whoami" && (c.reason == refuseMalformed || c.reason == refuseBadToken) {
						want[c.reason]++
					}
				case c.role == RoleNone:
					want[c.reason]++
					if status != http.StatusUnauthorized {
						t.Fatalf("status %d, want 401; body %s", status, b)
					}
					if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer ") {
						t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
					}
					if rt.method != http.MethodHead && decodeError(t, b).Error == "" {
						t.Error("401 without an error message")
					}
				default:
					want[refuseRole]++
					if status != http.StatusForbidden {
						t.Fatalf("status %d, want 403; body %s", status, b)
					}
					if rt.method != http.MethodHead {
						if e := decodeError(t, b).Error; !strings.Contains(e, "needs "+rt.need.String()) {
							t.Errorf("403 error %q does not name the role needed", e)
						}
					}
				}
			})
		}
	}
	for _, reason := range refusalReasons {
		if got := refusedCount(t, m, "http", reason); got != want[reason] {
			t.Errorf("refused{http,%s} = %v, want %v", reason, got, want[reason])
		}
	}
}

func TestHTTPAuthOffServesAll(t *testing.T) {
	m := newMetrics(metricSources{})
	adm := &fakeAdmin{self: "n1", members: map[string]client.Member{}}
	api := &httpAPI{kv: newFakeKV(), admin: adm, metrics: m, limits: testLimits, n: 3, log: testkit.Logger(t),
		gate: newGate(nil, true, "127.0.0.1:0", m, testkit.Logger(t))}
	srv := httptest.NewServer(api.handler())
	t.Cleanup(srv.Close)
	for _, p := range []string{"/v1/members", "/metrics", "/v1/kv/k"} {
		if status, _, b := do(t, http.MethodGet, srv.URL+p, nil, nil); status == http.StatusUnauthorized || status == http.StatusForbidden {
			t.Errorf("GET %s without tokens configured: %d %s", p, status, b)
		}
	}
}

func TestHTTPAdminListenerSplit(t *testing.T) {
	clientSrv, _ := newAuthAPI(t, routesClient)
	admin, _ := newAuthAPI(t, routesAdmin)
	adminTok := map[string]string{"Authorization": "Bearer " + tokAdmin}
	// A 404 is either the mux's (no such route on this listener) or a
	// route's own (the key is absent): served tells which is wanted.
	const (
		noRoute = false
		served  = true
	)
	for _, tc := range []struct {
		srv    *httptest.Server
		method string
		path   string
		hdr    map[string]string
		want   int
		served bool // for a 404: the route answered, not the mux
	}{
		{clientSrv, http.MethodGet, "/v1/members", adminTok, http.StatusNotFound, noRoute},
		{clientSrv, http.MethodGet, "/metrics", adminTok, http.StatusNotFound, noRoute},
		{clientSrv, http.MethodPost, "/v1/leave", adminTok, http.StatusNotFound, noRoute},
		{clientSrv, http.MethodGet, "/debug/pprof/", adminTok, http.StatusNotFound, noRoute},
		{clientSrv, http.MethodGet, "/v1/kv/k", adminTok, http.StatusNotFound, served}, // the fake has no key k
		{clientSrv, http.MethodGet, "/healthz", nil, http.StatusOK, served},
		{admin, http.MethodGet, "/metrics", nil, http.StatusOK, served},
		{admin, http.MethodGet, "/v1/members", nil, http.StatusUnauthorized, served},
		{admin, http.MethodGet, "/v1/members", adminTok, http.StatusOK, served},
		{admin, http.MethodGet, "/debug/pprof/cmdline", adminTok, http.StatusOK, served},
		{admin, http.MethodGet, "/v1/kv/k", adminTok, http.StatusNotFound, noRoute},
		{admin, http.MethodGet, "/readyz", nil, http.StatusOK, served},
	} {
		name := "client"
		if tc.srv == admin {
			name = "admin"
		}
		status, hdr, b := do(t, tc.method, tc.srv.URL+tc.path, nil, tc.hdr)
		if status != tc.want {
			t.Errorf("%s listener %s %s: %d, want %d; body %s", name, tc.method, tc.path, status, tc.want, b)
			continue
		}
		if status != http.StatusNotFound {
			continue
		}
		// The key route answers a JSON error; the mux answers text.
		var eb client.ErrorBody
		isRoute := strings.HasPrefix(hdr.Get("Content-Type"), "application/json") &&
			json.Unmarshal(b, &eb) == nil && eb.Error == "not found"
		if isRoute != tc.served {
			t.Errorf("%s listener %s %s: 404 from the route %v, want %v; body %q", name, tc.method, tc.path, isRoute, tc.served, b)
		}
	}
	// The kv route of the client listener is really served, not a 404 of
	// the mux: a PUT lands.
	if status, _, b := do(t, http.MethodPut, clientSrv.URL+"/v1/kv/k", []byte("v"), map[string]string{"Authorization": "Bearer " + tokRW}); status != http.StatusNoContent {
		t.Errorf("PUT on the client listener: %d %s", status, b)
	}
}

func TestProtectedModeDecision(t *testing.T) {
	for _, tc := range []struct {
		on, tokens bool
		addr       string
		want       bool
	}{
		{true, false, "127.0.0.1:8001", false},
		{true, false, "[::1]:8001", false},
		{true, false, "localhost:8001", false},
		{true, false, "0.0.0.0:8001", true},
		{true, false, "[::]:8001", true},
		{true, false, ":8001", true},
		{true, false, "10.0.0.5:8001", true},
		{true, false, "db.example:8001", true},
		{true, true, "0.0.0.0:8001", false},   // tokens configured
		{false, false, "0.0.0.0:8001", false}, // turned off
	} {
		if got := protectedMode(tc.on, tc.tokens, tc.addr); got != tc.want {
			t.Errorf("protectedMode(on=%v, tokens=%v, %q) = %v, want %v", tc.on, tc.tokens, tc.addr, got, tc.want)
		}
	}
	for addr, want := range map[string]bool{
		"127.0.0.1:5": true, "127.9.9.9:5": true, "[::1]:5": true,
		"10.0.0.1:5": false, "[::ffff:10.0.0.1]:5": false, "localhost:5": false, "garbage": false, "": false,
	} {
		if got := isLoopbackPeer(addr); got != want {
			t.Errorf("isLoopbackPeer(%q) = %v, want %v", addr, got, want)
		}
	}
}

// protectedAPI serves every route with protected mode on (the listener
// address is a wildcard, as in production) and no tokens; remote decides
// what the gate takes the peer for.
func protectedAPI(t *testing.T, remote bool) (*httptest.Server, *metrics) {
	t.Helper()
	m := newMetrics(metricSources{})
	g := newGate(nil, true, "0.0.0.0:8001", m, testkit.Logger(t))
	if !g.protected {
		t.Fatal("protected mode off for a wildcard listener without tokens")
	}
	if remote {
		g.loopbackPeer = func(string) bool { return false }
	}
	adm := &fakeAdmin{self: "n1", members: map[string]client.Member{}}
	api := &httpAPI{kv: newFakeKV(), admin: adm, metrics: m, limits: testLimits, n: 3, log: testkit.Logger(t), gate: g}
	srv := httptest.NewServer(api.handler())
	t.Cleanup(srv.Close)
	return srv, m
}

func TestHTTPProtectedModeRefusesRemote(t *testing.T) {
	srv, m := protectedAPI(t, true)
	for _, p := range []string{"/v1/kv/k", "/v1/members", "/metrics"} {
		status, _, b := do(t, http.MethodGet, srv.URL+p, nil, nil)
		if status != http.StatusForbidden {
			t.Fatalf("GET %s from a remote peer: %d %s, want 403", p, status, b)
		}
		if e := decodeError(t, b).Error; !strings.Contains(e, "auth.tokens") || !strings.Contains(e, "security.protected_mode: false") {
			t.Errorf("refusal %q does not say how to configure auth or turn protected mode off", e)
		}
	}
	if status, _, _ := do(t, http.MethodGet, srv.URL+"/healthz", nil, nil); status != http.StatusOK {
		t.Errorf("/healthz in protected mode: %d, want 200 (probes stay open)", status)
	}
	if got := refusedCount(t, m, "http", refuseProtected); got != 3 {
		t.Errorf("refused{http,protected_mode} = %v, want 3", got)
	}
}

// TestHTTPProtectedModeServesLoopback: the real peer check, over a real
// loopback connection, lets the client in.
func TestHTTPProtectedModeServesLoopback(t *testing.T) {
	srv, m := protectedAPI(t, false)
	if status, _, b := do(t, http.MethodPut, srv.URL+"/v1/kv/k", []byte("v"), nil); status != http.StatusNoContent {
		t.Fatalf("PUT from loopback in protected mode: %d %s", status, b)
	}
	if got := refusedCount(t, m, "http", refuseProtected); got != 0 {
		t.Errorf("refused{http,protected_mode} = %v, want 0", got)
	}
}

// fakeKeyring answers the gossip key routes without gossip.
type fakeKeyring struct{}

func (fakeKeyring) GossipKeyring() gossip.KeyringStatus { return gossip.KeyringStatus{} }
func (fakeKeyring) SetGossipKeys([][]byte) error        { return gossip.ErrNoEncryption }
