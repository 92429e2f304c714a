package node

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

// FuzzHTTPRequest feeds a request line's target (path and query), a
// context header and a body through net/http's request parser into the
// API over fakes: no panic, and every answer is 2xx, 300, 4xx or 503 (or
// the mux's path-cleaning redirect outside /v1/kv/), never a 500 (outside bytes are the client's problem, never the
// server's). mode picks the method and whether the node has joined.
func FuzzHTTPRequest(f *testing.F) {
	valid := vclock.EncodeContextString(vclock.Clock{{Actor: "k3j9x2mq4a7b", Counter: 9}, {Actor: "n1", Counter: 3}})
	seeds := []struct {
		mode              byte
		target, ctx, body string
	}{
		{0, "/v1/kv/k", "", ""},
		{1, "/v1/kv/user%2F42?w=all", valid, "alice"},
		{1, "/v1/kv/k?w=QUORUM", "", "v"},
		{2, "/v1/kv/k?w=2", valid, ""},
		{0, "/v1/kv/k?r=one", "", ""},
		{0, "/v1/kv/k?R=all", "", ""},
		{0, "/v1/kv/k?r=all&r=one", "", ""},
		{0, "/v1/kv/%zz", "", ""},
		{1, "/v1/kv/k", "!!!", "v"},
		{1, "/v1/kv/k", "   ", "v"},
		{4, "/v1/kv/k", "", ""},
		{0, "/v1/ring?key=k", "", ""},
		{0, "/v1/ring?what_if=add:n9", "", ""},
		{0, "/v1/members?x=1", "", ""},
		{0, "/readyz", "", ""},
		{8, "/v1/kv/k?w=all", "", "v"},
		{3, "/v1/kv/" + strings.Repeat("k", 100), "", ""},
	}
	for _, s := range seeds {
		f.Add(s.mode, s.target, s.ctx, []byte(s.body))
	}
	methods := []string{"GET", "PUT", "DELETE", "HEAD", "POST", "PATCH", "OPTIONS", "GET"}
	f.Fuzz(func(t *testing.T, mode byte, target, ctxHdr string, body []byte) {
		if len(target) > 8<<10 || len(ctxHdr) > 8<<10 || len(body) > 4<<10 {
			return // the server's header and body limits stop these earlier
		}
		method := methods[int(mode)%len(methods)]
		var raw bytes.Buffer
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: ringkv\r\n", method, target)
		if mode&16 == 0 {
			fmt.Fprintf(&raw, "%s: %s\r\n", client.ContextHeader, ctxHdr)
		}
		fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n", len(body))
		raw.Write(body)
		req, err := http.ReadRequest(bufio.NewReader(&raw))
		if err != nil {
			return // net/http answers 400 before any handler runs
		}
		kv := newFakeKV()
		adm := &fakeAdmin{self: "n1", members: map[string]client.Member{"n1": {Name: "n1"}, "n2": {Name: "n2"}}}
		joined := mode&8 == 0
		api := &httpAPI{kv: kv, admin: adm, metrics: newMetrics(metricSources{}), limits: testLimits, n: 3,
			log: testkit.Logger(t), ready: func() bool { return joined }}
		h := api.handler()
		// Twice, so the second request meets the state the first left.
		for range 2 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req.Clone(t.Context()))
			code := rec.Code
			kv := strings.HasPrefix(req.URL.EscapedPath(), kvPrefix)
			switch {
			case code >= 200 && code < 300, code == http.StatusMultipleChoices,
				code >= 400 && code < 500, code == http.StatusServiceUnavailable:
			case !kv && (code == http.StatusMovedPermanently || code == http.StatusTemporaryRedirect || code == http.StatusPermanentRedirect):
				// net/http's mux cleans other paths ("/." -> "/"); the key
				// routes bypass it, so a key is never redirected.
			default:
				t.Fatalf("%s %q ctx %q: status %d %s", method, target, ctxHdr, code, rec.Body.Bytes())
			}
			if !joined && kv && code != http.StatusServiceUnavailable && code != http.StatusMethodNotAllowed {
				t.Fatalf("%s %q on a node not joined: status %d, want 503", method, target, code)
			}
			req.Body = http.NoBody
		}
	})
}
