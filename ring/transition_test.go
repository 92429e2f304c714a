package ring

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// placement mirrors replica.Placement (ring must not import replica): a
// *Transition is what node hands the coordinator.
type placement interface {
	Partition(key []byte) int
	Replicas(int) []string
	Fallbacks(int) []string
	Pending(int) []string
	Targets(int) []string
	Epoch() uint64
}

var _ placement = (*Transition)(nil)

// transitionConfig is small enough to check every partition by hand-made
// reference functions.
func transitionConfig() Config {
	return Config{Partitions: 31, ReplicationFactor: 3, Load: 1.25, VirtualNodes: 20}
}

// tb is what the helpers need of *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

func mustTransition(t tb, cfg Config, p Plan) *Transition {
	t.Helper()
	tr, err := NewTransition(cfg, p)
	if err != nil {
		t.Fatalf("NewTransition(%+v): %v", p, err)
	}
	return tr
}

// checkDefinitions compares every per-partition table of tr with its
// definition in terms of Current() and Target(), and Moves and PendingOf
// with the pending pairs.
func checkDefinitions(t tb, tr *Transition) {
	t.Helper()
	s, tg := tr.Current(), tr.Target()
	var moves []Move
	pendingOf := map[string][]int{}
	for p := range tr.Current().Config().Partitions {
		if got, want := tr.Replicas(p), s.Replicas(p); !slices.Equal(got, want) {
			t.Fatalf("Replicas(%d) = %v, want S(p) %v", p, got, want)
		}
		if got, want := tr.Targets(p), tg.Replicas(p); !slices.Equal(got, want) {
			t.Fatalf("Targets(%d) = %v, want T(p) %v", p, got, want)
		}
		pending := minus(tg.Replicas(p), s.Replicas(p))
		if got := tr.Pending(p); !slices.Equal(got, pending) || (got == nil) != (pending == nil) {
			t.Fatalf("Pending(%d) = %#v, want %#v", p, got, pending)
		}
		if got, want := tr.Retiring(p), minus(s.Replicas(p), tg.Replicas(p)); !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("Retiring(%d) = %#v, want %#v", p, got, want)
		}
		if got, want := tr.Fallbacks(p), minus(s.Fallbacks(p), pending); !slices.Equal(got, want) {
			t.Fatalf("Fallbacks(%d) = %v, want %v", p, got, want)
		}
		for _, x := range pending {
			moves = append(moves, Move{Partition: p, To: x, From: s.Replicas(p)})
			pendingOf[x] = append(pendingOf[x], p)
		}
		for _, node := range slices.Concat(s.Members(), tg.Members()) {
			want := slices.Contains(s.Replicas(p), node) || slices.Contains(pending, node)
			if got := tr.Holds(node, p); got != want {
				t.Fatalf("Holds(%q, %d) = %v, want %v", node, p, got, want)
			}
		}
	}
	slices.SortFunc(moves, func(a, b Move) int {
		if a.Partition != b.Partition {
			return a.Partition - b.Partition
		}
		return strings.Compare(a.To, b.To)
	})
	if diff := cmp.Diff(moves, tr.Moves()); diff != "" {
		t.Fatalf("Moves (-want +got):\n%s", diff)
	}
	for _, node := range slices.Concat(s.Members(), tg.Members(), []string{"nobody"}) {
		if diff := cmp.Diff(pendingOf[node], tr.PendingOf(node)); diff != "" {
			t.Fatalf("PendingOf(%q) (-want +got):\n%s", node, diff)
		}
	}
}

