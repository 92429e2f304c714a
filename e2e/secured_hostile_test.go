package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	bin "encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSecuredClusterSurvivesHostileInput starts three nodes with TLS,
// tokens and a gossip key, writes keys, then sends each port of a live
// node every kind of input that once crashed, stalled or fooled a node,
// plus unauthenticated and under-privileged attempts. Afterwards every
// node must still serve, membership must be exactly n1..n3, every key
// must read back from every replica, the refusal counters must have
// risen and the data files must be private.
func TestSecuredClusterSurvivesHostileInput(t *testing.T) {
	deadline := testDeadline(t, 5*time.Minute)
	sw := newStopwatch(t)
	c := startSecuredCluster(t, deadline)
	sw.lap("three secured nodes serve")
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	rw := c.tokens["read-write"]

	before := map[string]map[string]float64{}
	for _, s := range c.nodes {
		m, err := c.metrics(s)
		if err != nil {
			t.Fatal(err)
		}
		before[s.name] = m
	}

	// want is every key the test had acknowledged and its value.
	want := map[string]string{}
	put := func(s *server, key, value string, hdr http.Header) {
		t.Helper()
		code, _, body, err := c.retry(t, http.MethodPut, s, "/v1/kv/"+url.PathEscape(key)+"?w=all", rw, hdr, []byte(value))
		if err != nil || code != http.StatusNoContent {
			t.Fatalf("PUT %.40q through %s: %d %s %v", key, s.name, code, body, err)
		}
		want[key] = value
	}
	const keys = 300
	eventually(t, deadline, "a first write at w=all over mutual TLS", func() error {
		code, _, body, err := c.do(http.MethodPut, n1, "/v1/kv/first?w=all", rw, nil, []byte("v"))
		if err == nil && code != http.StatusNoContent {
			err = fmt.Errorf("PUT: %d %s", code, body)
		}
		return err
	})
	want["first"] = "v"
	for i := range keys {
		put(c.nodes[i%3], fmt.Sprintf("key-%04d", i), fmt.Sprintf("value-%04d-%s", i, strings.Repeat("x", i%97)), nil)
	}

	sw.lap(fmt.Sprintf("%d keys written at w=all", len(want)))
	t.Run("resp", func(t *testing.T) { hostileRESP(t, c, n1, want) })
	t.Run("rpc", func(t *testing.T) { hostileRPC(t, c, n2, want, deadline) })
	t.Run("http", func(t *testing.T) { hostileHTTP(t, c, n3, want) })
	t.Run("auth", func(t *testing.T) { unauthorised(t, c, n3, n1) })
	t.Run("gossip", func(t *testing.T) { hostileGossip(t, c, before, deadline) })
	t.Run("rogue", func(t *testing.T) { rogueServer(t, c, n1, deadline) })
	t.Run("silent", func(t *testing.T) { silentClients(t, n2) })
	if t.Failed() {
		t.FailNow()
	}
	sw.lap("hostile inputs sent")

	// Every node still runs, serves, and takes a write.
	for _, s := range c.nodes {
		if err := c.serving(s); err != nil {
			t.Fatal(err)
		}
		put(s, "after-"+s.name, "still serving", nil)
	}
	// Membership is still exactly the three nodes, alive and joined, and
	// the plan serves them alone.
	for _, s := range c.nodes {
		eventually(t, deadline, s.name+" lists exactly n1..n3 alive and joined", func() error { return exactMembers(c, s) })
	}
	// Each node holds every key itself (N=3 on three nodes): its own key
	// count, read before any read below could repair a replica.
	for _, s := range c.nodes {
		eventually(t, deadline, s.name+" holds every acknowledged key", func() error {
			var st struct {
				Keys int64 `json:"keys"`
				Plan struct {
					Members []string `json:"members"`
					Target  []string `json:"target"`
				} `json:"plan"`
			}
			code, _, body, err := c.do(http.MethodGet, s, "/v1/stats", c.tokens["read"], nil, nil)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("stats: %d %s", code, body)
			}
			if err := json.Unmarshal(body, &st); err != nil {
				return err
			}
			if !slices.Equal(st.Plan.Members, []string{"n1", "n2", "n3"}) || st.Plan.Target != nil {
				t.Fatalf("%s's plan changed: %+v", s.name, st.Plan)
			}
			if st.Keys != int64(len(want)) {
				return fmt.Errorf("%s holds %d keys, %d acknowledged", s.name, st.Keys, len(want))
			}
			return nil
		})
	}
	sw.lap("every node holds every key")
	// And every value reads back through every node from all replicas.
	for _, s := range c.nodes {
		bad := 0
		for key, value := range want {
			code, _, body, err := c.retry(t, http.MethodGet, s, "/v1/kv/"+url.PathEscape(key)+"?r=all", c.tokens["read"], nil, nil)
			if err != nil || code != http.StatusOK || string(body) != value {
				if bad++; bad <= 5 {
					t.Errorf("GET %.40q ?r=all through %s: %d %.80q %v, want %.80q", key, s.name, code, body, err, value)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d keys did not read back", s.name, bad, len(want))
		}
	}
	sw.lap("every key read back through every node")
	// The refusals were counted.
	after := map[string]map[string]float64{}
	for _, s := range c.nodes {
		m, err := c.metrics(s)
		if err != nil {
			t.Fatal(err)
		}
		after[s.name] = m
	}
	rose := func(s *server, name string, labels ...string) {
		t.Helper()
		b, a := sumOf(before[s.name], name, labels...), sumOf(after[s.name], name, labels...)
		t.Logf("%s %s%v: %v -> %v", s.name, name, labels, b, a)
		if a <= b {
			t.Errorf("%s: %s%v did not rise (%v -> %v)", s.name, name, labels, b, a)
		}
	}
	for _, reason := range []string{"no_cert", "invalid_cert", "handshake", "name", "unknown_ca"} {
		rose(n2, "ringkv_rpc_refused_total", `reason="`+reason+`"`)
	}
	rose(n1, "ringkv_auth_refused_total", `api="resp"`, `reason="no_token"`)
	rose(n1, "ringkv_auth_refused_total", `api="resp"`, `reason="unknown_token"`)
	rose(n1, "ringkv_auth_refused_total", `api="resp"`, `reason="forbidden"`)
	rose(n3, "ringkv_auth_refused_total", `api="http"`, `reason="no_token"`)
	rose(n3, "ringkv_auth_refused_total", `api="http"`, `reason="forbidden"`)
	rose(n3, "ringkv_auth_refused_total", `api="http"`, `reason="unknown_token"`)
	rose(n3, "ringkv_auth_refused_total", `api="http"`, `reason="malformed"`)
	for _, s := range c.nodes {
		rose(s, "ringkv_gossip_warnings_total")
		if p := sumOf(after[s.name], "ringkv_recovered_panics_total"); p != 0 {
			t.Errorf("%s recovered %v panics", s.name, p)
		}
	}
	for _, s := range c.nodes {
		checkFileModes(t, c.dataDirs[s.name])
	}
	for _, s := range c.nodes {
		if code := s.stop(t, 30*time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", s.name, code)
		}
	}
	// Files written at shutdown are private too.
	for _, s := range c.nodes {
		checkFileModes(t, c.dataDirs[s.name])
	}
}

// exactMembers is nil when s lists n1, n2 and n3, alive and joined, and
// nobody else.
func exactMembers(c *securedCluster, s *server) error {
	code, _, body, err := c.do(http.MethodGet, s, "/v1/members", c.tokens["read"], nil, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("members: %d %s", code, body)
	}
	var ms []member
	if err := json.Unmarshal(body, &ms); err != nil {
		return err
	}
	var names []string
	for _, m := range ms {
		if m.Liveness != "alive" || m.Status != "joined" {
			return fmt.Errorf("members %+v", ms)
		}
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"n1", "n2", "n3"}) {
		return fmt.Errorf("members %+v", ms)
	}
	return nil
}

