package node

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/ringkv/ringkv/internal/atomicfile"
	"github.com/ringkv/ringkv/internal/vfs"
)

// Authentication of clients and operators (docs/security.md): bearer
// tokens with nested roles on HTTP, the same tokens as passwords on RESP.
// The config holds only SHA-256 hashes of the tokens, so that a leaked
// config file or a process listing gives nobody a token.

// Role is what a token may do. Roles nest: each includes the ones below it.
type Role int

// The roles, weakest first. RoleNone is the role of a request that
// presented no valid token; it is never configured.
const (
	RoleNone Role = iota
	RoleRead
	RoleReadWrite
	RoleAdmin
)

// String returns the role as it is spelled in the config.
func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleReadWrite:
		return "read-write"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole parses a role's config spelling: read, read-write or admin.
func ParseRole(s string) (Role, error) {
	switch s {
	case "read":
		return RoleRead, nil
	case "read-write":
		return RoleReadWrite, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role must be read, read-write or admin, got %q", truncateString(s, 32))
}

// AuthConfig lists the tokens clients and operators present. With no
// token configured (the default) nothing is asked of anyone, and
// SecurityConfig.ProtectedMode decides who is served.
type AuthConfig struct {
	// Tokens are the accepted tokens. Default none.
	Tokens []TokenConfig `mapstructure:"tokens"`
	// TokensFile, if set, is a file of more tokens, one per line:
	// "name role token_sha256"; blank lines and lines starting with #
	// are skipped. It is read at start and on Node.ReloadTokens (SIGHUP).
	// Default empty.
	TokensFile string `mapstructure:"tokens_file"`
}

// TokenConfig is one accepted token.
type TokenConfig struct {
	// Name names the token's holder in logs and is the RESP user name
	// (AUTH name token). Unique among tokens.
	Name string `mapstructure:"name"`
	// TokenSHA256 is the hex SHA-256 of the token (sha256sum of the token
	// without a newline): the config never holds the token itself.
	TokenSHA256 string `mapstructure:"token_sha256"`
	// Role is read, read-write or admin.
	Role string `mapstructure:"role"`
}

// SecurityConfig holds the protections that apply without tokens.
type SecurityConfig struct {
	// ProtectedMode, as Redis's: a node whose HTTP or RESP listener is on
	// a non-loopback address and has no auth.tokens serves clients only
	// from loopback. Default true.
	ProtectedMode bool `mapstructure:"protected_mode"`
}

const (
	// maxTokenBytes bounds a presented token (and the Authorization
	// header around it): real tokens are a few dozen bytes.
	maxTokenBytes = 512
	// maxTokensFileBytes bounds auth.tokens_file.
	maxTokensFileBytes = 1 << 20
	// maxTokens bounds how many tokens a node accepts: each request
	// compares against all of them.
	maxTokens = 1024
)

// authToken is one accepted token, parsed.
type authToken struct {
	name string
	hash [sha256.Size]byte
	role Role
}

// authenticator checks presented tokens. Its set of tokens is replaced
// whole by reload (SIGHUP), never changed in place, so concurrent
// requests read it without locks.
type authenticator struct {
	set atomic.Pointer[tokenSet]
}

// tokenSet is one generation of the accepted tokens.
type tokenSet struct {
	tokens []authToken
	// gen numbers the sets, from 1; a RESP session that logged in under
	// another generation looks its token up again (respServer.recheck).
	gen uint64
}

// errNoTokens is returned by loadTokens (and so by newAuthenticator and
// reload) when nothing is configured.
var errNoTokens = errors.New("node: no auth tokens configured")

// newAuthenticator parses the configured tokens and reads the tokens file.
// It returns errNoTokens when there are none: authentication is off.
func newAuthenticator(c AuthConfig) (*authenticator, error) {
	tokens, err := loadTokens(c)
	if err != nil {
		return nil, err
	}
	a := &authenticator{}
	a.set.Store(&tokenSet{tokens: tokens, gen: 1})
	return a, nil
}

// reload replaces the tokens with those of c, read as newAuthenticator
// reads them, and returns the set in force. On any error, errNoTokens
// included (turning authentication off takes a restart), the tokens in
// force stay. Concurrent reloads are the caller's to serialise.
// It reports whether they changed: the same tokens, in the same order,
// leave the set and its generation as they were.
func (a *authenticator) reload(c AuthConfig) (*tokenSet, bool, error) {
	tokens, err := loadTokens(c)
	if err != nil {
		return nil, false, err
	}
	cur := a.set.Load()
	if slices.Equal(tokens, cur.tokens) {
		return cur, false, nil
	}
	next := &tokenSet{tokens: tokens, gen: cur.gen + 1}
	a.set.Store(next)
	return next, true, nil
}

// loadTokens parses c's tokens and reads its tokens file; errNoTokens when
// there are none.
func loadTokens(c AuthConfig) ([]authToken, error) {
	a := &tokenSet{}
	seen := map[string]bool{}
	add := func(where string, t TokenConfig) error {
		if t.Name == "" || strings.ContainsAny(t.Name, " \t\r\n") || len(t.Name) > 64 {
			return fmt.Errorf("%s: name must be 1..64 bytes without spaces, got %q", where, truncateString(t.Name, 64))
		}
		if seen[t.Name] {
			return fmt.Errorf("%s: name %q given twice", where, t.Name)
		}
		seen[t.Name] = true
		role, err := ParseRole(t.Role)
		if err != nil {
			return fmt.Errorf("%s (%s): %w", where, t.Name, err)
		}
		h, err := hex.DecodeString(t.TokenSHA256)
		if err != nil || len(h) != sha256.Size {
			return fmt.Errorf("%s (%s): token_sha256 must be 64 hex digits (the SHA-256 of the token, e.g. from sha256sum), got %d characters", where, t.Name, len(t.TokenSHA256))
		}
		if len(a.tokens) >= maxTokens {
			return fmt.Errorf("%s: more than %d tokens", where, maxTokens)
		}
		at := authToken{name: t.Name, role: role}
		copy(at.hash[:], h)
		a.tokens = append(a.tokens, at)
		return nil
	}
	for i, t := range c.Tokens {
		if err := add(fmt.Sprintf("config auth.tokens[%d]", i), t); err != nil {
			return nil, err
		}
	}
	if c.TokensFile != "" {
		ts, err := readTokensFile(c.TokensFile)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if err := add(fmt.Sprintf("config auth.tokens_file %s line %d", c.TokensFile, t.line), t.TokenConfig); err != nil {
				return nil, err
			}
		}
	}
	if len(a.tokens) == 0 {
		return nil, errNoTokens
	}
	return a.tokens, nil
}