func TestTransition(t *testing.T) {
	cfg := transitionConfig()
	abc := []string{"a", "b", "c"}
	tests := []struct {
		name string
		plan Plan
		// check adds case-specific expectations to the definitions.
		check func(t *testing.T, tr *Transition)
	}{
		{"stable", NewPlan(abc, 10), func(t *testing.T, tr *Transition) {
			if tr.Current() != tr.Target() {
				t.Fatal("stable plan: Target is not the same *Ring as Current")
			}
			for p := range cfg.Partitions {
				if tr.Pending(p) != nil || tr.Retiring(p) != nil {
					t.Fatalf("stable plan: partition %d pending %v retiring %v", p, tr.Pending(p), tr.Retiring(p))
				}
				if !slices.Equal(tr.Targets(p), tr.Replicas(p)) || !slices.Equal(tr.Fallbacks(p), tr.Current().Fallbacks(p)) {
					t.Fatalf("stable plan: partition %d targets %v fallbacks %v", p, tr.Targets(p), tr.Fallbacks(p))
				}
			}
			if len(tr.Moves()) != 0 {
				t.Fatalf("stable plan: moves %v", tr.Moves())
			}
		}},
		{"join", NewPlan(abc, 10).MoveTo([]string{"a", "b", "c", "d"}, 20), func(t *testing.T, tr *Transition) {
			if len(tr.PendingOf("d")) == 0 {
				t.Fatal("joining d pulls nothing")
			}
			for p := range cfg.Partitions {
				if slices.Contains(tr.Retiring(p), "d") || slices.Contains(tr.Replicas(p), "d") {
					t.Fatalf("partition %d: joining d serves or retires", p)
				}
				if !slices.Contains(tr.Targets(p), "d") && slices.Contains(tr.Pending(p), "d") {
					t.Fatalf("partition %d: d pending but not a target", p)
				}
			}
		}},
		{"leave", NewPlan([]string{"a", "b", "c", "d"}, 10).MoveTo(abc, 20), func(t *testing.T, tr *Transition) {
			if tr.PendingOf("d") != nil {
				t.Fatalf("leaving d pulls %v", tr.PendingOf("d"))
			}
			retires := 0
			for p := range cfg.Partitions {
				if slices.Contains(tr.Targets(p), "d") {
					t.Fatalf("partition %d: leaving d is a target", p)
				}
				if slices.Contains(tr.Replicas(p), "d") {
					retires++
					if !slices.Contains(tr.Retiring(p), "d") {
						t.Fatalf("partition %d: d serves but does not retire", p)
					}
				}
			}
			if retires == 0 {
				t.Fatal("d serves nothing before leaving")
			}
		}},
		{"replace", NewPlan(abc, 10).MoveTo([]string{"a", "b", "d"}, 20), nil},
		{"shrink below N", NewPlan(abc, 10).MoveTo([]string{"a"}, 20), func(t *testing.T, tr *Transition) {
			for p := range cfg.Partitions {
				if !slices.Equal(tr.Targets(p), []string{"a"}) {
					t.Fatalf("partition %d targets %v", p, tr.Targets(p))
				}
			}
		}},
		{"grow from one", NewPlan([]string{"a"}, 10).MoveTo(abc, 20), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := mustTransition(t, cfg, tt.plan)
			if !tr.Plan().Equal(tt.plan) || tr.Epoch() != tt.plan.Epoch || tr.PlanHash() != tt.plan.Hash() {
				t.Fatalf("Plan %+v epoch %d hash %x; want %+v", tr.Plan(), tr.Epoch(), tr.PlanHash(), tt.plan)
			}
			if !slices.Equal(tr.Current().Members(), tt.plan.Members) || !slices.Equal(tr.Target().Members(), tt.plan.TargetMembers()) {
				t.Fatalf("rings %v -> %v; want %v -> %v", tr.Current().Members(), tr.Target().Members(), tt.plan.Members, tt.plan.TargetMembers())
			}
			checkDefinitions(t, tr)
			if tt.check != nil {
				tt.check(t, tr)
			}
		})
	}
}

func TestTransitionZeroPlan(t *testing.T) {
	tr := mustTransition(t, transitionConfig(), Plan{})
	if tr.Epoch() != 0 || tr.Current().Len() != 0 || tr.Current() != tr.Target() {
		t.Fatalf("zero plan: epoch %d, %d members", tr.Epoch(), tr.Current().Len())
	}
	p := tr.Partition([]byte("k"))
	if p < 0 || p >= transitionConfig().Partitions {
		t.Fatalf("Partition = %d", p)
	}
	if tr.Replicas(p) != nil || tr.Targets(p) != nil || tr.Pending(p) != nil || tr.Fallbacks(p) != nil ||
		tr.Retiring(p) != nil || tr.Holds("a", p) || tr.PendingOf("a") != nil || len(tr.Moves()) != 0 {
		t.Fatal("zero plan: lookups answer something")
	}
}

