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

// smallConfig keeps property tests quick; the tuned default is exercised
// by the figures and benchmarks.
func smallConfig() Config {
	return Config{Partitions: 271, ReplicationFactor: 3, Load: 1.1, VirtualNodes: 40}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return out
}

func mustNew(t testing.TB, cfg Config, members []string) *Ring {
	t.Helper()
	r, err := New(cfg, members)
	if err != nil {
		t.Fatalf("New(%v): %v", members, err)
	}
	return r
}

func TestNewErrors(t *testing.T) {
	tiny := Config{Partitions: 5, ReplicationFactor: 3, Load: 1.25, VirtualNodes: 10}
	tests := []struct {
		name    string
		cfg     Config
		members []string
		want    error
	}{
		{"invalid config", Config{}, []string{"a"}, ErrInvalidConfig},
		{"empty name", smallConfig(), []string{"a", ""}, ErrEmptyNode},
		{"duplicate", smallConfig(), []string{"a", "b", "a"}, ErrDuplicateNode},
		{"too long", smallConfig(), []string{strings.Repeat("x", MaxNodeNameBytes+1)}, ErrNodeName},
		{"not utf8", smallConfig(), []string{"a\xff"}, ErrNodeName},
		{"more nodes than partitions", tiny, names("n", 6), ErrTooManyNodes},
		{"too many ring points", Config{Partitions: 1021, ReplicationFactor: 3, Load: 1.1, VirtualNodes: 4096}, names("n", 33), ErrTooManyNodes},
		{"table too large", Config{Partitions: 65521, ReplicationFactor: 3, Load: 1.1, VirtualNodes: 1}, names("n", 65), ErrTooManyNodes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg, tt.members)
			if !errors.Is(err, tt.want) || r != nil {
				t.Fatalf("New() = %v, %v; want nil, %v", r, err, tt.want)
			}
		})
	}
}

func TestEmptyRing(t *testing.T) {
	for _, members := range [][]string{nil, {}} {
		r := mustNew(t, DefaultConfig(), members)
		p, reps := r.Lookup([]byte("k"))
		if p < 0 || p >= r.Config().Partitions || reps != nil {
			t.Fatalf("Lookup = %d, %v; want a partition and nil", p, reps)
		}
		if r.Owner(p) != "" || r.Fallbacks(p) != nil || !r.Degraded() || r.Len() != 0 || len(r.Members()) != 0 {
			t.Fatalf("empty ring answers owner %q fallbacks %v degraded %v len %d", r.Owner(p), r.Fallbacks(p), r.Degraded(), r.Len())
		}
		if in := r.Inspect(nil); len(in.Nodes) != 0 || in.Replicas != 0 {
			t.Fatalf("Inspect of empty ring = %+v", in)
		}
		pl := r.Preference([]byte("k"))
		if len(pl.Replicas) != 0 || len(pl.Fallbacks) != 0 {
			t.Fatalf("Preference of empty ring = %+v", pl)
		}
	}
}

func TestOutOfRangePartition(t *testing.T) {
	r := mustNew(t, smallConfig(), names("n", 4))
	for _, p := range []int{-1, r.Config().Partitions, 1 << 40} {
		if r.Owner(p) != "" || r.Replicas(p) != nil || r.Fallbacks(p) != nil || r.IsReplica(p, "n1") {
			t.Fatalf("partition %d: got an answer for an invalid partition", p)
		}
	}
}

// TestDegraded checks that a cluster smaller than N serves every partition
// from all its members and says so.
func TestDegraded(t *testing.T) {
	cfg := smallConfig()
	for m := 1; m <= 4; m++ {
		r := mustNew(t, cfg, names("n", m))
		if got, want := r.Degraded(), m < cfg.ReplicationFactor; got != want {
			t.Fatalf("%d members: Degraded() = %v, want %v", m, got, want)
		}
		if got, want := r.ReplicaCount(), min(m, cfg.ReplicationFactor); got != want {
			t.Fatalf("%d members: ReplicaCount() = %d, want %d", m, got, want)
		}
		for p := range cfg.Partitions {
			if got := len(r.Replicas(p)); got != r.ReplicaCount() {
				t.Fatalf("%d members: partition %d has %d replicas", m, p, got)
			}
		}
	}
}

