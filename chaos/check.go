package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// CheckConfig configures Check.
type CheckConfig struct {
	// Windows are the fault windows of the run.
	Windows []FaultWindow
	// LaxKinds names the fault kinds under which a stale read is expected
	// (sloppy quorum: a write acknowledged by stand-ins, or by replicas a
	// later read cannot reach): a stale read is counted in
	// StaleReadsUnderFaults, not as a violation, when a window of one of
	// these kinds was active at some time between the start of the write
	// it missed and the end of the read. Nil means FaultCut alone; an
	// empty non-nil slice means none.
	LaxKinds []FaultKind
	// StrictReads says R+W > N: a stale read outside lax windows is then
	// a violation; otherwise it is only counted (StaleReadsWeak).
	StrictReads bool
}

// Violation kinds.
const (
	// ViolationLost: an acknowledged write's value is gone from the final
	// read and no write that is there (or covered by one that is)
	// superseded it.
	ViolationLost = "lost"
	// ViolationInvented: a read returned a value no write of the key sent,
	// or one whose every write was refused (Failed: by contract nothing
	// was stored, so the value cannot appear).
	ViolationInvented = "invented"
	// ViolationResurrected: a value returned beside a value whose write
	// had superseded it: the store keeps only the causally newest.
	ViolationResurrected = "resurrected"
	// ViolationStaleRead: a read that began after a write was
	// acknowledged returned neither it nor anything that superseded it.
	ViolationStaleRead = "stale-read"
	// ViolationDuplicated: one answer listed the same value twice. Every
	// write's value is unique, so the store holds one write as two
	// versions (say a retried forward minted it twice); the copy the
	// client's context does not name would outlive its next write.
	ViolationDuplicated = "duplicated"
)

// maxViolations caps Result.Violations; the counts stay complete.
const maxViolations = 50

// Violation is one anomaly Check found.
type Violation struct {
	Kind   string `json:"kind"`
	Key    string `json:"key"`
	Value  string `json:"value"`
	Detail string `json:"detail,omitempty"`
}

// Result is what Check found. json.Marshal gives durations in
// milliseconds (report.go).
type Result struct {
	// Ops counts every operation; Writes and Reads split them by kind,
	// OK, FailedOps and Unknown by outcome.
	Ops, Writes, Reads, OK, FailedOps, Unknown int
	// Availability is OK / (OK + FailedOps + Unknown); 0 without ops.
	Availability float64
	// Latencies of OK operations (0 without any).
	P50Write, P99Write, P50Read, P99Read time.Duration
	// Lost, Invented, Resurrected and Duplicated count distinct (key,
	// value) pairs.
	Lost, Invented, Resurrected, Duplicated int
	// StaleReads counts stale reads that are violations; StaleReadsUnderFaults
	// those under a lax fault window; StaleReadsWeak those outside such a
	// window when the run did not ask for strict reads (R+W <= N).
	StaleReads, StaleReadsUnderFaults, StaleReadsWeak int
	// SiblingsSeen counts OK reads that returned more than one value;
	// MaxSiblings is the most any read returned.
	SiblingsSeen, MaxSiblings int
	// Keys counts the keys of the history and final reads; FinalErrors
	// those whose final read failed or is missing (their values are
	// reported, not checked for loss).
	Keys, FinalErrors int
	// Violations lists the first violations found (at most 50), keys in
	// order.
	Violations []Violation
}

// Failed reports whether the history broke a guarantee (a lost, invented,
// resurrected or duplicated value, or a stale read counted as a
// violation) or could not be checked in full (a key whose final read
// failed).
func (r Result) Failed() bool {
	return r.Lost > 0 || r.Invented > 0 || r.Resurrected > 0 || r.Duplicated > 0 || r.StaleReads > 0 ||
		r.FinalErrors > 0
}