func TestTransitionOutOfRange(t *testing.T) {
	tr := mustTransition(t, transitionConfig(), NewPlan([]string{"a", "b"}, 1).MoveTo([]string{"a", "b", "c"}, 2))
	for _, p := range []int{-1, transitionConfig().Partitions} {
		if tr.Replicas(p) != nil || tr.Targets(p) != nil || tr.Pending(p) != nil || tr.Fallbacks(p) != nil ||
			tr.Retiring(p) != nil || tr.Holds("a", p) {
			t.Fatalf("partition %d: lookups answer something", p)
		}
	}
}

func TestNewTransitionErrors(t *testing.T) {
	cfg := transitionConfig()
	tests := []struct {
		name string
		cfg  Config
		plan Plan
		want error
	}{
		{"invalid config", Config{}, NewPlan([]string{"a"}, 1), ErrInvalidConfig},
		{"invalid config, zero plan", Config{}, Plan{}, ErrInvalidConfig},
		{"unsorted members", cfg, Plan{Epoch: 1, Members: []string{"b", "a"}}, ErrBadPlan},
		{"no members", cfg, Plan{Epoch: 2}, ErrBadPlan},
		{"empty target", cfg, Plan{Epoch: 2, Members: []string{"a"}, Target: []string{}}, ErrBadPlan},
		{"too many members", cfg, NewPlan(names("n", 32), 1), ErrTooManyNodes},
		{"too many targets", cfg, NewPlan([]string{"a"}, 1).MoveTo(names("n", 32), 2), ErrTooManyNodes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := NewTransition(tt.cfg, tt.plan)
			if !errors.Is(err, tt.want) || tr != nil {
				t.Fatalf("NewTransition = %v, %v; want nil, %v", tr, err, tt.want)
			}
		})
	}
}

// TestTransitionProperties checks the set identities replica's joint
// quorum relies on, for random memberships S and T.
func TestTransitionProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{
			Partitions:        rapid.SampledFrom([]int{2, 7, 31, 97}).Draw(t, "partitions"),
			ReplicationFactor: rapid.IntRange(1, 5).Draw(t, "n"),
			Load:              rapid.Float64Range(1, 2).Draw(t, "load"),
			VirtualNodes:      rapid.IntRange(1, 40).Draw(t, "vnodes"),
		}
		pool := names("n", min(cfg.Partitions, 10))
		s := rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 1, len(pool), rapid.ID[string]).Draw(t, "S")
		tg := rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 1, len(pool), rapid.ID[string]).Draw(t, "T")
		plan := NewPlan(s, 1).MoveTo(tg, 2)
		tr, err := NewTransition(cfg, plan)
		if err != nil {
			t.Fatalf("NewTransition(%+v): %v", plan, err)
		}
		var pairs []Move
		for p := range cfg.Partitions {
			reps, pend, fbs := tr.Replicas(p), tr.Pending(p), tr.Fallbacks(p)
			union := slices.Sorted(slices.Values(slices.Concat(reps, pend)))
			both := slices.Compact(slices.Sorted(slices.Values(slices.Concat(tr.Current().Replicas(p), tr.Target().Replicas(p)))))
			if !slices.Equal(union, both) {
				t.Fatalf("partition %d: Replicas ∪ Pending = %v, S(p) ∪ T(p) = %v", p, union, both)
			}
			for _, x := range pend {
				if slices.Contains(reps, x) {
					t.Fatalf("partition %d: %q both pending and serving", p, x)
				}
				pairs = append(pairs, Move{Partition: p, To: x, From: reps})
			}
			for _, x := range fbs {
				if slices.Contains(union, x) {
					t.Fatalf("partition %d: fallback %q is a replica or pending", p, x)
				}
			}
		}
		moves := tr.Moves()
		if len(moves) != len(pairs) {
			t.Fatalf("%d moves, %d pending pairs", len(moves), len(pairs))
		}
		for _, want := range pairs {
			if !slices.ContainsFunc(moves, func(m Move) bool {
				return m.Partition == want.Partition && m.To == want.To && slices.Equal(m.From, want.From)
			}) {
				t.Fatalf("pending pair %d -> %q missing from Moves", want.Partition, want.To)
			}
		}
		if !slices.IsSortedFunc(moves, func(a, b Move) int {
			if a.Partition != b.Partition {
				return a.Partition - b.Partition
			}
			return strings.Compare(a.To, b.To)
		}) {
			t.Fatal("Moves not ordered by partition then To")
		}
	})
}

