package node

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/internal/freeport"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/replica"
)

// freeGossipAddrs returns n distinct loopback addresses whose ports are
// free for TCP and UDP (gossip uses both) at the time of the call; nothing
// listens on them. The ports lie outside the kernel's ephemeral range:
// these addresses are written into one node's seeds before the node meant
// to bind them starts, and a port from that range was once taken in
// between by a listener or a dial of the node started first.
func freeGossipAddrs(t *testing.T, n int) []string {
	t.Helper()
	ports, err := freeport.Ports("127.0.0.1", n)
	if err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, n)
	for i, p := range ports {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return addrs
}

// freeGossipAddr is one of freeGossipAddrs.
func freeGossipAddr(t *testing.T) string {
	t.Helper()
	return freeGossipAddrs(t, 1)[0]
}

// get returns the status and body of a GET.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A node whose config names seeds serves no client request until it has
// joined: before, a PUT ?w=all would be acknowledged by a one-node ring of
// itself, on a node that is not a replica once it joins.
func TestSeededNodeServesOnlyOnceJoined(t *testing.T) {
	seedAddr := freeGossipAddr(t)
	n2 := startNode(t, testConfig(t, "n2", seedAddr))

	if code, body := getStatus(t, httpURL(n2, "/healthz")); code != 200 {
		t.Fatalf("healthz before joining = %d %q, want 200 (liveness only)", code, body)
	}
	if code, body := getStatus(t, httpURL(n2, "/readyz")); code != 503 || !strings.Contains(body, "not joined yet") {
		t.Fatalf("readyz before joining = %d %q, want 503 not joined yet", code, body)
	}
	code, _, body := do(t, "PUT", httpURL(n2, "/v1/kv/k?w=all"), []byte("v"), nil)
	if code != 503 || !strings.Contains(decodeError(t, body).Error, "not joined yet") {
		t.Fatalf("PUT w=all before joining = %d %s, want 503 not joined yet", code, body)
	}
	if code, _, body := do(t, "GET", httpURL(n2, "/v1/kv/k"), nil, nil); code != 503 {
		t.Fatalf("GET before joining = %d %s, want 503", code, body)
	}
	if code, _, body := do(t, "GET", httpURL(n2, "/v1/members"), nil, nil); code != 200 {
		t.Fatalf("members before joining = %d %s, want 200 (operators look at it)", code, body)
	}
	c := dialRESP(t, n2.Addrs().RESP)
	if got, ok := c.do(t, "SET", "k", "v").(respError); !ok || !strings.HasPrefix(string(got), "CLUSTERDOWN not joined yet") {
		t.Fatalf("RESP SET before joining = %v, want a not joined yet error", got)
	}
	if got := c.do(t, "PING"); got != "PONG" {
		t.Fatalf("RESP PING before joining = %v, want PONG", got)
	}

	// The seed comes up as the first node of a new cluster (no seeds).
	cfg := testConfig(t, "n1")
	cfg.Listen.Gossip = seedAddr
	n1 := startNode(t, cfg)
	if code, body := getStatus(t, httpURL(n1, "/readyz")); code != 200 {
		t.Fatalf("readyz of a node without seeds = %d %q, want 200", code, body)
	}
	testkit.Eventually(t, 20*time.Second, "n2 ready after its seed came up", func() bool {
		code, _ := getStatus(t, httpURL(n2, "/readyz"))
		return code == 200
	})
	// Ready means the cluster's plan serves from n2 too: its partitions
	// were copied to it first.
	if p := n2.place.Load().Plan(); !slices.Contains(p.Members, "n1") || !slices.Contains(p.Members, "n2") {
		t.Fatalf("n2 ready with plan %+v", p)
	}
	if code, _, body := do(t, "PUT", httpURL(n2, "/v1/kv/k?w=all"), []byte("v"), nil); code != 204 {
		t.Fatalf("PUT w=all after joining = %d %s", code, body)
	}
	if code, _, body := do(t, "GET", httpURL(n1, "/v1/kv/k?r=all"), nil, nil); code != 200 || string(body) != "v" {
		t.Fatalf("GET r=all on n1 = %d %q", code, body)
	}
	if got := c.do(t, "SET", "k2", "v2"); got != "OK" {
		t.Fatalf("RESP SET after joining = %v", got)
	}
}

