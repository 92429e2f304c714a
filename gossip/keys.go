package gossip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
)

// MaxKeys bounds the keys of a keyring: memberlist tries each on every
// packet it receives, and a rotation needs two.
const MaxKeys = 8

// ErrNoEncryption is returned by SetKeys on a node started without keys:
// memberlist fixes at start whether gossip is encrypted, and a node that
// began encrypting alone would be cut off from its peers anyway.
var ErrNoEncryption = errors.New("gossip: this node was started without gossip keys; encryption can only be turned on by a restart")

// validKeys checks a keyring: each key 16, 24 or 32 bytes, no duplicates,
// at most MaxKeys. An empty list is valid (no encryption).
func validKeys(keys [][]byte) error {
	if len(keys) > MaxKeys {
		return fmt.Errorf("%d keys, at most %d", len(keys), MaxKeys)
	}
	for i, k := range keys {
		switch len(k) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("key %d is %d bytes; it must be 16, 24 or 32", i+1, len(k))
		}
		for _, o := range keys[:i] {
			if bytes.Equal(k, o) {
				return fmt.Errorf("key %d appears twice", i+1)
			}
		}
	}
	return nil
}

// ValidateKeys checks Keys (or SecretKey) alone: sizes, duplicates and
// count, as Validate does.
func (c Config) ValidateKeys() error {
	if len(c.SecretKey) > 0 && len(c.Keys) > 0 {
		return fmt.Errorf("%w: both a secret key and keys are set; use keys alone", ErrBadConfig)
	}
	if err := validKeys(c.keys()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return nil
}

// KeyFingerprint names a key without revealing it: the first 8 bytes of
// its SHA-256, in hex. Operators compare fingerprints across nodes.
func KeyFingerprint(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:8])
}

// KeyringStatus describes the keyring by fingerprints (see KeyFingerprint).
type KeyringStatus struct {
	// Encrypted is false for a node started without keys.
	Encrypted bool `json:"encrypted"`
	// Primary is the fingerprint of the key this node encrypts with.
	Primary string `json:"primary,omitempty"`
	// Keys are the fingerprints of every key it decrypts with, primary
	// first.
	Keys []string `json:"keys"`
}

// Keyring returns the fingerprints of the keys in use.
func (g *Gossip) Keyring() KeyringStatus {
	// keyMu keeps SetKeys from changing the keyring while it is read:
	// memberlist's RemoveKey shifts the slice GetKeys returned in place.
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	return g.keyringLocked()
}

// keyringLocked is Keyring with g.keyMu held.
func (g *Gossip) keyringLocked() KeyringStatus {
	kr := g.keyring
	st := KeyringStatus{Keys: []string{}}
	if kr == nil {
		return st
	}
	keys := slices.Clone(kr.GetKeys())
	if len(keys) == 0 {
		return st
	}
	// memberlist keeps the primary key first.
	st.Encrypted, st.Primary = true, KeyFingerprint(keys[0])
	for _, k := range keys {
		st.Keys = append(st.Keys, KeyFingerprint(k))
	}
	return st
}

// SetKeys makes the keyring hold exactly keys, the first one primary,
// while gossip runs: it installs the new keys, makes keys[0] primary, then
// removes the keys not listed. A rotation from k1 to k2 is three calls on
// every node, each done everywhere before the next starts (docs/gossip.md):
// SetKeys(k1, k2) (accept k2), SetKeys(k2, k1) (send with k2), SetKeys(k2)
// (forget k1). Safe for concurrent use; on an error the keyring may be
// half changed, and calling SetKeys again with the same keys completes it.
func (g *Gossip) SetKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no keys; a node started with keys cannot turn encryption off without a restart", ErrBadConfig)
	}
	if err := validKeys(keys); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	kr := g.keyring
	if kr == nil || kr.GetPrimaryKey() == nil {
		return ErrNoEncryption
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return fmt.Errorf("gossip: install key %s: %w", KeyFingerprint(k), err)
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return fmt.Errorf("gossip: use key %s: %w", KeyFingerprint(keys[0]), err)
	}
	// A copy: RemoveKey shifts the slice GetKeys returned in place, and
	// looping over it would skip the key after each one removed.
	for _, old := range slices.Clone(kr.GetKeys()) {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(old, k) }) {
			if err := kr.RemoveKey(old); err != nil {
				return fmt.Errorf("gossip: remove key %s: %w", KeyFingerprint(old), err)
			}
		}
	}
	// Checked rather than trusted: memberlist reports no error for much
	// of what it does not do.
	if got := kr.GetKeys(); !sameKeyring(got, keys) {
		return fmt.Errorf("gossip: the keyring holds %d keys (primary %s) after the change, want %d (primary %s)",
			len(got), fingerprintOrNone(got), len(keys), KeyFingerprint(keys[0]))
	}
	st := g.keyringLocked()
	g.log.Info("gossip keyring changed", "primary", st.Primary, "keys", st.Keys)
	return nil
}

// sameKeyring reports whether got holds exactly want's keys with want[0]
// primary (first); want has no duplicates.
func sameKeyring(got, want [][]byte) bool {
	if len(got) != len(want) || !bytes.Equal(got[0], want[0]) {
		return false
	}
	for _, k := range want {
		if !slices.ContainsFunc(got, func(g []byte) bool { return bytes.Equal(g, k) }) {
			return false
		}
	}
	return true
}

func fingerprintOrNone(keys [][]byte) string {
	if len(keys) == 0 {
		return "none"
	}
	return KeyFingerprint(keys[0])
}

// exposedWithoutKeys reports whether a node would gossip in clear on an
// address other hosts may reach: sockets (not an injected transport)
// bound to anything but loopback, wildcard included, with no keys.
func exposedWithoutKeys(cfg Config, bindHost string) bool {
	if len(cfg.keys()) > 0 || cfg.Transport != nil {
		return false
	}
	ip := net.ParseIP(bindHost)
	return ip == nil || !ip.IsLoopback()
}
