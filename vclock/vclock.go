// Package vclock implements dotted version vectors and sibling sets: how one
// key's concurrent versions are named, compared and merged.
//
// A Version is named by a Dot (actor, counter) minted by the coordinator that
// accepted the write, and carries the causal Context the writer had seen. A
// version a obsoletes b when b's dot is covered by a's context. Merge keeps
// every version that no other version obsoletes, so concurrent writes become
// siblings instead of being silently dropped.
//
// Actors are storage incarnation IDs, not node names: a node whose disk was
// wiped gets a new incarnation and can never re-mint a dot that still exists
// elsewhere.
//
// The package is pure: no I/O, no clock, no goroutines. Sibling sets are
// treated as immutable values; functions here never modify their arguments
// and callers must not modify what they return.
package vclock

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
)

// Dot names one write: the Counter-th event of Actor.
type Dot struct {
	_msgpack struct{} `msgpack:",as_array"`
	Actor    string
	Counter  uint64
}

// Compare orders dots by actor, then counter.
func (d Dot) Compare(o Dot) int {
	if c := cmp.Compare(d.Actor, o.Actor); c != 0 {
		return c
	}
	return cmp.Compare(d.Counter, o.Counter)
}

// Clock is a version vector: for each actor, the highest counter seen. A
// Clock covers every dot (a, c) with c <= its entry for a. Entries are kept
// sorted by actor with no duplicates and no zero counters; the zero Clock is
// the empty context.
type Clock []Dot

// Get returns the clock's counter for actor, 0 when absent.
func (c Clock) Get(actor string) uint64 {
	i, ok := slices.BinarySearchFunc(c, actor, func(d Dot, a string) int { return cmp.Compare(d.Actor, a) })
	if !ok {
		return 0
	}
	return c[i].Counter
}

// Covers reports whether the clock covers dot d.
func (c Clock) Covers(d Dot) bool { return d.Counter != 0 && c.Get(d.Actor) >= d.Counter }

