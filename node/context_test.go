package node

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/testkit"
)

// setClient is a client of a set workload that reuses contexts the way a
// client library does: it writes its whole known set plus one element with
// the context of its last answer (PUT or GET), and on a 300 takes the
// union of the siblings it was shown.
type setClient struct {
	base  string
	key   string
	ctx   string
	known map[string]bool
}

// add writes the known set plus elem. ok is true when the write was
// acknowledged (204 or 300).
func (c *setClient) add(elem string) (ok bool, err error) {
	c.known[elem] = true
	body := strings.Join(slices.Sorted(maps.Keys(c.known)), ",")
	req, err := http.NewRequest("PUT", c.base+"/v1/kv/"+c.key+"?w=quorum", strings.NewReader(body))
	if err != nil {
		return false, err
	}
	if c.ctx != "" {
		req.Header.Set(client.ContextHeader, c.ctx)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusNoContent:
		c.ctx = resp.Header.Get(client.ContextHeader)
		return true, nil
	case http.StatusMultipleChoices:
		var sb client.SiblingsBody
		if err := json.Unmarshal(b, &sb); err != nil {
			return false, fmt.Errorf("300 body %q: %w", b, err)
		}
		for _, s := range sb.Siblings {
			for _, e := range strings.Split(string(s.Value), ",") {
				if e != "" {
					c.known[e] = true
				}
			}
		}
		c.ctx = sb.Context
		return true, nil
	case http.StatusServiceUnavailable:
		return false, nil
	}
	return false, fmt.Errorf("PUT = %d %s", resp.StatusCode, b)
}

// TestReusedPutContextsLoseNothing: clients writing one key concurrently
// through different coordinators, each reusing the context its PUT
// returned, lose none of their acknowledged elements. Before, a PUT
// answered 204 with a context covering concurrent siblings the client was
// never shown, so its next write silently superseded them.
func TestReusedPutContextsLoseNothing(t *testing.T) {
	n1 := startNode(t, testConfig(t, "n1"))
	seed := n1.Addrs().Gossip
	n2 := startNode(t, testConfig(t, "n2", seed))
	n3 := startNode(t, testConfig(t, "n3", seed))
	nodes := []*runningNode{n1, n2, n3}
	waitConverged(t, nodes...)

	// Every client starts from the context of a read, so that no write is
	// blind: a blind write supersedes whatever its coordinator holds, by
	// design, and would hide the loss this test looks for.
	if code, _, body := do(t, "PUT", httpURL(n1, "/v1/kv/set?w=all"), []byte(""), nil); code != 204 {
		t.Fatalf("seed PUT = %d %s", code, body)
	}
	_, h, _ := do(t, "GET", httpURL(n1, "/v1/kv/set?r=all"), nil, nil)
	start := h.Get(client.ContextHeader)
	if start == "" {
		t.Fatal("seed GET returned no context")
	}

	const clients, writes = 6, 25
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		errs  = make(chan error, clients)
	)
	for ci := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &setClient{base: "http://" + nodes[ci%3].Addrs().HTTP, key: "set", ctx: start, known: map[string]bool{}}
			for i := range writes {
				elem := fmt.Sprintf("c%d-%d", ci, i)
				ok, err := c.add(elem)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					mu.Lock()
					acked = append(acked, elem)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}

	code, _, body := do(t, "GET", httpURL(n2, "/v1/kv/set?r=all"), nil, nil)
	final := map[string]bool{}
	switch code {
	case 200:
		for _, e := range strings.Split(string(body), ",") {
			final[e] = true
		}
	case 300:
		var sb client.SiblingsBody
		if err := json.Unmarshal(body, &sb); err != nil {
			t.Fatal(err)
		}
		for _, s := range sb.Siblings {
			for _, e := range strings.Split(string(s.Value), ",") {
				final[e] = true
			}
		}
	default:
		t.Fatalf("final GET = %d %s", code, body)
	}
	var lost []string
	for _, e := range acked {
		if !final[e] {
			lost = append(lost, e)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged elements lost: %v", len(lost), len(acked), lost)
	}
	t.Logf("%d acknowledged elements, all present", len(acked))
}

// TestWriteAnswers: a write that leaves concurrent versions answers 300
// listing them; the sibling cap is 409; an unavailable 503 carries got 0.
func TestWriteAnswers(t *testing.T) {
	srv, kv, _, _ := newTestAPI(t)
	url := srv.URL + "/v1/kv/k"
	code, h, _ := do(t, "PUT", url, []byte("a"), nil)
	if code != 204 {
		t.Fatalf("first PUT = %d", code)
	}
	c0 := map[string]string{client.ContextHeader: h.Get(client.ContextHeader)}
	do(t, "PUT", url, []byte("b"), c0)
	code, h, body := do(t, "PUT", url, []byte("c"), c0)
	var sb client.SiblingsBody
	if code != 300 || json.Unmarshal(body, &sb) != nil || len(sb.Siblings) != 2 || sb.Context != h.Get(client.ContextHeader) {
		t.Fatalf("PUT beside a sibling = %d %s", code, body)
	}
	code, _, body = do(t, "DELETE", url, nil, c0)
	if code != 300 || json.Unmarshal(body, &sb) != nil || len(sb.Siblings) != 2 {
		t.Fatalf("DELETE leaving siblings = %d %s", code, body)
	}

	kv.setFail(fmt.Errorf("%w: key would have 101 versions", errTooManySiblings))
	if code, _, body := do(t, "PUT", url, []byte("d"), c0); code != 409 || !strings.Contains(string(body), "101 versions") {
		t.Fatalf("sibling cap = %d %s", code, body)
	}
	kv.setFail(&quorumFailure{Op: "put", Need: 2, Unavailable: true, Reachable: 1, Failures: map[string]string{"n2": "down"}})
	code, _, body = do(t, "PUT", url, []byte("d"), nil)
	if code != 503 || !strings.Contains(string(body), `"got":0`) || !strings.Contains(string(body), `"unavailable":true`) || !strings.Contains(string(body), `"reachable":1`) {
		t.Fatalf("unavailable = %d %s", code, body)
	}
}

// TestSiblingCapFromConfig: limits.max_siblings reaches the coordinator; a
// write that would pass it is 409, a resolving write is not.
func TestSiblingCapFromConfig(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.Limits.MaxSiblings = 3
	n := startNode(t, cfg)
	testkit.Eventually(t, 30*time.Second, "a 1-node ring", func() bool { return n.ring.Load().Len() == 1 })
	url := httpURL(n, "/v1/kv/k")
	code, h, _ := do(t, "PUT", url, []byte("a"), nil)
	if code != 204 {
		t.Fatalf("PUT = %d", code)
	}
	c0 := map[string]string{client.ContextHeader: h.Get(client.ContextHeader)}
	for i := range 3 {
		if code, _, body := do(t, "PUT", url, []byte(fmt.Sprint(i)), c0); code != 204 && code != 300 {
			t.Fatalf("sibling %d = %d %s", i, code, body)
		}
	}
	code, _, body := do(t, "PUT", url, []byte("x"), c0)
	if code != 409 || !strings.Contains(string(body), "more than 3") {
		t.Fatalf("4th sibling = %d %s, want 409", code, body)
	}
	_, h, _ = do(t, "GET", url, nil, nil)
	if code, _, body := do(t, "PUT", url, []byte("resolved"), map[string]string{client.ContextHeader: h.Get(client.ContextHeader)}); code != 204 {
		t.Fatalf("resolving PUT = %d %s", code, body)
	}
}
