package replica

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/vclock"
	"pgregory.net/rapid"
)

func TestParseQuorum(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Quorum
		err  bool
	}{
		{"", QuorumDefault, false},
		{"one", QuorumOne, false},
		{"ONE", QuorumOne, false},
		{"quorum", QuorumMajority, false},
		{"all", QuorumAll, false},
		{"1", 1, false},
		{"15", 15, false},
		{"0", 0, true},
		{"-1", 0, true},
		{"two", 0, true},
		{"2.5", 0, true},
		{"1e3", 0, true},
		// Surrounding spaces are ignored alike for words and numbers.
		{" all", QuorumAll, false},
		{"quorum\t", QuorumMajority, false},
		{" 2", 2, false},
		{"2 ", 2, false},
		{" 0 ", 0, true},
		{"1 2", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseQuorum(tc.in)
			if tc.err {
				if !errors.Is(err, ErrBadQuorum) {
					t.Fatalf("err = %v, want ErrBadQuorum", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %v, %v; want %v", got, err, tc.want)
			}
			if back, _ := ParseQuorum(got.String()); back != got {
				t.Errorf("String() %q does not parse back", got.String())
			}
		})
	}
}

func TestNeed(t *testing.T) {
	for _, tc := range []struct {
		q, def      Quorum
		n, replicas int
		want        int
		err         bool
	}{
		{QuorumDefault, QuorumMajority, 3, 3, 2, false},
		{QuorumOne, QuorumMajority, 3, 3, 1, false},
		{QuorumMajority, QuorumOne, 5, 5, 3, false},
		{QuorumMajority, QuorumOne, 4, 4, 3, false},
		{QuorumAll, QuorumOne, 3, 3, 3, false},
		{QuorumAll, QuorumOne, 3, 2, 2, false}, // cluster smaller than N
		{3, QuorumOne, 3, 1, 1, false},
		{2, QuorumOne, 3, 3, 2, false},
		{4, QuorumOne, 3, 3, 0, true},
		{-9, QuorumOne, 3, 3, 0, true},
		{QuorumDefault, 5, 3, 3, 0, true},
	} {
		t.Run(fmt.Sprintf("%v/%v/N=%d/reps=%d", tc.q, tc.def, tc.n, tc.replicas), func(t *testing.T) {
			got, err := need(tc.q, tc.def, tc.n, tc.replicas)
			if tc.err != (err != nil) || got != tc.want {
				t.Fatalf("= %d, %v; want %d (err %v)", got, err, tc.want, tc.err)
			}
			if err != nil && !errors.Is(err, ErrBadQuorum) {
				t.Errorf("err %v is not ErrBadQuorum", err)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	down := map[string]bool{"c": true}
	got := plan([]string{"a", "b", "c"}, "b", func(n string) bool { return !down[n] })
	want := []target{{"a", actSend}, {"b", actLocal}, {"c", actDown}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(target{})); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

// TestTallyProperty checks the tally against a direct count: met exactly
// when acks reach need, lost exactly when the rest cannot make it.
func TestTallyProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		total := rapid.IntRange(1, 7).Draw(t, "total")
		need := rapid.IntRange(1, total).Draw(t, "need")
		nodes := make([]string, total)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("n%d", i)
		}
		tl := newTally(need, nodes)
		acks, fails := 0, 0
		for _, node := range nodes {
			if rapid.Bool().Draw(t, "ok") {
				tl.ack(node)
				tl.ack(node) // duplicates are ignored
				acks++
			} else {
				tl.fail(node, errors.New("x"))
				fails++
			}
			want := pending
			if acks >= need {
				want = met
			} else if total-fails < need {
				want = lost
			}
			if got := tl.state(); got != want {
				t.Fatalf("after %d acks %d fails of %d (need %d): state %d, want %d", acks, fails, total, need, got, want)
			}
		}
	})
}

func TestTallyExpire(t *testing.T) {
	nodes := []string{"a", "b", "c"}
	tl := newTally(2, nodes)
	tl.ack("a")
	tl.expire(nodes, errors.New("deadline"))
	e := tl.err("get")
	if tl.state() != lost || e.Got != 1 || len(e.Failures) != 2 || !errors.Is(e, ErrQuorum) {
		t.Fatalf("state %d err %+v", tl.state(), e)
	}
	msg := e.Error()
	for _, s := range []string{"get", "need 2, got 1", "b: no answer before the deadline: deadline", "c:"} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q lacks %q", msg, s)
		}
	}
}

func TestRepairs(t *testing.T) {
	_, s1 := vclock.Mint(nil, "x", vclock.Write{Value: []byte("1")})
	_, s2 := vclock.Mint(s1, "x", vclock.Write{Value: []byte("2"), Blind: true})
	final := vclock.Merge(s1, s2)
	replies := map[string]vclock.Siblings{"a": s2, "b": s1, "c": nil}
	got := repairs([]string{"a", "b", "c", "d"}, replies, final)
	if d := cmp.Diff([]string{"b", "c"}, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).withDefaults().Validate(); err == nil {
		t.Fatal("empty config validated")
	}
	c := DefaultConfig()
	c.Self, c.Store, c.Transport = "a", nil, TransportFunc(nil)
	c.Placement = func() Placement { return nil }
	c.DefaultW = 4
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "Store") || !strings.Contains(err.Error(), "DefaultW") {
		t.Fatalf("err = %v", err)
	}
}

// TestForwardRetryable: a forward goes to the next replica only when its
// target certainly ran nothing.
func TestForwardRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("dial: %w", ErrUnreachable), true},
		{fmt.Errorf("x: %w: %w: conn failed earlier", ErrConnLost, ErrNotSent), true},
		{fmt.Errorf("%w: n2", ErrUnknownPeer), true},
		{fmt.Errorf("%w: n2", ErrReplicaDown), true},
		{fmt.Errorf("%w: plan", ErrNotReplica), true},
		{fmt.Errorf("x: %w: broke while waiting", ErrConnLost), false},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("remote: %w", ErrClosed), true},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