// TestTransitionSharedSlicesAreClipped checks that appending to a returned
// list cannot overwrite the transition's tables.
func TestTransitionSharedSlicesAreClipped(t *testing.T) {
	tr := mustTransition(t, transitionConfig(), NewPlan(names("n", 3), 1).MoveTo(names("n", 8), 2))
	for p := range transitionConfig().Partitions {
		before := slices.Concat(tr.Replicas(p), tr.Pending(p), tr.Retiring(p), tr.Fallbacks(p), tr.Targets(p))
		for _, l := range [][]string{tr.Replicas(p), tr.Pending(p), tr.Retiring(p), tr.Fallbacks(p), tr.Targets(p)} {
			_ = append(l, "intruder")
		}
		after := slices.Concat(tr.Replicas(p), tr.Pending(p), tr.Retiring(p), tr.Fallbacks(p), tr.Targets(p))
		if diff := cmp.Diff(before, after); diff != "" {
			t.Fatalf("partition %d: append changed the tables (-want +got):\n%s", p, diff)
		}
	}
	for _, node := range names("n", 8) {
		before := slices.Clone(tr.PendingOf(node))
		_ = append(tr.PendingOf(node), -1)
		if diff := cmp.Diff(before, tr.PendingOf(node)); diff != "" {
			t.Fatalf("PendingOf(%q): append changed the table (-want +got):\n%s", node, diff)
		}
	}
	moves := tr.Moves()
	moves[0].To = "intruder"
	if tr.Moves()[0].To == "intruder" {
		t.Fatal("Moves shares its slice with the transition")
	}
}

// TestTransitionLookupAllocs holds the request path to zero allocations.
func TestTransitionLookupAllocs(t *testing.T) {
	tr := mustTransition(t, DefaultConfig(), NewPlan(names("node-", 5), 1).MoveTo(names("node-", 6), 2))
	key := []byte("user:1234567")
	allocs := testing.AllocsPerRun(100, func() {
		p := tr.Partition(key)
		_ = tr.Replicas(p)
		_ = tr.Pending(p)
		_ = tr.Fallbacks(p)
		_ = tr.Targets(p)
		_ = tr.Retiring(p)
		_ = tr.Holds("node-6", p)
		_ = tr.Epoch()
	})
	if allocs != 0 {
		t.Fatalf("lookup allocates %v times per run", allocs)
	}
}

// BenchmarkTransitionLookup measures the request path during a join:
// partition, serving replicas, pending replicas and fallbacks.
func BenchmarkTransitionLookup(b *testing.B) {
	for _, members := range []int{5, 50} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			tr := mustTransition(b, DefaultConfig(), NewPlan(names("node-", members), 1).MoveTo(names("node-", members+1), 2))
			key := []byte("user:1234567")
			b.ReportAllocs()
			sink := 0
			for i := 0; b.Loop(); i++ {
				key[0] = byte(i)
				p := tr.Partition(key)
				sink += len(tr.Replicas(p)) + len(tr.Pending(p)) + len(tr.Fallbacks(p))
			}
			if sink == 0 {
				b.Fatal("lookups returned nothing")
			}
		})
	}
}

// BenchmarkNewTransition measures building both rings and the tables: the
// cost of a plan change.
func BenchmarkNewTransition(b *testing.B) {
	for _, members := range []int{5, 50} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			plan := NewPlan(names("node-", members), 1).MoveTo(names("node-", members+1), 2)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewTransition(DefaultConfig(), plan); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
