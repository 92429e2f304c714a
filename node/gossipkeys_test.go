package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/internal/testkit"
)

// TestGossipKeysRotateAndRogueStaysOut: a three-node cluster with gossip
// keys rotates from k1 to k2 through PUT /v1/gossip/keys on every node and
// keeps serving writes at w=all; a process started with only a seed
// address and no key never appears among the members, never serves, and
// holds none of the data.
func TestGossipKeysRotateAndRogueStaysOut(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	k2 := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	keyed := func(name string, seeds ...string) Config {
		cfg := testConfig(t, name, seeds...)
		cfg.Gossip.Keys = []string{k1}
		return cfg
	}
	n1 := startNode(t, keyed("n1"))
	seed := n1.Addrs().Gossip
	n2 := startNode(t, keyed("n2", seed))
	n3 := startNode(t, keyed("n3", seed))
	rogue := startNode(t, testConfig(t, "rogue", seed))
	nodes := []*runningNode{n1, n2, n3}
	waitConverged(t, nodes...)

	write := func(prefix string) {
		t.Helper()
		for i := range 20 {
			url := httpURL(nodes[i%3], fmt.Sprintf("/v1/kv/%s%d?w=all", prefix, i))
			// On a loaded machine the failure detector may suspect a
			// live peer for a moment; a 503 that sent nothing is retried.
			testkit.Eventually(t, time.Minute, "PUT "+url, func() bool {
				code, _, body := do(t, "PUT", url, []byte("v"), nil)
				if code == http.StatusServiceUnavailable && strings.Contains(string(body), `"unavailable":true`) {
					return false
				}
				if code != http.StatusNoContent {
					t.Fatalf("PUT %s = %d %s", url, code, body)
				}
				return true
			})
		}
	}
	write("before")

	for step, keys := range [][]string{{k1, k2}, {k2, k1}, {k2}} {
		body, _ := json.Marshal(keysBody{Keys: keys})
		for _, n := range nodes {
			code, _, out := do(t, "PUT", httpURL(n, "/v1/gossip/keys"), body, nil)
			var st gossip.KeyringStatus
			if code != http.StatusOK || json.Unmarshal(out, &st) != nil || len(st.Keys) != len(keys) {
				t.Fatalf("step %d on %s: %d %s", step+1, n.cfg.Node.Name, code, out)
			}
			raw, _ := base64.StdEncoding.DecodeString(keys[0])
			if st.Primary != gossip.KeyFingerprint(raw) {
				t.Fatalf("step %d on %s: primary %s", step+1, n.cfg.Node.Name, st.Primary)
			}
		}
	}
	write("after")
	waitConverged(t, nodes...)

	for _, n := range nodes {
		var ms []client.Member
		getJSON(t, httpURL(n, "/v1/members"), &ms)
		for _, m := range ms {
			if m.Name == "rogue" {
				t.Errorf("%s lists the rogue among its members: %+v", n.cfg.Node.Name, m)
			}
		}
	}
	if rogue.Ready() || rogue.ring.Load().Len() > 1 || rogue.engine.Stats().Keys != 0 {
		t.Errorf("rogue: ready %v, ring %v, %d keys", rogue.Ready(), rogue.ring.Load().Members(), rogue.engine.Stats().Keys)
	}
	if got := n1.engine.Stats().Keys; got != 40 {
		t.Errorf("n1 holds %d keys, want 40", got)
	}

	// Bad requests change nothing.
	for _, body := range []string{`{"keys": []}`, `{"keys": ["not base64!"]}`, `{"keys": ["c2hvcnQ="]}`, `{"keys": "x"}`, `{"other": 1}`} {
		if code, _, out := do(t, "PUT", httpURL(n1, "/v1/gossip/keys"), []byte(body), nil); code != http.StatusBadRequest {
			t.Errorf("PUT %s = %d %s, want 400", body, code, out)
		}
	}
	var st gossip.KeyringStatus
	getJSON(t, httpURL(n1, "/v1/gossip/keys"), &st)
	raw2, _ := base64.StdEncoding.DecodeString(k2)
	if !st.Encrypted || !slices.Equal(st.Keys, []string{gossip.KeyFingerprint(raw2)}) {
		t.Errorf("keyring after refused requests: %+v", st)
	}
	// A node without keys cannot start encrypting alone.
	body, _ := json.Marshal(keysBody{Keys: []string{k2}})
	if code, _, out := do(t, "PUT", httpURL(rogue, "/v1/gossip/keys"), body, nil); code != http.StatusConflict {
		t.Errorf("PUT keys on a node without keys = %d %s, want 409", code, out)
	}

	// SIGHUP's reload applies gossip.keys from the configuration read again.
	next := n1.cfg
	next.Gossip.Keys = []string{k1, k2}
	if err := n1.ReloadGossipKeys(next); err != nil {
		t.Fatal(err)
	}
	if st := n1.GossipKeyring(); len(st.Keys) != 2 {
		t.Errorf("reload did not install k1 beside k2: %+v", st)
	}
	next.Gossip.Keys = nil
	if err := n1.ReloadGossipKeys(next); err == nil {
		t.Error("a reload without keys on an encrypting node was accepted")
	}
}

