package ring

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Transition is the placement of one Plan: S = NewZoned(cfg,
// plan.Members, plan.Zones) serves reads and coordinates writes, T =
// NewZoned(cfg, plan.TargetMembers(), plan.Zones) is where the data moves. For partition p:
//
//	Replicas(p)  = S(p)                       hold the data, coordinate writes
//	Targets(p)   = T(p)                       the replicas once the plan commits
//	Pending(p)   = T(p) \ S(p)                pull p and receive its writes
//	Retiring(p)  = S(p) \ T(p)                drop p after the commit
//	Fallbacks(p) = S's fallbacks \ Pending(p)  stand-ins for down replicas
//
// Fallbacks leave out the pending nodes because those already receive the
// partition's writes; a hint for them would be a second, weaker copy.
//
// Like a Ring, a Transition is immutable: NewTransition computes every
// table, lookups index them, take no lock and allocate nothing, and an
// out-of-range partition gets nil. Returned slices are shared with the
// Transition (do not modify them) and have their capacity clipped.
type Transition struct {
	plan Plan
	hash uint64
	cur  *Ring
	tgt  *Ring // == cur when the plan is stable
	// pending, retiring and fallbacks are indexed by partition; all nil
	// when the plan is stable (Pending and Retiring answer nil, Fallbacks
	// is cur's). A row with no names is nil.
	pending, retiring, fallbacks [][]string
	// pendingOf maps a node to the ascending partitions it is pending for.
	pendingOf map[string][]int
	moves     []Move
}

// Move is one pending pair of a transition: node To must copy Partition
// from every node of From (the partition's serving replicas; shared, do
// not modify).
type Move struct {
	Partition int
	To        string
	From      []string
}

// NewTransition builds the placement of plan p under cfg. p must be valid
// (Plan.Validate) and both member lists placeable (New). The zero Plan
// gives an empty transition whose lookups return nil, like an empty ring.
func NewTransition(cfg Config, p Plan) (*Transition, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	// The plan's slices are documented as never modified; copy them anyway
	// so that the tables cannot drift from Plan() if a caller breaks that.
	p.Members = slices.Clone(p.Members)
	p.Target = slices.Clone(p.Target)
	p.Zones = maps.Clone(p.Zones)
	cur, err := NewZoned(cfg, p.Members, p.Zones)
	if err != nil {
		return nil, fmt.Errorf("plan epoch %d members: %w", p.Epoch, err)
	}
	t := &Transition{plan: p, hash: p.Hash(), cur: cur, tgt: cur}
	if p.Stable() {
		return t, nil
	}
	if t.tgt, err = NewZoned(cfg, p.Target, p.Zones); err != nil {
		return nil, fmt.Errorf("plan epoch %d target: %w", p.Epoch, err)
	}
	t.buildTables()
	return t, nil
}

// buildTables fills the per-partition tables of a change in progress. The
// rows of each table share one backing array.
func (t *Transition) buildTables() {
	parts := t.cur.cfg.Partitions
	var pend, ret, fb rowBuilder
	t.pendingOf = map[string][]int{}
	for p := range parts {
		s, tg := t.cur.Replicas(p), t.tgt.Replicas(p)
		n := 0
		for _, x := range tg {
			if !slices.Contains(s, x) {
				pend.add(x)
				t.pendingOf[x] = append(t.pendingOf[x], p)
				n++
			}
		}
		pend.end()
		for _, x := range s {
			if !slices.Contains(tg, x) {
				ret.add(x)
			}
		}
		ret.end()
		if n > 0 {
			pending := pend.flat[len(pend.flat)-n:]
			for _, x := range t.cur.Fallbacks(p) {
				if !slices.Contains(pending, x) {
					fb.add(x)
				}
			}
		}
		fb.end()
	}
	t.pending, t.retiring = pend.rows(), ret.rows()
	t.fallbacks = fb.rows()
	for p := range t.fallbacks {
		if t.pending[p] == nil {
			t.fallbacks[p] = t.cur.Fallbacks(p) // nothing to leave out: share S's table
		}
	}
	for node, ps := range t.pendingOf {
		t.pendingOf[node] = slices.Clip(ps)
	}
	for p, row := range t.pending {
		sorted := slices.Clone(row)
		slices.Sort(sorted)
		for _, x := range sorted {
			t.moves = append(t.moves, Move{Partition: p, To: x, From: t.cur.Replicas(p)})
		}
	}
}

// rowBuilder collects one short list per partition in a single backing
// array: a table costs a few allocations instead of one per partition.
type rowBuilder struct {
	flat []string
	ends []int // ends[p] is where partition p's row ends in flat
}

func (b *rowBuilder) add(name string) { b.flat = append(b.flat, name) }

// end closes the current partition's row.
func (b *rowBuilder) end() { b.ends = append(b.ends, len(b.flat)) }

// rows slices flat into the rows, clipped; an empty row is nil. Called once
// every row is added, so no later append moves flat.
func (b *rowBuilder) rows() [][]string {
	out := make([][]string, len(b.ends))
	start := 0
	for p, end := range b.ends {
		if end > start {
			out[p] = b.flat[start:end:end]
		}
		start = end
	}
	return out
}

// Plan returns the plan the transition places.
func (t *Transition) Plan() Plan { return t.plan }

// Epoch returns the plan's epoch; 0 for the zero plan.
func (t *Transition) Epoch() uint64 { return t.plan.Epoch }

// PlanHash returns Plan().Hash(), computed once.
func (t *Transition) PlanHash() uint64 { return t.hash }

// Current returns S, the ring of the serving members.
func (t *Transition) Current() *Ring { return t.cur }

// Target returns T, the ring the data moves to: the same *Ring as Current
// when the plan is stable.
func (t *Transition) Target() *Ring { return t.tgt }

// Partition returns the partition of key (independent of membership).
func (t *Transition) Partition(key []byte) int { return t.cur.Partition(key) }

// Replicas returns S(p), the partition's serving preference list.
func (t *Transition) Replicas(p int) []string { return t.cur.Replicas(p) }

// Targets returns T(p), the partition's preference list once the plan
// commits; equal to Replicas when the plan is stable.
func (t *Transition) Targets(p int) []string { return t.tgt.Replicas(p) }

// Pending returns T(p) \ S(p) in T's order: the replicas-to-be that must
// pull p and receive its writes. Nil when none.
func (t *Transition) Pending(p int) []string { return row(t.pending, p) }

// Retiring returns S(p) \ T(p) in S's order: the serving replicas that
// drop p after the plan commits. Nil when none.
func (t *Transition) Retiring(p int) []string { return row(t.retiring, p) }

// Fallbacks returns S's fallbacks of p without the nodes of Pending(p):
// the stand-ins for down replicas, none of which is in S(p) or T(p).
func (t *Transition) Fallbacks(p int) []string {
	if t.fallbacks == nil {
		return t.cur.Fallbacks(p)
	}
	return row(t.fallbacks, p)
}

// Holds reports whether node must hold partition p's writes now: it is in
// Replicas(p) or Pending(p).
func (t *Transition) Holds(node string, p int) bool {
	return slices.Contains(t.Replicas(p), node) || slices.Contains(t.Pending(p), node)
}

// PendingOf returns, ascending, the partitions for which node is pending:
// what it must pull in this plan. Nil when none; shared, do not modify.
func (t *Transition) PendingOf(node string) []int { return t.pendingOf[node] }

// Moves returns every pending pair (p, X in Pending(p)), ascending by
// partition then To. The slice is new; each From is shared.
func (t *Transition) Moves() []Move { return slices.Clone(t.moves) }

// String describes the transition for logs.
func (t *Transition) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d %v", t.plan.Epoch, t.plan.Members)
	if !t.plan.Stable() {
		fmt.Fprintf(&b, " -> %v (%d moves)", t.plan.Target, len(t.moves))
	}
	return b.String()
}

func row(table [][]string, p int) []string {
	if p < 0 || p >= len(table) {
		return nil
	}
	return table[p]
}