// A node told to bootstrap serves at once even though its seeds are down,
// and so does one whose only seed is itself.
func TestBootstrapServesWithoutSeeds(t *testing.T) {
	cfg := testConfig(t, "n1", freeGossipAddr(t))
	cfg.Bootstrap = true
	n1 := startNode(t, cfg)
	if code, body := getStatus(t, httpURL(n1, "/readyz")); code != 200 {
		t.Fatalf("readyz with bootstrap = %d %q, want 200", code, body)
	}
	if code, _, body := do(t, "PUT", httpURL(n1, "/v1/kv/k"), []byte("v"), nil); code != 204 {
		t.Fatalf("PUT with bootstrap = %d %s", code, body)
	}

	self := freeGossipAddr(t)
	cfg = testConfig(t, "n9", self)
	cfg.Listen.Gossip = self
	n9 := startNode(t, cfg)
	if code, body := getStatus(t, httpURL(n9, "/readyz")); code != 200 {
		t.Fatalf("readyz of a node whose only seed is itself = %d %q, want 200", code, body)
	}
}

// A bootstrap node that restarts into a cluster it has seen is not ready
// until it reaches a peer again: it serves at once only while its data
// directory knows no other node.
func TestBootstrapRestartWaitsForPeers(t *testing.T) {
	g := freeGossipAddrs(t, 2)
	g1, g2 := g[0], g[1]
	cfg1 := testConfig(t, "n1", g2)
	cfg1.Listen.Gossip, cfg1.Bootstrap = g1, true
	cfg2 := testConfig(t, "n2", g1)
	cfg2.Listen.Gossip = g2
	n1 := startNode(t, cfg1)
	if code, body := getStatus(t, httpURL(n1, "/readyz")); code != 200 {
		t.Fatalf("readyz of a fresh bootstrap node = %d %q, want 200", code, body)
	}
	n2 := startNode(t, cfg2)
	testkit.Eventually(t, 2*time.Minute, "n2 ready", func() bool {
		code, _ := getStatus(t, httpURL(n2, "/readyz"))
		return code == 200
	})
	if err := n2.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := n1.stop(t); err != nil {
		t.Fatal(err)
	}

	n1 = startNode(t, cfg1)
	if code, body := getStatus(t, httpURL(n1, "/readyz")); code != 503 || !strings.Contains(body, "not joined yet") {
		t.Fatalf("readyz of a bootstrap node restarted while its peer is down = %d %q, want 503 not joined yet", code, body)
	}
	startNode(t, cfg2)
	testkit.Eventually(t, 2*time.Minute, "n1 ready once n2 is back", func() bool {
		code, _ := getStatus(t, httpURL(n1, "/readyz"))
		return code == 200
	})
}

// bootstrapPair starts n1 (bootstrap: true, seed n2) and n2 (seed n1) and
// waits until n2 serves: the plan is {n1, n2}. It returns n1's config.
func bootstrapPair(t *testing.T) (cfg1 Config, n1, n2 *runningNode) {
	t.Helper()
	g := freeGossipAddrs(t, 2)
	g1, g2 := g[0], g[1]
	cfg1 = testConfig(t, "n1", g2)
	cfg1.Listen.Gossip, cfg1.Bootstrap = g1, true
	cfg2 := testConfig(t, "n2", g1)
	cfg2.Listen.Gossip = g2
	n1 = startNode(t, cfg1)
	n2 = startNode(t, cfg2)
	testkit.Eventually(t, 2*time.Minute, "n2 ready", func() bool {
		code, _ := getStatus(t, httpURL(n2, "/readyz"))
		return code == 200
	})
	return cfg1, n1, n2
}

// planIsOnly reports whether n's plan is a stable plan of name alone.
func planIsOnly(n *runningNode, name string) bool {
	p := n.place.Load().Plan()
	return p.Stable() && slices.Equal(p.Members, []string{name})
}