// readTokensFile reads auth.tokens_file; see AuthConfig.TokensFile.
func readTokensFile(path string) ([]fileToken, error) {
	data, err := atomicfile.ReadBounded(vfs.OSFS{}, path, maxTokensFileBytes)
	if err != nil {
		return nil, fmt.Errorf("config auth.tokens_file: %w", err)
	}
	return parseTokens(path, data)
}

// fileToken is a token of the tokens file and the line it is on.
type fileToken struct {
	TokenConfig
	line int
}

// parseTokens parses the lines of a tokens file.
func parseTokens(path string, data []byte) ([]fileToken, error) {
	var out []fileToken
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxTokensFileBytes)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			return nil, fmt.Errorf("config auth.tokens_file %s line %d: want \"name role token_sha256\", got %d fields", path, line, len(f))
		}
		out = append(out, fileToken{TokenConfig{Name: f[0], Role: f[1], TokenSHA256: f[2]}, line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config auth.tokens_file %s: %w", path, err)
	}
	return out, nil
}

// lookup returns the token whose hash is the SHA-256 of presented, and
// false if there is none. When user is not empty, only the token of that
// name matches (RESP's AUTH user token). Every configured hash is compared,
// in constant time, whatever matches, so that the time taken says nothing
// about which hash came close.
func (a *authenticator) lookup(user string, presented []byte) (authToken, bool) {
	t, _, ok := a.lookupIn(user, presented)
	return t, ok
}

// lookupIn is lookup that also returns the generation of the set it
// looked in.
func (a *authenticator) lookupIn(user string, presented []byte) (authToken, uint64, bool) {
	set := a.set.Load()
	sum := sha256.Sum256(presented)
	var found authToken
	ok := 0
	for _, t := range set.tokens {
		m := subtle.ConstantTimeCompare(sum[:], t.hash[:])
		if m == 1 && (user == "" || user == t.name) && ok == 0 {
			found, ok = t, 1
		}
	}
	return found, set.gen, ok == 1
}

// generation is the generation of the tokens in force.
func (a *authenticator) generation() uint64 { return a.set.Load().gen }

// named returns the token called name in the set in force, and that
// set's generation.
func (a *authenticator) named(name string) (authToken, uint64, bool) {
	set := a.set.Load()
	for _, t := range set.tokens {
		if t.name == name {
			return t, set.gen, true
		}
	}
	return authToken{}, set.gen, false
}