// Check checks a history and the final reads of its keys.
//
// Per key, a write covers the values in its Known and, transitively,
// what their writes covered. Then:
//
//   - lost: an OK write's value is not accounted for, where a value is
//     accounted for when it is in the final read or in the Known of a
//     write whose value is accounted for (a fixpoint from the final
//     values); keys without a successful final read are not checked;
//   - invented: a value an OK read or the final read returned that no
//     write of the key sent, or that only Failed writes sent;
//   - resurrected: a value returned (by an OK read or the final read)
//     beside another returned value whose write covers it;
//   - stale read: an OK read that started after an OK write of the key
//     ended and returned neither that value nor a value covering it.
//
// Coverage follows the recorded start times: a writer can know only of
// values whose writes started before its own, so the search for whether
// a covers b stops at writes that started before b's. A history from
// one process's clock is ordered so; a doctored one may get wrong
// answers, never a hang.
func Check(ops []Op, finals []FinalRead, cfg CheckConfig) Result {
	var r Result
	lax := cfg.LaxKinds
	if lax == nil {
		lax = []FaultKind{FaultCut}
	}
	c := checker{ops: ops, cfg: cfg, lax: lax, res: &r}
	c.totals()
	r.Keys = len(c.index(finals))
	for _, k := range slices.Sorted(maps.Keys(c.keys)) {
		c.checkKey(k, c.keys[k])
	}
	return r
}

type checker struct {
	ops  []Op
	cfg  CheckConfig
	lax  []FaultKind
	res  *Result
	keys map[string]*keyIndex
}

// wnode is one distinct written value of a key.
type wnode struct {
	value string
	// start is the earliest start of a write of the value, in Unix ns.
	start int64
	// known are the nodes the value's writes declared covered.
	known []int32
	// stored: some write of the value was OK or Unknown.
	stored bool
	// acked: some write of the value was OK; ackStart and ackEnd are those
	// of the OK write that ended first.
	acked            bool
	ackStart, ackEnd int64
	// memo caches, for the search of what covers this node, whether a
	// node does (built lazily, only over the nodes the searches visit).
	memo map[int32]bool
}

// keyIndex is one key's writes and reads.
type keyIndex struct {
	nodes   []wnode
	byValue map[string]int32
	reads   []int // indices in ops of OK reads
	final   *FinalRead
}

func (c *checker) totals() {
	var wlat, rlat []time.Duration
	r := c.res
	for i := range c.ops {
		op := &c.ops[i]
		r.Ops++
		switch op.Kind {
		case Write:
			r.Writes++
		case Read:
			r.Reads++
		}
		switch op.Outcome {
		case OK:
			r.OK++
			d := op.End.Sub(op.Start)
			if op.Kind == Write {
				wlat = append(wlat, d)
			} else {
				rlat = append(rlat, d)
			}
		case Failed:
			r.FailedOps++
		default:
			r.Unknown++
		}
	}
	if r.Ops > 0 {
		r.Availability = float64(r.OK) / float64(r.Ops)
	}
	r.P50Write, r.P99Write = percentile(wlat, 0.50), percentile(wlat, 0.99)
	r.P50Read, r.P99Read = percentile(rlat, 0.50), percentile(rlat, 0.99)
}

// percentile returns the p-quantile of ds (nearest rank), sorting ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(p*float64(len(ds))+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func (c *checker) key(k string) *keyIndex {
	ki := c.keys[k]
	if ki == nil {
		ki = &keyIndex{byValue: map[string]int32{}}
		c.keys[k] = ki
	}
	return ki
}

// index groups the operations by key, one node per distinct written
// value, and resolves each write's Known to nodes. It returns the keys.
func (c *checker) index(finals []FinalRead) map[string]*keyIndex {
	c.keys = map[string]*keyIndex{}
	for i := range c.ops {
		op := &c.ops[i]
		ki := c.key(op.Key)
		switch {
		case op.Kind == Read && op.Outcome == OK:
			ki.reads = append(ki.reads, i)
		case op.Kind == Write:
			n, ok := ki.byValue[op.Value]
			if !ok {
				n = int32(len(ki.nodes))
				ki.byValue[op.Value] = n
				ki.nodes = append(ki.nodes, wnode{value: op.Value, start: op.Start.UnixNano()})
			}
			w := &ki.nodes[n]
			w.start = min(w.start, op.Start.UnixNano())
			if op.Outcome != Failed {
				w.stored = true
			}
			if op.Outcome == OK && (!w.acked || op.End.UnixNano() < w.ackEnd) {
				w.acked, w.ackStart, w.ackEnd = true, op.Start.UnixNano(), op.End.UnixNano()
			}
		}
	}
	for i := range c.ops {
		op := &c.ops[i]
		if op.Kind != Write || len(op.Known) == 0 {
			continue
		}
		ki := c.keys[op.Key]
		n := ki.byValue[op.Value]
		for _, v := range op.Known {
			// A known value no write sent came from a read that
			// returned it, which is reported there.
			if m, ok := ki.byValue[v]; ok && m != n && !slices.Contains(ki.nodes[n].known, m) {
				ki.nodes[n].known = append(ki.nodes[n].known, m)
			}
		}
	}
	for i := range finals {
		f := &finals[i]
		c.key(f.Key).final = f
	}
	return c.keys
}