// referenceWalk is the obvious, slow definition of a partition's ring-walk
// order that buildWalk must reproduce.
func referenceWalk(r *Ring, p int) []string {
	var out []string
	for i := range r.cfg.Partitions {
		o := r.Owner((p + i) % r.cfg.Partitions)
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	for _, m := range r.members {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// TestRingProperties checks, for random configs and memberships, the
// invariants every caller relies on, and the tables against referenceWalk.
func TestRingProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{
			Partitions:        rapid.SampledFrom([]int{2, 3, 7, 31, 97, 271}).Draw(t, "partitions"),
			ReplicationFactor: rapid.IntRange(1, 5).Draw(t, "n"),
			Load:              rapid.Float64Range(1, 2).Draw(t, "load"),
			VirtualNodes:      rapid.IntRange(1, 60).Draw(t, "vnodes"),
		}
		members := rapid.SliceOfNDistinct(rapid.StringMatching(`[a-z0-9.:-]{1,12}`), 0, min(cfg.Partitions, 12), rapid.ID[string]).Draw(t, "members")
		r, err := New(cfg, members)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		want := slices.Sorted(slices.Values(members))
		if len(want) == 0 {
			want = nil
		}
		if diff := cmp.Diff(want, r.Members(), cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })); diff != "" {
			t.Fatalf("Members() (-want +got):\n%s", diff)
		}
		if len(members) == 0 {
			return
		}
		for p := range cfg.Partitions {
			reps, fbs := r.Replicas(p), r.Fallbacks(p)
			if len(reps) != min(cfg.ReplicationFactor, len(members)) || reps[0] != r.Owner(p) {
				t.Fatalf("partition %d: replicas %v, owner %q", p, reps, r.Owner(p))
			}
			got := slices.Concat(reps, fbs)
			if diff := cmp.Diff(referenceWalk(r, p), got); diff != "" {
				t.Fatalf("partition %d walk (-want +got):\n%s", p, diff)
			}
			for _, n := range reps {
				if !r.IsReplica(p, n) {
					t.Fatalf("IsReplica(%d, %q) = false", p, n)
				}
			}
		}
		// Any order of the same members gives the same ring.
		shuffled := rapid.Permutation(members).Draw(t, "shuffled")
		r2, err := New(cfg, shuffled)
		if err != nil || !r.Equal(r2) || r.Fingerprint() != r2.Fingerprint() {
			t.Fatalf("ring of shuffled members differs (err %v)", err)
		}
	})
}

// TestBoundedLoad checks the library's promise that no member owns more than
// ceil(Load x Partitions / members) partitions.
func TestBoundedLoad(t *testing.T) {
	cfg := DefaultConfig()
	for _, m := range []int{1, 2, 5, 11, 40} {
		r := mustNew(t, cfg, names("node-", m))
		bound := int(float64(cfg.Partitions)/float64(m)*cfg.Load) + 1
		for _, ni := range r.Inspect(nil).Nodes {
			if ni.Owned > bound {
				t.Fatalf("%d members: %s owns %d partitions, bound %d", m, ni.Node, ni.Owned, bound)
			}
		}
	}
}

func TestEqual(t *testing.T) {
	cfg := smallConfig()
	a := mustNew(t, cfg, []string{"a", "b", "c"})
	other := cfg
	other.VirtualNodes++
	tests := []struct {
		name string
		b    *Ring
		want bool
	}{
		{"same", mustNew(t, cfg, []string{"c", "a", "b"}), true},
		{"other members", mustNew(t, cfg, []string{"a", "b", "d"}), false},
		{"fewer members", mustNew(t, cfg, []string{"a", "b"}), false},
		{"other config", mustNew(t, other, []string{"a", "b", "c"}), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Equal(tt.b); got != tt.want {
				t.Fatalf("Equal = %v, want %v", got, tt.want)
			}
		})
	}
	var nilRing *Ring
	if !nilRing.Equal(nil) {
		t.Fatal("nil ring is not equal to nil")
	}
}