// A bootstrap node whose peer left is a cluster of one: restarted alone,
// it serves at once, though its ring map still names the peer (as left)
// and its seed is gone.
func TestBootstrapRestartAfterPeerLeft(t *testing.T) {
	cfg1, n1, n2 := bootstrapPair(t)
	if code, _, body := do(t, "POST", httpURL(n2, "/v1/leave"), nil, nil); code != 200 {
		t.Fatalf("POST /v1/leave on n2 = %d %s", code, body)
	}
	select {
	case err := <-n2.done:
		if err != nil {
			t.Fatalf("n2 Run after leaving = %v, want nil", err)
		}
		n2.done <- nil // for the cleanup's stop
	case <-time.After(3 * time.Minute):
		t.Fatal("n2 did not stop after leaving")
	}
	testkit.Eventually(t, 2*time.Minute, "n1's plan is n1 alone", func() bool { return planIsOnly(n1, "n1") })
	if err := n1.stop(t); err != nil {
		t.Fatal(err)
	}

	n1 = startNode(t, cfg1)
	if st := n1.gossip.Ring()["n2"].Status; st != "left" {
		t.Fatalf("n2's row in n1's persisted map = %q, want left", st)
	}
	if code, body := getStatus(t, httpURL(n1, "/readyz")); code != 200 {
		t.Fatalf("readyz of a bootstrap node whose peer left = %d %q, want 200", code, body)
	}
	if code, _, body := do(t, "PUT", httpURL(n1, "/v1/kv/k?w=all"), []byte("v"), nil); code != 204 {
		t.Fatalf("PUT w=all on the cluster of one = %d %s", code, body)
	}
}

// A bootstrap node restarted while its only peer is gone waits for it;
// once the operator removes the peer, the plan is the node alone and it
// serves without having reached a seed, and again at once after a restart.
func TestBootstrapReadyOncePeerRemoved(t *testing.T) {
	cfg1, n1, n2 := bootstrapPair(t)
	if err := n2.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := n1.stop(t); err != nil {
		t.Fatal(err)
	}

	n1 = startNode(t, cfg1)
	if code, body := getStatus(t, httpURL(n1, "/readyz")); code != 503 {
		t.Fatalf("readyz of a bootstrap node whose peer is down = %d %q, want 503", code, body)
	}
	if code, _, body := do(t, "POST", httpURL(n1, "/v1/remove/n2"), nil, nil); code != 200 {
		t.Fatalf("POST /v1/remove/n2 on n1 = %d %s", code, body)
	}
	testkit.Eventually(t, 2*time.Minute, "n1 ready once n2 is removed", func() bool {
		code, _ := getStatus(t, httpURL(n1, "/readyz"))
		return code == 200
	})
	if !planIsOnly(n1, "n1") {
		t.Fatalf("n1 ready with plan %+v, want n1 alone", n1.place.Load().Plan())
	}
	if n1.seedJoined.Load() {
		t.Fatal("n1 reached a seed, but its only seed is stopped")
	}
	if err := n1.stop(t); err != nil {
		t.Fatal(err)
	}
	n1 = startNode(t, cfg1)
	if code, body := getStatus(t, httpURL(n1, "/readyz")); code != 200 {
		t.Fatalf("readyz after a restart with n2 removed = %d %q, want 200", code, body)
	}
}

// A bootstrap node without a real seed is ready at once even when its
// plan names other nodes: it joins nobody, so waiting would not help
// (the same config without bootstrap serves at once too).
func TestBootstrapWithoutSeedsReadyAfterRestart(t *testing.T) {
	cfg1, n1, n2 := bootstrapPair(t)
	if err := n2.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := n1.stop(t); err != nil {
		t.Fatal(err)
	}
	cfg1.Seeds = nil
	n1 = startNode(t, cfg1)
	if p := n1.place.Load().Plan(); !slices.Contains(p.Members, "n2") {
		t.Fatalf("n1's persisted plan %+v does not name n2", p)
	}
	// Ready from the start, not only once gossip's seedless join closed
	// Joined (and without logging that it waits for a seed).
	if !n1.readyAtStart() {
		t.Fatal("a seedless bootstrap node whose plan names n2 is not ready at start")
	}
	if code, body := getStatus(t, httpURL(n1, "/readyz")); code != 200 {
		t.Fatalf("readyz of a seedless bootstrap node = %d %q, want 200", code, body)
	}
}

// A write forwarded to a node that has not joined is refused with a quorum
// error (the forwarder answers 503), not coordinated on a ring of itself.
func TestForwardRefusedUntilJoined(t *testing.T) {
	n2 := startNode(t, testConfig(t, "n2", freeGossipAddr(t)))
	req := replica.Request{Kind: replica.KindForward, Key: []byte("k"),
		Write: &replica.ForwardWrite{Value: []byte("v"), W: replica.QuorumAll}}
	_, err := n2.rpcHandler().Handle(t.Context(), "n1", req)
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || !errors.Is(qe.Failures["n2"], errNotJoined) {
		t.Fatalf("forward to a node not joined = %v, want a quorum error naming errNotJoined", err)
	}
	if s := n2.engine.Get([]byte("k")); len(s) != 0 {
		t.Fatalf("the refused forward wrote %v", s)
	}
}
