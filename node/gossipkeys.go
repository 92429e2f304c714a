package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/gossip"
)

// keyringBackend is what the gossip key routes need: the keyring by
// fingerprints, and replacing it. Safe for concurrent use.
type keyringBackend interface {
	// GossipKeyring describes the keys in use, never the keys themselves.
	GossipKeyring() gossip.KeyringStatus
	// SetGossipKeys makes the keyring exactly keys, the first primary.
	// Errors wrapping gossip.ErrBadConfig are the caller's;
	// gossip.ErrNoEncryption means the node runs without keys.
	SetGossipKeys(keys [][]byte) error
}

var _ keyringBackend = (*Node)(nil)

// GossipKeyring describes this node's gossip keys by fingerprint.
func (n *Node) GossipKeyring() gossip.KeyringStatus { return n.gossip.Keyring() }

// SetGossipKeys replaces this node's gossip keyring while it runs, until
// the next restart (which reads gossip.keys again).
func (n *Node) SetGossipKeys(keys [][]byte) error { return n.gossip.SetKeys(keys) }

// ReloadGossipKeys applies gossip.keys (or gossip.secret_key) of cfg, a
// configuration read again (on SIGHUP), to the running node. Nothing else
// of cfg is applied. The keys are compared with those of the configuration
// last applied, not with the live keyring: keys unchanged since then
// change nothing, so a SIGHUP sent for another reason (a renewed TLS
// certificate) does not undo a rotation made with PUT /v1/gossip/keys; that
// difference is logged at Warn.
func (n *Node) ReloadGossipKeys(cfg Config) error {
	keys, err := cfg.Gossip.keys()
	if err != nil {
		return fmt.Errorf("config gossip.keys: %w", err)
	}
	n.keysMu.Lock()
	defer n.keysMu.Unlock()
	cur := n.gossip.Keyring()
	if len(keys) == 0 {
		if cur.Encrypted {
			return errors.New("config gossip.keys is empty, but this node encrypts gossip: turning encryption off takes a restart")
		}
		return nil
	}
	want := keyFingerprints(keys)
	if sameKeys(want, n.appliedKeys) {
		if !sameKeys(want, cur.Keys) {
			n.log.Warn("gossip.keys unchanged since last applied; keeping the keyring set through PUT /v1/gossip/keys (change gossip.keys to replace it)",
				"config_keys", want, "keyring", cur.Keys)
		}
		return nil
	}
	if !sameKeys(want, cur.Keys) {
		if err := n.gossip.SetKeys(keys); err != nil {
			return fmt.Errorf("config gossip.keys: %w", err)
		}
	}
	n.appliedKeys = want
	return nil
}

// keyFingerprints names keys by gossip.KeyFingerprint, in order.
func keyFingerprints(keys [][]byte) []string {
	fps := make([]string, len(keys))
	for i, k := range keys {
		fps[i] = gossip.KeyFingerprint(k)
	}
	return fps
}

// sameKeys reports whether two keyrings, as fingerprints primary first,
// hold the same keys with the same primary; the order of the others does
// not matter to memberlist.
func sameKeys(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	if a[0] != b[0] {
		return false
	}
	return slices.Equal(slices.Sorted(slices.Values(a[1:])), slices.Sorted(slices.Values(b[1:])))
}

// maxKeysBody bounds the body of PUT /v1/gossip/keys: eight base64 keys of
// 32 bytes are well under 1 KiB.
const maxKeysBody = 16 << 10

// keysBody is the body of PUT /v1/gossip/keys.
type keysBody struct {
	// Keys are base64 keys, primary first.
	Keys []string `json:"keys"`
}

// gossipKeys serves GET /v1/gossip/keys: the keyring by fingerprints.
func (a *httpAPI) gossipKeys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.keyring.GossipKeyring())
}

// setGossipKeys serves PUT /v1/gossip/keys with {"keys": [...]}: this
// node's keyring becomes exactly those keys, the first primary, until the
// next restart.
func (a *httpAPI) setGossipKeys(w http.ResponseWriter, r *http.Request) {
	var body keysBody
	dec := json.NewDecoder(io.LimitReader(r.Body, maxKeysBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: fmt.Sprintf(`want a JSON body {"keys": ["<base64 key>", ...]} of at most %d bytes: %v`, maxKeysBody, err)})
		return
	}
	keys, err := decodeGossipKeys(body.Keys)
	if err == nil && len(keys) == 0 {
		err = errors.New("no keys: turning encryption off takes a restart")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	switch err := a.keyring.SetGossipKeys(keys); {
	case errors.Is(err, gossip.ErrNoEncryption):
		writeError(w, http.StatusConflict, client.ErrorBody{Error: err.Error()})
		return
	case errors.Is(err, gossip.ErrBadConfig):
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	case err != nil:
		a.adminError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.keyring.GossipKeyring())
}