// covers reports whether node from covers node target: it is target or
// its writes' Known reach target.
func (ki *keyIndex) covers(from, target int32) bool {
	if from == target {
		return true
	}
	t := &ki.nodes[target]
	if t.memo == nil {
		t.memo = map[int32]bool{}
	}
	return ki.reach(from, target, t)
}

func (ki *keyIndex) reach(n, target int32, t *wnode) bool {
	if n == target {
		return true
	}
	if r, ok := t.memo[n]; ok {
		return r
	}
	w := &ki.nodes[n]
	if w.start < t.start {
		return false // its writer could not have seen target's write
	}
	// In progress: only a doctored history has a cycle, which then
	// answers no.
	t.memo[n] = false
	for _, m := range w.known {
		if ki.reach(m, target, t) {
			t.memo[n] = true
			return true
		}
	}
	return false
}

func (c *checker) violate(v Violation) {
	if len(c.res.Violations) < maxViolations {
		c.res.Violations = append(c.res.Violations, v)
	}
}

func (c *checker) checkKey(key string, ki *keyIndex) {
	c.checkLost(key, ki)
	c.checkReturned(key, ki)
	c.checkStale(key, ki)
}

// checkLost finds the OK writes that no value of the final read accounts
// for.
func (c *checker) checkLost(key string, ki *keyIndex) {
	f := ki.final
	if f == nil || f.Err != "" {
		c.res.FinalErrors++
		return
	}
	accounted := make([]bool, len(ki.nodes))
	var queue []int32
	for _, v := range f.Values {
		if n, ok := ki.byValue[v]; ok && !accounted[n] {
			accounted[n] = true
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		n := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, m := range ki.nodes[n].known {
			if !accounted[m] {
				accounted[m] = true
				queue = append(queue, m)
			}
		}
	}
	for n := range ki.nodes {
		w := &ki.nodes[n]
		if w.acked && !accounted[n] {
			c.res.Lost++
			c.violate(Violation{Kind: ViolationLost, Key: key, Value: w.value,
				Detail: fmt.Sprintf("acknowledged at %s; final values %q", fmtTime(w.ackEnd), f.Values)})
		}
	}
}

// checkReturned checks every value set returned (OK reads, the final
// read) for invented and resurrected values, and counts siblings.
func (c *checker) checkReturned(key string, ki *keyIndex) {
	invented := map[string]bool{}
	resurrected := map[int32]bool{}
	duplicated := map[int32]bool{}
	var set []int32
	check := func(vals []string, where string) {
		set = set[:0]
		for _, v := range vals {
			n, ok := ki.byValue[v]
			switch {
			case !ok:
				if !invented[v] {
					invented[v] = true
					c.res.Invented++
					c.violate(Violation{Kind: ViolationInvented, Key: key, Value: v, Detail: where + ": no write sent it"})
				}
				continue
			case !ki.nodes[n].stored && !invented[v]:
				invented[v] = true
				c.res.Invented++
				c.violate(Violation{Kind: ViolationInvented, Key: key, Value: v,
					Detail: where + ": only refused writes (Failed: nothing stored) sent it"})
			}
			if !slices.Contains(set, n) {
				set = append(set, n)
			} else if !duplicated[n] {
				duplicated[n] = true
				c.res.Duplicated++
				c.violate(Violation{Kind: ViolationDuplicated, Key: key, Value: v,
					Detail: where + ": the same value twice in one answer"})
			}
		}
		for _, b := range set {
			if resurrected[b] {
				continue
			}
			for _, a := range set {
				if a != b && ki.covers(a, b) {
					resurrected[b] = true
					c.res.Resurrected++
					c.violate(Violation{Kind: ViolationResurrected, Key: key, Value: ki.nodes[b].value,
						Detail: fmt.Sprintf("%s: returned beside %q, whose write superseded it", where, ki.nodes[a].value)})
					break
				}
			}
		}
	}
	for _, i := range ki.reads {
		op := &c.ops[i]
		if n := len(op.Values); n > 1 {
			c.res.SiblingsSeen++
			c.res.MaxSiblings = max(c.res.MaxSiblings, n)
		}
		check(op.Values, fmt.Sprintf("read by client %d via %s at %s", op.Client, op.Node, op.Start.Format(time.RFC3339Nano)))
	}
	if f := ki.final; f != nil && f.Err == "" {
		check(f.Values, "final read")
	}
}

// checkStale sweeps the key's OK reads in start order, keeping the
// frontier of OK writes acknowledged before the read began: those no
// other such write covers. A read must return or cover each.
func (c *checker) checkStale(key string, ki *keyIndex) {
	var acked []int32
	for n := range ki.nodes {
		if ki.nodes[n].acked {
			acked = append(acked, int32(n))
		}
	}
	if len(acked) == 0 || len(ki.reads) == 0 {
		return
	}
	slices.SortFunc(acked, func(a, b int32) int { return cmp.Compare(ki.nodes[a].ackEnd, ki.nodes[b].ackEnd) })
	reads := slices.Clone(ki.reads)
	slices.SortStableFunc(reads, func(a, b int) int { return c.ops[a].Start.Compare(c.ops[b].Start) })
	var frontier, set, missed []int32
	next := 0
	for _, i := range reads {
		op := &c.ops[i]
		start := op.Start.UnixNano()
		for next < len(acked) && ki.nodes[acked[next]].ackEnd < start {
			frontier = ki.addFrontier(frontier, acked[next])
			next++
		}
		set = set[:0]
		for _, v := range op.Values {
			if n, ok := ki.byValue[v]; ok {
				set = append(set, n)
			}
		}
		missed = missed[:0]
		for _, m := range frontier {
			if !slices.ContainsFunc(set, func(a int32) bool { return ki.covers(a, m) }) {
				missed = append(missed, m)
			}
		}
		if len(missed) > 0 {
			c.staleRead(key, ki, op, missed)
		}
	}
}

// addFrontier adds acknowledged node w to the frontier unless a member
// covers it, dropping the members it covers.
func (ki *keyIndex) addFrontier(frontier []int32, w int32) []int32 {
	for _, m := range frontier {
		if ki.covers(m, w) {
			return frontier
		}
	}
	frontier = slices.DeleteFunc(frontier, func(m int32) bool {
		if ki.covers(w, m) {
			ki.nodes[m].memo = nil // no longer searched for
			return true
		}
		return false
	})
	return append(frontier, w)
}

// staleRead counts a read that missed the acknowledged nodes missed: under
// faults when a lax window was active between every missed write's start
// and the read's end.
func (c *checker) staleRead(key string, ki *keyIndex, op *Op, missed []int32) {
	lax := true
	for _, m := range missed {
		if !c.laxBetween(ki.nodes[m].ackStart, op.End.UnixNano()) {
			lax = false
			break
		}
	}
	w := &ki.nodes[missed[0]]
	switch {
	case lax:
		c.res.StaleReadsUnderFaults++
	case !c.cfg.StrictReads:
		c.res.StaleReadsWeak++
	default:
		c.res.StaleReads++
		c.violate(Violation{Kind: ViolationStaleRead, Key: key, Value: w.value,
			Detail: fmt.Sprintf("read by client %d via %s at %s returned %q; the write (and %d more missed) was acknowledged at %s",
				op.Client, op.Node, op.Start.Format(time.RFC3339Nano), op.Values, len(missed)-1, fmtTime(w.ackEnd))})
	}
}

// laxBetween reports whether a window of a lax kind was active at some
// time in [from, to] (Unix ns).
func (c *checker) laxBetween(from, to int64) bool {
	for _, win := range c.cfg.Windows {
		if !slices.Contains(c.lax, win.Kind) {
			continue
		}
		if win.Start.UnixNano() <= to && (win.End.IsZero() || win.End.UnixNano() >= from) {
			return true
		}
	}
	return false
}

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