// msgpackStr encodes a string of fewer than 256 bytes.
func msgpackStr(s string) []byte {
	if len(s) < 32 {
		return append([]byte{0xa0 | byte(len(s))}, s...)
	}
	return append([]byte{0xd9, byte(len(s))}, s...)
}

// contextActor returns the actor of a context's first entry (a context is
// base64url msgpack [[actor, counter], ...]).
func contextActor(ctx string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(ctx)
	if err != nil {
		return "", err
	}
	if len(b) < 3 || b[0]&0xf0 != 0x90 || b[0] == 0x90 || b[1] != 0x92 {
		return "", fmt.Errorf("context %x is not [[actor, counter], ...]", b)
	}
	switch s := b[2:]; {
	case s[0]&0xe0 == 0xa0 && len(s) > int(s[0]&0x1f):
		return string(s[1 : 1+s[0]&0x1f]), nil
	case s[0] == 0xd9 && len(s) > 1 && len(s) > 1+int(s[1]):
		return string(s[2 : 2+int(s[1])]), nil
	}
	return "", fmt.Errorf("context %x: actor is not a short string", b)
}

// hostileHTTP sends s the HTTP inputs that were once accepted: empty
// contexts, keys and values over the limits, bad quorum parameters and
// forged contexts, all with a valid read-write token.
func hostileHTTP(t *testing.T, c *securedCluster, s *server, want map[string]string) {
	rw := c.tokens["read-write"]
	do := func(method, path string, hdr http.Header, body []byte) (int, http.Header, []byte) {
		t.Helper()
		code, h, b, err := c.retry(t, method, s, path, rw, hdr, body)
		if err != nil {
			t.Fatalf("%s %.60s: %v", method, path, err)
		}
		return code, h, b
	}
	absent := func(key string) {
		t.Helper()
		if code, _, b := do(http.MethodGet, "/v1/kv/"+url.PathEscape(key)+"?r=all", nil, nil); code != http.StatusNotFound {
			t.Errorf("GET %.40q after a refused write: %d %.80s, want 404", key, code, b)
		}
	}

	// An empty or blank context header is a blind write, not a sibling.
	for i, ctx := range []string{"", "", "   ", "", "\t", ""} {
		v := fmt.Sprintf("empty-context-%d", i)
		code, _, b := do(http.MethodPut, "/v1/kv/empty-ctx?w=all", http.Header{"X-Ringkv-Context": {ctx}}, []byte(v))
		if code != http.StatusNoContent {
			t.Fatalf("PUT with context %q: %d %s, want 204", ctx, code, b)
		}
		want["empty-ctx"] = v
	}
	if code, _, b := do(http.MethodGet, "/v1/kv/empty-ctx?r=all", nil, nil); code != http.StatusOK || string(b) != want["empty-ctx"] {
		t.Errorf("GET after empty-context writes: %d %.200s, want 200 %q", code, b, want["empty-ctx"])
	}

	// Writes that all reuse one stale context pile up siblings until the
	// cap (limits.max_siblings, 100) refuses the next with 409; a write
	// with a read's context still resolves the key.
	code, h, b := do(http.MethodPut, "/v1/kv/siblings?w=all", nil, []byte("s0"))
	if code != http.StatusNoContent {
		t.Fatalf("PUT siblings: %d %s", code, b)
	}
	stale := h.Get("X-Ringkv-Context")
	refused := 0
	for i := 1; i <= 120 && refused == 0; i++ {
		code, _, b := do(http.MethodPut, "/v1/kv/siblings?w=all", http.Header{"X-Ringkv-Context": {stale}}, []byte(fmt.Sprintf("s%d", i)))
		switch {
		case code == http.StatusConflict:
			refused = i
		case i == 1 && code == http.StatusNoContent, i > 1 && code == http.StatusMultipleChoices:
		default:
			t.Fatalf("sibling write %d: %d %.200s", i, code, b)
		}
	}
	if refused != 101 {
		t.Errorf("the write adding sibling 101 was not refused: the first 409 came at write %d", refused)
	}
	code, h, b = do(http.MethodGet, "/v1/kv/siblings?r=all", nil, nil)
	var sib struct {
		Siblings []json.RawMessage `json:"siblings"`
	}
	if err := json.Unmarshal(b, &sib); code != http.StatusMultipleChoices || err != nil || len(sib.Siblings) != 100 {
		t.Fatalf("GET siblings: %d, %d siblings, %v", code, len(sib.Siblings), err)
	}
	if code, _, b := do(http.MethodPut, "/v1/kv/siblings?w=all", http.Header{"X-Ringkv-Context": {h.Get("X-Ringkv-Context")}}, []byte("resolved")); code != http.StatusNoContent {
		t.Fatalf("PUT resolving 100 siblings: %d %.200s", code, b)
	}
	want["siblings"] = "resolved"

	// Keys and values over the limits: refused, nothing written.
	key := strings.Repeat("k", 1024)
	if code, _, b := do(http.MethodPut, "/v1/kv/"+key+"?w=all", nil, []byte("max key")); code != http.StatusNoContent {
		t.Errorf("PUT of a 1024-byte key: %d %s, want 204", code, b)
	} else {
		want[key] = "max key"
	}
	for _, n := range []int{1025, 64 << 10} {
		if code, _, b := do(http.MethodPut, "/v1/kv/"+strings.Repeat("k", n)+"?w=all", nil, []byte("x")); code != http.StatusBadRequest {
			t.Errorf("PUT of a %d-byte key: %d %.200s, want 400", n, code, b)
		}
	}
	if code, _, b := do(http.MethodGet, "/v1/kv/"+strings.Repeat("k", 1025), nil, nil); code != http.StatusBadRequest {
		t.Errorf("GET of a 1025-byte key: %d %.200s, want 400", code, b)
	}
	for _, n := range []int{1<<20 + 1, 3 << 20} {
		if code, _, b := do(http.MethodPut, "/v1/kv/big-value?w=all", nil, make([]byte, n)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("PUT of a %d-byte value: %d %.200s, want 413", n, code, b)
		}
	}
	absent("big-value")

	// Quorum parameters that are not 1..N, one/quorum/all, once.
	for i, q := range []string{"w=4", "w=0", "w=-1", "w=abc", "w=99999999999999999999", "W=all", "w=all&w=one", "r=all", "w=all&x=1", "w=%00"} {
		k := fmt.Sprintf("bad-quorum-%d", i)
		if code, _, b := do(http.MethodPut, "/v1/kv/"+k+"?"+q, nil, []byte("x")); code != http.StatusBadRequest {
			t.Errorf("PUT ?%s: %d %.200s, want 400", q, code, b)
		}
		absent(k)
	}
	for _, q := range []string{"r=4", "r=0", "R=all", "r=one&r=all", "w=all"} {
		if code, _, b := do(http.MethodGet, "/v1/kv/key-0001?"+q, nil, nil); code != http.StatusBadRequest {
			t.Errorf("GET ?%s: %d %.200s, want 400", q, code, b)
		}
	}

	// Forged contexts: a real actor's counter at 2^64-1, one past what
	// any node stores, one nested far too deep, and the header twice.
	code, h, b = do(http.MethodGet, "/v1/kv/key-0007?r=all", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET key-0007: %d %s", code, b)
	}
	realCtx := h.Get("X-Ringkv-Context")
	actor, err := contextActor(realCtx)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(actor string, counter uint64) string {
		b := append([]byte{0x91, 0x92}, msgpackStr(actor)...)
		b = append(b, 0xcf)
		b = bin.BigEndian.AppendUint64(b, counter)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	deepCtx := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x91}, 40<<10))
	for _, hv := range [][]string{
		{forge(actor, 1<<64-1)},
		{forge("n1", 1<<64-1)},
		{forge(actor, 1<<62+1)},
		{deepCtx},
		{"!!!not base64"},
		{realCtx, realCtx},
	} {
		code, _, b := do(http.MethodPut, "/v1/kv/key-0007?w=all", http.Header{"X-Ringkv-Context": hv}, []byte("forged"))
		if code != http.StatusBadRequest {
			t.Errorf("PUT with context %.60q: %d %.200s, want 400", hv, code, b)
		}
	}
	// The key stays writable with its real context.
	if code, _, b := do(http.MethodPut, "/v1/kv/key-0007?w=all", http.Header{"X-Ringkv-Context": {realCtx}}, []byte("rewritten")); code != http.StatusNoContent {
		t.Errorf("PUT with the real context after forged ones: %d %s, want 204", code, b)
	} else {
		want["key-0007"] = "rewritten"
	}
}

