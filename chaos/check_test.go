package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// ms is t0 plus f milliseconds.
func ms(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Millisecond))) }

// wr is a write of key "k" from start to end (ms after t0).
func wr(value string, known []string, out Outcome, start, end float64) Op {
	return Op{Client: 1, Kind: Write, Key: "k", Value: value, Known: known, Outcome: out, Start: ms(start), End: ms(end), Node: "n1"}
}

// rd is an OK read of key "k" that returned vals.
func rd(vals []string, start, end float64) Op {
	return Op{Client: 2, Kind: Read, Key: "k", Values: vals, Outcome: OK, Start: ms(start), End: ms(end), Node: "n2"}
}

func final(vals ...string) []FinalRead { return []FinalRead{{Key: "k", Values: vals}} }

func l(vs ...string) []string { return vs }

func TestCheckRules(t *testing.T) {
	seed := wr("s", nil, OK, 0, 1)
	seed.Blind = true
	cut := []FaultWindow{{Kind: FaultCut, Start: ms(1.5), End: ms(3.5)}}
	kill := []FaultWindow{{Kind: FaultKill, Start: ms(1.5), End: ms(3.5)}}
	// want lists the counts that must be non-zero; every other count of
	// interest must be zero.
	type counts struct{ lost, invented, resurrected, duplicated, stale, staleFaults, staleWeak int }
	cases := []struct {
		name   string
		ops    []Op
		finals []FinalRead
		cfg    CheckConfig
		want   counts
		kinds  []string // kinds of the listed violations, in order
	}{
		{
			name:   "clean chain",
			ops:    []Op{seed, rd(l("s"), 2, 3), wr("a", l("s"), OK, 4, 5), rd(l("a"), 6, 7)},
			finals: final("a"),
		},
		{
			name: "siblings resolved",
			ops: []Op{seed, wr("a", l("s"), OK, 2, 3), wr("b", l("s"), OK, 2, 3), rd(l("a", "b"), 4, 5),
				wr("c", l("a", "b"), OK, 6, 7), rd(l("c"), 8, 9)},
			finals: final("c"),
		},
		{
			name:   "read concurrent with a write may miss it",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 5), rd(l("s"), 3, 4)},
			finals: final("a"),
		},
		{
			name:   "unknown write visible",
			ops:    []Op{seed, wr("u", l("s"), Unknown, 2, 3), rd(l("u"), 4, 5)},
			finals: final("u"),
		},
		{
			name:   "unknown write superseding an acked one, itself gone",
			ops:    []Op{seed, wr("u", l("s"), Unknown, 2, 3), wr("a", l("u"), OK, 4, 5)},
			finals: final("a"),
		},
		{
			name:   "lost concurrent write",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), wr("b", l("s"), OK, 2, 3)},
			finals: final("a"),
			want:   counts{lost: 1},
			kinds:  l(ViolationLost),
		},
		{
			name:   "lost: superseded only by a write that vanished",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), wr("u", l("a"), Unknown, 4, 5)},
			finals: final(),
			want:   counts{lost: 2},
			kinds:  l(ViolationLost, ViolationLost),
		},
		{
			name:   "failed write visible is invented",
			ops:    []Op{seed, wr("f", l("s"), Failed, 2, 3)},
			finals: final("f"),
			want:   counts{invented: 1},
			kinds:  l(ViolationInvented),
		},
		{
			name:   "invented value in a read",
			ops:    []Op{seed, rd(l("zzz"), 2, 3)},
			finals: final("s"),
			cfg:    CheckConfig{StrictReads: true},
			want:   counts{invented: 1, stale: 1},
			kinds:  l(ViolationInvented, ViolationStaleRead),
		},
		{
			name:   "resurrected in final",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), wr("b", l("a"), OK, 4, 5)},
			finals: final("a", "b"),
			want:   counts{resurrected: 1},
			kinds:  l(ViolationResurrected),
		},
		{
			name:   "resurrected transitively in a read",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), wr("b", l("a"), OK, 4, 5), wr("c", l("b"), Unknown, 6, 7), rd(l("a", "c"), 8, 9)},
			finals: final("c"),
			want:   counts{resurrected: 1},
			kinds:  l(ViolationResurrected),
		},
		{
			name:   "one write twice in one answer",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), rd(l("a", "a"), 4, 5)},
			finals: final("a", "a"),
			want:   counts{duplicated: 1},
			kinds:  l(ViolationDuplicated),
		},
		{
			name:   "stale read",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), rd(l("s"), 4, 5)},
			finals: final("a"),
			cfg:    CheckConfig{StrictReads: true},
			want:   counts{stale: 1},
			kinds:  l(ViolationStaleRead),
		},
		{
			name:   "stale read missing one sibling",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), wr("b", l("s"), OK, 2, 3), rd(l("a"), 4, 5)},
			finals: final("a", "b"),
			cfg:    CheckConfig{StrictReads: true},
			want:   counts{stale: 1},
			kinds:  l(ViolationStaleRead),
		},
		{
			name:   "stale read under a cut",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), rd(l("s"), 4, 5)},
			finals: final("a"),
			cfg:    CheckConfig{StrictReads: true, Windows: cut},
			want:   counts{staleFaults: 1},
		},
		{
			name:   "stale read under a kill is a violation by default",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), rd(l("s"), 4, 5)},
			finals: final("a"),
			cfg:    CheckConfig{StrictReads: true, Windows: kill},
			want:   counts{stale: 1},
			kinds:  l(ViolationStaleRead),
		},
		{
			name:   "stale read under a kill made lax",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), rd(l("s"), 4, 5)},
			finals: final("a"),
			cfg:    CheckConfig{StrictReads: true, Windows: kill, LaxKinds: []FaultKind{FaultKill}},
			want:   counts{staleFaults: 1},
		},
		{
			name:   "stale read after a cut healed before the write",
			ops:    []Op{seed, wr("a", l("s"), OK, 4, 5), rd(l("s"), 6, 7)},
			finals: final("a"),
			cfg:    CheckConfig{StrictReads: true, Windows: cut},
			want:   counts{stale: 1},
			kinds:  l(ViolationStaleRead),
		},
		{
			name:   "stale read without strict reads",
			ops:    []Op{seed, wr("a", l("s"), OK, 2, 3), rd(l("s"), 4, 5)},
			finals: final("a"),
			want:   counts{staleWeak: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(tc.ops, tc.finals, tc.cfg)
			got := counts{r.Lost, r.Invented, r.Resurrected, r.Duplicated, r.StaleReads, r.StaleReadsUnderFaults, r.StaleReadsWeak}
			if got != tc.want {
				t.Errorf("counts = %+v, want %+v; violations %+v", got, tc.want, r.Violations)
			}
			var kinds []string
			for _, v := range r.Violations {
				kinds = append(kinds, v.Kind)
			}
			if !slices.Equal(kinds, tc.kinds) {
				t.Errorf("violation kinds = %q, want %q", kinds, tc.kinds)
			}
			if r.Failed() != (tc.want.lost+tc.want.invented+tc.want.resurrected+tc.want.duplicated+tc.want.stale > 0) {
				t.Errorf("Failed() = %v with %+v", r.Failed(), got)
			}
		})
	}
}