// A SIGHUP whose configuration kept the gossip keys of the last one
// applied leaves a keyring set through PUT /v1/gossip/keys alone (and
// warns); a configuration with other keys replaces it.
func TestGossipKeysReloadKeepsKeyringSetByPUT(t *testing.T) {
	raw1, raw2, raw3 := []byte("0123456789abcdef"), []byte("fedcba9876543210"), []byte("abcdef0123456789")
	b64 := base64.StdEncoding.EncodeToString
	cfg := testConfig(t, "n1")
	cfg.Gossip.Keys = []string{b64(raw1)}
	var logs testkit.Buffer
	n, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := n.Run(ctx); err != nil {
			t.Error(err)
		}
	})
	keyring := func(want ...[]byte) {
		t.Helper()
		if st := n.GossipKeyring(); !sameKeys(st.Keys, keyFingerprints(want)) {
			t.Fatalf("keyring %v, want %v", st.Keys, keyFingerprints(want))
		}
	}

	// The first two steps of a rotation through the HTTP route.
	if err := n.SetGossipKeys([][]byte{raw2, raw1}); err != nil {
		t.Fatal(err)
	}
	// A SIGHUP for a renewed certificate: the file still says [k1].
	if err := n.ReloadGossipKeys(cfg); err != nil {
		t.Fatal(err)
	}
	keyring(raw2, raw1)
	if !strings.Contains(logs.String(), "keeping the keyring set through PUT") {
		t.Errorf("no warning about the keyring differing from gossip.keys; logs:\n%s", logs.String())
	}

	// The operator updates the file: it is applied.
	cfg.Gossip.Keys = []string{b64(raw2)}
	if err := n.ReloadGossipKeys(cfg); err != nil {
		t.Fatal(err)
	}
	keyring(raw2)
	// Again after another PUT, then a SIGHUP with the file unchanged.
	if err := n.SetGossipKeys([][]byte{raw3, raw2}); err != nil {
		t.Fatal(err)
	}
	if err := n.ReloadGossipKeys(cfg); err != nil {
		t.Fatal(err)
	}
	keyring(raw3, raw2)
	// The file catching up with the PUT changes nothing, and from then
	// on it is the configuration applied.
	cfg.Gossip.Keys = []string{b64(raw3), b64(raw2)}
	if err := n.ReloadGossipKeys(cfg); err != nil {
		t.Fatal(err)
	}
	keyring(raw3, raw2)
	cfg.Gossip.Keys = []string{b64(raw3)}
	if err := n.ReloadGossipKeys(cfg); err != nil {
		t.Fatal(err)
	}
	keyring(raw3)
}

func TestSameKeys(t *testing.T) {
	for _, tc := range []struct {
		a, b []string
		want bool
	}{
		{nil, nil, true},
		{[]string{"p"}, []string{"p"}, true},
		{[]string{"p", "a", "b"}, []string{"p", "b", "a"}, true},
		{[]string{"p", "a"}, []string{"a", "p"}, false},
		{[]string{"p", "a"}, []string{"p"}, false},
		{[]string{"p", "a"}, []string{"p", "b"}, false},
	} {
		if got := sameKeys(tc.a, tc.b); got != tc.want {
			t.Errorf("sameKeys(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