func TestWithWithout(t *testing.T) {
	cfg := smallConfig()
	r := mustNew(t, cfg, []string{"a", "b", "c"})
	added, err := r.With("d")
	if err != nil || !added.Equal(mustNew(t, cfg, []string{"a", "b", "c", "d"})) {
		t.Fatalf("With(d) = %v", err)
	}
	removed, err := added.Without("a")
	if err != nil || !removed.Equal(mustNew(t, cfg, []string{"b", "c", "d"})) {
		t.Fatalf("Without(a) = %v", err)
	}
	if _, err := r.With("a"); !errors.Is(err, ErrDuplicateNode) {
		t.Fatalf("With(existing) = %v, want ErrDuplicateNode", err)
	}
	if _, err := r.With(""); !errors.Is(err, ErrEmptyNode) {
		t.Fatalf("With(\"\") = %v, want ErrEmptyNode", err)
	}
	if _, err := r.Without("zz"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("Without(unknown) = %v, want ErrUnknownNode", err)
	}
	if !r.Contains("b") || r.Contains("d") {
		t.Fatal("Contains disagrees with the members")
	}
}

// TestGoldenFingerprint pins the tables a fixed config and membership give,
// so a change of hash, library version or walk rule that would re-map data
// in a running cluster fails here.
func TestGoldenFingerprint(t *testing.T) {
	r := mustNew(t, DefaultConfig(), names("node-", 5))
	const want uint64 = 0x972318eb1f9c33b0
	if got := r.Fingerprint(); got != want {
		t.Fatalf("Fingerprint() = %#x, want %#x", got, want)
	}
	// The fingerprint covers owners; these pin the walk rule as well.
	for _, tt := range []struct {
		key  string
		want KeyPlacement
	}{
		{"user:42", KeyPlacement{Partition: 1875, Replicas: []string{"node-5", "node-2", "node-4"}, Fallbacks: []string{"node-1", "node-3"}}},
		{"a", KeyPlacement{Partition: 698, Replicas: []string{"node-5", "node-4", "node-1"}, Fallbacks: []string{"node-3", "node-2"}}},
	} {
		if diff := cmp.Diff(tt.want, r.Preference([]byte(tt.key))); diff != "" {
			t.Errorf("Preference(%q) (-want +got):\n%s", tt.key, diff)
		}
	}
}

func TestPartitionsOf(t *testing.T) {
	r := mustNew(t, smallConfig(), names("n", 5))
	total := 0
	for _, node := range r.Members() {
		ps := r.PartitionsOf(node)
		total += len(ps)
		if !slices.IsSorted(ps) {
			t.Fatalf("PartitionsOf(%s) not sorted", node)
		}
		for _, p := range ps {
			if !r.IsReplica(p, node) {
				t.Fatalf("PartitionsOf(%s) lists %d, which it does not replicate", node, p)
			}
		}
	}
	if want := r.Config().Partitions * r.ReplicaCount(); total != want {
		t.Fatalf("partitions held sum to %d, want %d", total, want)
	}
	if got := r.PartitionsOf("nobody"); got != nil {
		t.Fatalf("PartitionsOf(non-member) = %v", got)
	}
}

// TestLookupAllocs holds the request path to zero allocations.
func TestLookupAllocs(t *testing.T) {
	r := mustNew(t, DefaultConfig(), names("node-", 5))
	key := []byte("user:1234567")
	allocs := testing.AllocsPerRun(100, func() {
		p, reps := r.Lookup(key)
		_ = r.Fallbacks(p)
		_ = r.Owner(p)
		_ = r.IsReplica(p, reps[0])
	})
	if allocs != 0 {
		t.Fatalf("lookup allocates %v times per run", allocs)
	}
}

// TestSharedSlicesAreClipped checks that appending to a returned list cannot
// overwrite the ring's tables.
func TestSharedSlicesAreClipped(t *testing.T) {
	r := mustNew(t, smallConfig(), names("n", 6))
	before := slices.Clone(r.Fallbacks(0))
	reps := r.Replicas(0)
	_ = append(reps, "intruder")
	if diff := cmp.Diff(before, r.Fallbacks(0)); diff != "" {
		t.Fatalf("append to Replicas changed Fallbacks (-want +got):\n%s", diff)
	}
}
