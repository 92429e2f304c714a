package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestKillAndRestart crashes one node with SIGKILL, checks that the
// cluster keeps taking quorum writes and reports the node dead but still in
// the ring, restarts it on the same data directory, and reads every key
// with R=all through the restarted node.
func TestKillAndRestart(t *testing.T) {
	deadline := testDeadline(t, 3*time.Minute)
	servers := startCluster(t, deadline)
	n1, n2, n3 := servers[0], servers[1], servers[2]
	waitMembers(t, deadline, n1, map[string]string{"n1": "alive", "n2": "alive", "n3": "alive"})

	put := func(s *server, key, value, w string) {
		t.Helper()
		code, body, err := httpDo(http.MethodPut, fmt.Sprintf("http://%s/v1/kv/%s?w=%s", s.addrs["http"], key, w), []byte(value))
		if err != nil || code != http.StatusNoContent {
			t.Fatalf("PUT %s w=%s on %s: %d %s %v", key, w, s.name, code, body, err)
		}
	}
	for i := range 10 {
		put(n1, fmt.Sprintf("before-%d", i), fmt.Sprintf("b%d", i), "all")
	}

	n2.kill(t)
	waitMembers(t, deadline, n1, map[string]string{"n1": "alive", "n2": "dead", "n3": "alive"})
	for i := range 10 {
		put(n3, fmt.Sprintf("during-%d", i), fmt.Sprintf("d%d", i), "quorum")
	}
	// W=all cannot be met with a replica down, unless a fallback stands in
	// (sloppy quorum); with three nodes and N=3 there is none.
	code, body, err := httpDo(http.MethodPut, "http://"+n1.addrs["http"]+"/v1/kv/needs-all?w=all", []byte("x"))
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("PUT w=all with a node down: %d %s %v; want 503", code, body, err)
	}

	restarted := startServer(t, "n2-restarted", n2.args...)
	restarted.waitReady(t, deadline)
	waitMembers(t, deadline, n1, map[string]string{"n1": "alive", "n2": "alive", "n3": "alive"})
	for _, k := range []struct{ prefix, value string }{{"before", "b"}, {"during", "d"}} {
		for i := range 10 {
			key, want := fmt.Sprintf("%s-%d", k.prefix, i), fmt.Sprintf("%s%d", k.value, i)
			code, body, err := httpDo(http.MethodGet, "http://"+restarted.addrs["http"]+"/v1/kv/"+key+"?r=all", nil)
			if err != nil || code != http.StatusOK || string(body) != want {
				t.Errorf("GET %s r=all on restarted n2: %d %q %v; want 200 %q", key, code, body, err, want)
			}
		}
	}
	for _, s := range []*server{n3, restarted, n1} {
		if code := s.stop(t, 30*time.Second); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", s.name, code)
		}
	}
}

// waitMembers waits until s reports exactly the given liveness per member,
// every one of them still joined to the ring.
func waitMembers(t *testing.T, deadline time.Time, s *server, want map[string]string) {
	t.Helper()
	eventually(t, deadline, fmt.Sprintf("%s reports members %v", s.name, want), func() error {
		var ms []member
		if err := getJSON(s.addrs["http"], "/v1/members", &ms); err != nil {
			return err
		}
		if len(ms) != len(want) {
			return fmt.Errorf("members %+v", ms)
		}
		for _, m := range ms {
			if want[m.Name] != m.Liveness || m.Status != "joined" {
				return fmt.Errorf("members %+v", ms)
			}
		}
		return nil
	})
}
