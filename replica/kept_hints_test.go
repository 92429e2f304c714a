package replica_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// recordingSink is a HintSink that keeps every hint in memory.
type recordingSink struct {
	mu    sync.Mutex // guards hints
	hints []keptHint
}

type keptHint struct {
	target string
	entry  replica.Entry
}

func (s *recordingSink) StoreHint(_ context.Context, target string, key []byte, set vclock.Siblings) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hints = append(s.hints, keptHint{target, replica.Entry{Key: key, Siblings: set}})
	return nil
}

// entriesFor returns the hints kept for target as a handoff batch.
func (s *recordingSink) entriesFor(target string) []replica.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []replica.Entry
	for _, h := range s.hints {
		if h.target == target {
			out = append(out, h.entry)
		}
	}
	return out
}

// TestCoordinatorKeepsHints: 3 nodes, N=3, one replica down or cut off:
// there is no stand-in, so the coordinator keeps the down replica's copy
// in its own hint sink. W=2 writes succeed (the kept hint does not count
// toward W), strict W=3 still fails, and delivering the kept hints makes
// the replica whole.
func TestCoordinatorKeepsHints(t *testing.T) {
	for _, how := range []string{"down", "cut off"} {
		t.Run(how, inBubble(func(t *testing.T) { testCoordinatorKeepsHints(t, how) }))
	}
}

func testCoordinatorKeepsHints(t *testing.T, how string) {
	sinks := map[string]*recordingSink{"n1": {}, "n2": {}, "n3": {}}
	c := newCluster(t, 3, 3, func(cfg *replica.Config) { cfg.Hints = sinks[cfg.Self] })
	c.net.Isolate("n3")
	if how == "down" {
		c.live.SetAlive("n3", false)
	}
	const writes = 20
	want := map[string]vclock.Siblings{}
	for i := range writes {
		k := fmt.Sprintf("k%d", i)
		res, err := c.put("n1", []byte(k), "v", replica.WriteOptions{W: 2})
		if err != nil {
			t.Fatalf("W=2 write %s: %v", k, err)
		}
		if res.Replies != 2 || res.Hinted != 0 {
			t.Fatalf("W=2 write %s: %d replies, %d hinted; want 2, 0 (kept hints do not count)", k, res.Replies, res.Hinted)
		}
		want[k] = res.Siblings
	}
	c.drain()
	kept := sinks["n1"].entriesFor("n3")
	if len(kept) != writes {
		t.Fatalf("n1 keeps %d hints for n3, want %d", len(kept), writes)
	}
	if st := c.nodes["n1"].Stats(); st.HintsKept != writes || st.HintsSent != 0 {
		t.Fatalf("stats: HintsKept %d, HintsSent %d; want %d, 0", st.HintsKept, st.HintsSent, writes)
	}

	// Strict W=3 cannot be met by the two live replicas.
	_, err := c.put("n1", []byte("strict"), "v", replica.WriteOptions{W: 3, Strict: true})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("strict W=3 with n3 %s: %v, want a quorum error", how, err)
	}
	c.drain()
	if how == "down" && len(sinks["n1"].entriesFor("n3")) != writes {
		t.Fatal("a write refused before it was stored left a hint")
	}

	// n3 comes back; the kept hints make it whole.
	c.net.Heal()
	c.live.SetAlive("n3", true)
	if err := c.nodes["n1"].Handoff(t.Context(), "n3", kept); err != nil {
		t.Fatal(err)
	}
	for k, s := range want {
		if got := c.stores["n3"].Get([]byte(k)); !got.Equal(s) {
			t.Fatalf("%s on n3: %v, want %v", k, values(got), values(s))
		}
	}
}

// TestKeptHintNotForNotReplica: a replica refusing a copy because its
// newer plan makes it no replica of the key gets no hint.
func TestKeptHintNotForNotReplica(t *testing.T) { synctest.Test(t, testKeptHintNotForNotReplica) }

func testKeptHintNotForNotReplica(t *testing.T) {
	sinks := map[string]*recordingSink{"n1": {}, "n2": {}, "n3": {}}
	c := newCluster(t, 3, 3, func(cfg *replica.Config) { cfg.Hints = sinks[cfg.Self] })
	c.net.Register("n3", replica.HandlerFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
		return replica.Response{}, replica.ErrNotReplica
	}))
	if _, err := c.put("n1", []byte("k"), "v", replica.WriteOptions{W: 2}); err != nil {
		t.Fatal(err)
	}
	c.drain()
	if n := len(sinks["n1"].entriesFor("n3")); n != 0 {
		t.Fatalf("%d hints kept for a node that is no replica", n)
	}
}