// Join returns the pointwise maximum of a and b as a new Clock.
func Join(a, b Clock) Clock {
	out := make(Clock, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := cmp.Compare(a[i].Actor, b[j].Actor); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, Dot{Actor: a[i].Actor, Counter: max(a[i].Counter, b[j].Counter)})
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// add returns c with d included (c is not modified).
func (c Clock) add(d Dot) Clock {
	if c.Covers(d) {
		return c
	}
	return Join(c, Clock{d})
}

// CounterLimit is the highest counter a client's causal context may
// introduce: a context may name a larger counter only when the minting
// coordinator already holds it for the key (see CheckMintable). No node
// mints anywhere near it (2^53 writes to one key through one incarnation),
// so a larger unseen counter is forged; refusing it keeps Mint's "one above
// the highest counter seen" from ever wrapping around, which would make a
// key unwritable or re-mint dots that exist elsewhere.
const CounterLimit uint64 = 1 << 53

// storedLimit bounds every counter in a stored or replicated set. It sits
// far above CounterLimit: past CounterLimit counters grow by one per write.
const storedLimit uint64 = 1 << 62

// Valid reports whether the clock is in canonical form: sorted by actor,
// no duplicate actors, no zero counters, no counter anywhere near
// overflowing, no empty actor.
func (c Clock) Valid() bool { return c.Check() == nil }

// CheckMintable checks a client's context against the coordinator's local
// set for the key before Mint: a counter above CounterLimit that local does
// not already hold is forged. The error wraps ErrBadContext.
func CheckMintable(local Siblings, ctx Clock) error {
	for _, d := range ctx {
		if d.Counter > CounterLimit && d.Counter > local.MaxCounter(d.Actor) {
			return beyondLimit(d, CounterLimit)
		}
	}
	return nil
}

// beyondLimit is the error, wrapping ErrBadContext, for a context entry d
// whose counter exceeds limit.
func beyondLimit(d Dot, limit uint64) error {
	return fmt.Errorf("%w: actor %q has counter %d, beyond what any node can mint (limit %d)", ErrBadContext, d.Actor, d.Counter, limit)
}

// Check is Valid with a reason wrapping ErrBadContext that names the first
// offending entry.
func (c Clock) Check() error {
	for i, d := range c {
		switch {
		case d.Actor == "":
			return fmt.Errorf("%w: entry %d has an empty actor", ErrBadContext, i)
		case d.Counter == 0:
			return fmt.Errorf("%w: actor %q has counter 0", ErrBadContext, d.Actor)
		case d.Counter > storedLimit:
			return beyondLimit(d, storedLimit)
		case i > 0 && c[i-1].Actor >= d.Actor:
			return fmt.Errorf("%w: entries not sorted by actor or actor repeated at %d", ErrBadContext, i)
		}
	}
	return nil
}

// Equal reports whether two clocks hold the same entries.
func (c Clock) Equal(o Clock) bool {
	return slices.EqualFunc(c, o, func(a, b Dot) bool { return a.Actor == b.Actor && a.Counter == b.Counter })
}

// Version is one write of a key: a value or a tombstone.
type Version struct {
	_msgpack struct{} `msgpack:",as_array"`
	// Dot names this write; it is unique cluster-wide.
	Dot Dot
	// Context is the causal past the writer had seen; every version whose
	// dot it covers is obsoleted by this one.
	Context Clock
	// Value is the stored bytes; nil for a tombstone.
	Value []byte
	// Tombstone marks a delete.
	Tombstone bool
	// WallTime is the coordinator's clock at minting, in Unix nanoseconds.
	// It orders nothing causally: it serves tombstone GC and the
	// last-writer-wins view of the Redis front end.
	WallTime int64
}

// Obsoletes reports whether v supersedes o.
func (v *Version) Obsoletes(o *Version) bool { return v.Context.Covers(o.Dot) }

// Size is the approximate number of bytes the version occupies, for stats.
func (v *Version) Size() int {
	n := len(v.Value) + len(v.Dot.Actor) + 24
	for _, d := range v.Context {
		n += len(d.Actor) + 8
	}
	return n
}

// Equal reports whether two versions are identical.
func (v *Version) Equal(o *Version) bool {
	return v.Dot == o.Dot && v.Tombstone == o.Tombstone && v.WallTime == o.WallTime &&
		bytes.Equal(v.Value, o.Value) && v.Context.Equal(o.Context)
}

// Siblings is a key's set of mutually concurrent versions, sorted by dot.
// The nil Siblings is the empty set (a key never written).
type Siblings []Version

// Merge returns the join of two sibling sets: every version of either that
// no version of either obsoletes, each dot once, sorted by dot. It is
// commutative, associative and idempotent over sets produced by Mint and
// Merge, which is why storage, replication, read repair, hints and WAL replay
// can all apply the same set any number of times in any order.
//
// When both sides hold the same dot the versions are the same write; the one
// from a is kept (dots are unique, so they are equal).
func Merge(a, b Siblings) Siblings {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	all := make(Siblings, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := a[i].Dot.Compare(b[j].Dot); {
		case c < 0:
			all = append(all, a[i])
			i++
		case c > 0:
			all = append(all, b[j])
			j++
		default:
			all = append(all, a[i])
			i++
			j++
		}
	}
	all = append(all, a[i:]...)
	all = append(all, b[j:]...)
	return prune(all)
}

// prune drops, in place, every version that another version of s obsoletes.
func prune(s Siblings) Siblings {
	covers := newCoverIndex(s)
	// The decisions are taken before compacting: compacting in place
	// overwrites versions a later decision still compares against.
	var drop [smallSet]bool
	if covers.tops == nil {
		for i := range s {
			drop[i] = covers.byOther(i, s[i].Dot)
		}
	}
	out := s[:0]
	for i := range s {
		if covers.tops == nil && !drop[i] || covers.tops != nil && !covers.byOther(i, s[i].Dot) {
			out = append(out, s[i])
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// smallSet is the largest set coverIndex answers by scanning the other
// versions: that costs nothing to build, where the map below allocates on
// every write (most keys hold one or two versions).
const smallSet = 8

// coverIndex answers "does a version of s other than the i-th cover dot
// d?". Up to smallSet versions it scans the others; above, it answers in
// O(1) after one pass over every context entry of s, where asking every
// pair would take time quadratic in the number of siblings (40,000
// siblings in one request took seconds of CPU). For each actor the map
// keeps the highest context counter, which version holds it, and the
// highest counter held by any other version. It assumes canonical clocks
// (one entry per actor), which Valid checks first and Merge's inputs have.
type coverIndex struct {
	s    Siblings
	tops map[string]coverTop // nil for a small set
}

type coverTop struct {
	best   uint64 // highest counter for the actor in any context
	holder int    // index of the version whose context holds best
	second uint64 // highest counter in the context of any other version
}

func newCoverIndex(s Siblings) coverIndex {
	if len(s) <= smallSet {
		return coverIndex{s: s}
	}
	idx := make(map[string]coverTop)
	for j := range s {
		for _, d := range s[j].Context {
			t, ok := idx[d.Actor]
			switch {
			case !ok:
				t = coverTop{best: d.Counter, holder: j}
			case t.holder == j:
				t.best = max(t.best, d.Counter)
			case d.Counter > t.best:
				t = coverTop{best: d.Counter, holder: j, second: t.best}
			default:
				t.second = max(t.second, d.Counter)
			}
			idx[d.Actor] = t
		}
	}
	return coverIndex{s: s, tops: idx}
}

// byOther reports whether the context of some version other than the
// i-th covers d.
func (idx coverIndex) byOther(i int, d Dot) bool {
	if idx.tops == nil {
		for j := range idx.s {
			if j != i && idx.s[j].Context.Covers(d) {
				return true
			}
		}
		return false
	}
	t, ok := idx.tops[d.Actor]
	if !ok || d.Counter == 0 {
		return false
	}
	if t.holder != i {
		return t.best >= d.Counter
	}
	return t.second >= d.Counter
}

// Context returns the causal context of the set: the join of its versions'
// contexts and dots. A write carrying it supersedes every version in s.
func (s Siblings) Context() Clock {
	var c Clock
	for i := range s {
		c = Join(c, s[i].Context)
		c = c.add(s[i].Dot)
	}
	return c
}

// MaxCounter returns the highest counter of actor anywhere in the set's
// causal history: its dots and its contexts.
func (s Siblings) MaxCounter(actor string) uint64 {
	var m uint64
	for i := range s {
		if s[i].Dot.Actor == actor {
			m = max(m, s[i].Dot.Counter)
		}
		m = max(m, s[i].Context.Get(actor))
	}
	return m
}

// Live returns the versions that are not tombstones.
func (s Siblings) Live() Siblings {
	var out Siblings
	for i := range s {
		if !s[i].Tombstone {
			out = append(out, s[i])
		}
	}
	return out
}

// Latest returns the version with the highest wall time (ties broken by
// dot), the last-writer-wins view used where a protocol has no room for
// siblings. ok is false for an empty set.
func (s Siblings) Latest() (v Version, ok bool) {
	for i := range s {
		if !ok || s[i].WallTime > v.WallTime || (s[i].WallTime == v.WallTime && s[i].Dot.Compare(v.Dot) > 0) {
			v, ok = s[i], true
		}
	}
	return v, ok
}

// Size is the approximate number of bytes the set occupies.
func (s Siblings) Size() int {
	n := 0
	for i := range s {
		n += s[i].Size()
	}
	return n
}

// Equal reports whether two sets hold the same versions in the same order.
func (s Siblings) Equal(o Siblings) bool {
	return slices.EqualFunc(s, o, func(a, b Version) bool { return a.Equal(&b) })
}

// Valid reports whether s is in canonical form: sorted by dot, no duplicate
// dots, no version obsoleting another, canonical clocks, and tombstones
// without values. Decoders use it to reject hostile input. It takes time
// linear in the size of s (see coverIndex).
func (s Siblings) Valid() bool {
	for i := range s {
		v := &s[i]
		if v.Dot.Actor == "" || v.Dot.Counter == 0 || v.Dot.Counter > storedLimit || !v.Context.Valid() || (v.Tombstone && len(v.Value) != 0) {
			return false
		}
		if i > 0 && s[i-1].Dot.Compare(v.Dot) >= 0 {
			return false
		}
	}
	covers := newCoverIndex(s)
	for i := range s {
		if covers.byOther(i, s[i].Dot) {
			return false
		}
	}
	return true
}

// Write describes a new version for Mint.
type Write struct {
	// Context is the causal context the client supplied (nil for none).
	Context Clock
	// Blind makes the write supersede every version the coordinator holds,
	// whatever the client's context (last-writer semantics for clients that
	// pass none, such as the Redis protocol).
	Blind bool
	// Value is the new value; ignored for a tombstone.
	Value []byte
	// Tombstone makes the write a delete.
	Tombstone bool
	// WallTime is the coordinator's clock, Unix nanoseconds.
	WallTime int64
	// MinCounter is the lowest counter the new dot may take. A coordinator
	// that numbers its dots from one counter across all keys passes it, so
	// that forgetting a key (a collected tombstone, a pruned context) can
	// never make it mint a dot it minted before. 0: no floor.
	MinCounter uint64
}

// NextCounter is the counter Mint gives the new dot when w.MinCounter is
// below it: one above every counter of actor in local's causal history and
// in the context the new version will carry. A caller reserving counters
// asks for at least this much and passes what it got as w.MinCounter.
func NextCounter(local Siblings, actor string, w Write) uint64 {
	ctx := w.Context
	if w.Blind {
		ctx = Join(ctx, local.Context())
	}
	return max(local.MaxCounter(actor), ctx.Get(actor)) + 1
}

// Mint creates a new version at a coordinator whose incarnation is actor,
// given the coordinator's local sibling set for the key. The new dot's
// counter is above every counter of actor anywhere in local's causal history,
// so two writes through one coordinator never share a dot, and two writes
// with the same context through it end as two siblings. It returns the new
// version and the merged set to store and replicate.
func Mint(local Siblings, actor string, w Write) (Version, Siblings) {
	ctx := w.Context
	if w.Blind {
		ctx = Join(ctx, local.Context())
	}
	// A client context can name counters of this actor the local set has
	// never seen (it came from another replica holding a later write of
	// ours, or was forged); the dot goes above it so that it stays unique.
	v := Version{
		Dot:       Dot{Actor: actor, Counter: max(local.MaxCounter(actor), ctx.Get(actor)) + 1},
		Context:   slices.Clone(ctx),
		Tombstone: w.Tombstone,
		WallTime:  w.WallTime,
	}
	v.Dot.Counter = max(v.Dot.Counter, w.MinCounter)
	if !w.Tombstone {
		v.Value = w.Value
	}
	return v, Merge(local, Siblings{v})
}