func TestCheckTotals(t *testing.T) {
	ops := []Op{
		wr("a", nil, OK, 0, 10), wr("b", nil, Failed, 0, 1), wr("c", nil, Unknown, 0, 1),
		rd(l("a"), 20, 24), rd(l("a", "x"), 30, 32),
	}
	finals := []FinalRead{{Key: "k", Values: l("a")}, {Key: "other", Err: "timeout"}}
	r := Check(ops, finals, CheckConfig{})
	want := Result{Ops: 5, Writes: 3, Reads: 2, OK: 3, FailedOps: 1, Unknown: 1, Availability: 0.6,
		P50Write: 10 * time.Millisecond, P99Write: 10 * time.Millisecond,
		P50Read: 2 * time.Millisecond, P99Read: 4 * time.Millisecond,
		Invented: 1, SiblingsSeen: 1, MaxSiblings: 2, Keys: 2, FinalErrors: 1}
	r.Violations = nil
	if fmt.Sprintf("%+v", r) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

func TestCheckViolationsCapped(t *testing.T) {
	ops := []Op{wr("s", nil, OK, 0, 1)}
	for i := range 2 * maxViolations {
		ops = append(ops, rd(l(fmt.Sprint("x", i)), 2, 3))
	}
	r := Check(ops, final("s"), CheckConfig{})
	if r.Invented != 2*maxViolations || len(r.Violations) != maxViolations {
		t.Fatalf("invented %d, %d listed; want %d and %d", r.Invented, len(r.Violations), 2*maxViolations, maxViolations)
	}
}

// TestCheckSimulated checks that a history of a correct store passes and
// that the checker agrees with a naive reference on corrupted ones.
func TestCheckSimulated(t *testing.T) {
	var seen [4]int
	for seed := range uint64(20) {
		ops, finals := simulate(seed, 600, 5, 4)
		if r := Check(ops, finals, CheckConfig{StrictReads: true}); r.Failed() || r.StaleReadsWeak+r.StaleReadsUnderFaults > 0 {
			t.Fatalf("seed %d: correct history fails: %+v", seed, r)
		}
		rng := rand.New(rand.NewPCG(seed, 2))
		corrupt(rng, ops, finals)
		got := Check(ops, finals, CheckConfig{StrictReads: true})
		want := naiveCheck(ops, finals)
		if g := [4]int{got.Lost, got.Invented, got.Resurrected, got.StaleReads}; g != want {
			t.Fatalf("seed %d: lost, invented, resurrected, stale = %v, reference %v", seed, g, want)
		}
		for i := range seen {
			seen[i] += want[i]
		}
	}
	if slices.Contains(seen[:], 0) {
		t.Errorf("the corruptions made too few violations to compare: lost, invented, resurrected, stale = %v", seen)
	}
}

// corrupt damages a history: reads that return old or made-up values, and
// final reads that drop or add values.
func corrupt(rng *rand.Rand, ops []Op, finals []FinalRead) {
	var values []string
	for i := range ops {
		if ops[i].Kind == Write {
			values = append(values, ops[i].Value)
		}
	}
	for range 30 {
		op := &ops[rng.IntN(len(ops))]
		if op.Kind != Read {
			continue
		}
		switch rng.IntN(3) {
		case 0:
			op.Values = []string{values[rng.IntN(len(values))]}
		case 1:
			op.Values = append(slices.Clone(op.Values), values[rng.IntN(len(values))])
		default:
			op.Values = append(slices.Clone(op.Values), "made-up")
		}
	}
	for i := range finals {
		switch rng.IntN(3) {
		case 0:
			finals[i].Values = nil
		case 1:
			finals[i].Values = append(finals[i].Values, values[rng.IntN(len(values))])
		}
	}
}

// naiveCheck is the reference: coverage by unbounded search, every read
// against every write acknowledged before it.
func naiveCheck(ops []Op, finals []FinalRead) [4]int {
	type key struct{ k, v string }
	known := map[key][]string{}
	written := map[key]bool{}
	for _, op := range ops {
		if op.Kind == Write {
			kv := key{op.Key, op.Value}
			known[kv] = append(known[kv], op.Known...)
			written[kv] = true
		}
	}
	covers := func(k, a, b string) bool {
		seen := map[string]bool{}
		stack := []string{a}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if x == b {
				return true
			}
			if !seen[x] {
				seen[x] = true
				stack = append(stack, known[key{k, x}]...)
			}
		}
		return false
	}
	var lost, stale int
	invented, resurrected := map[key]bool{}, map[key]bool{}
	returned := func(k string, vals []string) {
		for _, b := range vals {
			if !written[key{k, b}] {
				invented[key{k, b}] = true
				continue
			}
			for _, a := range vals {
				if a != b && written[key{k, a}] && covers(k, a, b) {
					resurrected[key{k, b}] = true
				}
			}
		}
	}
	for _, r := range ops {
		if r.Kind != Read || r.Outcome != OK {
			continue
		}
		returned(r.Key, r.Values)
		for _, w := range ops {
			if w.Kind != Write || w.Outcome != OK || w.Key != r.Key || !w.End.Before(r.Start) {
				continue
			}
			if !slices.ContainsFunc(r.Values, func(v string) bool { return covers(r.Key, v, w.Value) }) {
				stale++
				break
			}
		}
	}
	for _, f := range finals {
		returned(f.Key, f.Values)
		for _, w := range ops {
			if w.Kind == Write && w.Outcome == OK && w.Key == f.Key &&
				!slices.ContainsFunc(f.Values, func(v string) bool { return covers(f.Key, v, w.Value) }) {
				lost++
			}
		}
	}
	return [4]int{lost, len(invented), len(resurrected), stale}
}

func BenchmarkCheck100k(b *testing.B) {
	ops, finals := simulate(1, 100_000, 52, 8)
	b.ReportAllocs()
	for b.Loop() {
		if r := Check(ops, finals, CheckConfig{StrictReads: true}); r.Failed() {
			b.Fatalf("correct history fails: %+v", r.Violations)
		}
	}
}

// TestCheckUnreadKeyFails: a key whose final read failed cannot be checked
// for lost writes, so the check does not pass.
func TestCheckUnreadKeyFails(t *testing.T) {
	seed := wr("s", nil, OK, 0, 1)
	seed.Blind = true
	r := Check([]Op{seed, wr("a", l("s"), OK, 2, 3)}, []FinalRead{{Key: "k", Err: "timeout"}}, CheckConfig{})
	if r.FinalErrors != 1 || !r.Failed() {
		t.Fatalf("final errors %d, Failed() %v; want 1, true", r.FinalErrors, r.Failed())
	}
}