// unauthorised tries the admin routes without a token, with a bad one and
// with too small a role, and a write with the read token; s is attacked,
// victim is the node named in remove.
func unauthorised(t *testing.T, c *securedCluster, s, victim *server) {
	newKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	keysBody := []byte(`{"keys": ["` + newKey + `"]}`)
	admin := []struct {
		method, path string
		body         []byte
	}{
		{http.MethodPost, "/v1/leave", nil},
		{http.MethodPost, "/v1/remove/" + victim.name, nil},
		{http.MethodPut, "/v1/transfer/rate?mb=0", nil},
		{http.MethodPut, "/v1/gossip/keys", keysBody},
		{http.MethodGet, "/v1/gossip/keys", nil},
	}
	for _, r := range admin {
		for _, a := range []struct {
			name  string
			hdr   http.Header
			token string
			want  int
		}{
			{"no token", nil, "", http.StatusUnauthorized},
			{"an unknown token", nil, randomHex(t, 32), http.StatusUnauthorized},
			{"Basic credentials", http.Header{"Authorization": {"Basic YWRtaW46YWRtaW4="}}, "", http.StatusUnauthorized},
			{"a 600-byte token", http.Header{"Authorization": {"Bearer " + strings.Repeat("a", 600)}}, "", http.StatusUnauthorized},
			{"the read token", nil, c.tokens["read"], http.StatusForbidden},
			{"the read-write token", nil, c.tokens["read-write"], http.StatusForbidden},
		} {
			code, h, b, err := c.do(r.method, s, r.path, a.token, a.hdr, r.body)
			if err != nil || code != a.want {
				t.Errorf("%s %s with %s: %d %.200s %v, want %d", r.method, r.path, a.name, code, b, err, a.want)
			}
			if a.want == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %s: WWW-Authenticate %q", r.method, r.path, a.name, h.Get("WWW-Authenticate"))
			}
		}
	}
	// A read token cannot write or delete.
	for _, m := range []string{http.MethodPut, http.MethodDelete} {
		code, _, b, err := c.do(m, s, "/v1/kv/key-0009?w=all", c.tokens["read"], nil, []byte("from a reader"))
		if err != nil || code != http.StatusForbidden {
			t.Errorf("%s with the read token: %d %.200s %v, want 403", m, code, b, err)
		}
	}
	if code, _, b, err := c.do(http.MethodPut, s, "/v1/kv/key-0009?w=all", "", nil, []byte("anonymous")); err != nil || code != http.StatusUnauthorized {
		t.Errorf("PUT without a token: %d %.200s %v, want 401", code, b, err)
	}
	// The keyring is still the one key, as the admin token sees it.
	sum := sha256.Sum256(mustBase64(t, c.gossipKey))
	fp := hex.EncodeToString(sum[:8])
	for _, n := range c.nodes {
		var kr struct {
			Encrypted bool     `json:"encrypted"`
			Primary   string   `json:"primary"`
			Keys      []string `json:"keys"`
		}
		code, _, b, err := c.do(http.MethodGet, n, "/v1/gossip/keys", c.tokens["admin"], nil, nil)
		if err == nil && code == http.StatusOK {
			err = json.Unmarshal(b, &kr)
		}
		if err != nil || code != http.StatusOK || !kr.Encrypted || kr.Primary != fp || !slices.Equal(kr.Keys, []string{fp}) {
			t.Errorf("%s keyring: %d %s %v, want only %s", n.name, code, b, err, fp)
		}
	}
}

func mustBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
