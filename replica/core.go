package replica

import (
	"fmt"
	"maps"
	"slices"

	"github.com/ringkv/ringkv/vclock"
)

// This file holds the pure decisions of the coordinator: which replica
// gets what, when a quorum is met or lost, and which replicas a read must
// repair. Nothing here does I/O, starts goroutines or reads the clock, so
// the rules are tested directly, and the drivers in write.go and read.go
// only move messages.

// action is what a write does for one replica of its preference list.
type action uint8

const (
	// actLocal: the coordinator itself; already applied before fan-out.
	actLocal action = iota
	// actSend: send the merged set to the replica.
	actSend
	// actDown: liveness says the replica is down. A write sends its copy
	// straight to a stand-in (hinted handoff, see standIns); a read
	// counts it as a failure.
	actDown
	// actLater: a live replica a read does not ask at first, because the
	// replicas asked before it cover R (holdBack); it is asked when one of
	// those fails or is slow (speculative retry).
	actLater
)

// target is one replica's part in a write or read.
type target struct {
	node string
	act  action
}

// plan decides, for each replica of the preference list, whether it is
// the coordinator itself, a live peer to call, or a down peer to skip.
func plan(replicas []string, self string, alive func(string) bool) []target {
	ts := make([]target, len(replicas))
	for i, n := range replicas {
		switch {
		case n == self:
			ts[i] = target{node: n, act: actLocal}
		case !alive(n):
			ts[i] = target{node: n, act: actDown}
		default:
			ts[i] = target{node: n, act: actSend}
		}
	}
	return ts
}

// holdBack marks, among a read's targets, the live replicas it need not
// ask at first (actLater) and returns how many it marked: the read asks
// the coordinator itself when it is a target, then the live targets in
// preference order until each side of q has its need among those asked.
// Down targets stay actDown. A side that cannot be covered (checkReach
// refuses that read first) keeps every live target of it.
func holdBack(q quorums, ts []target) int {
	for i := range ts {
		if ts[i].act == actSend {
			ts[i].act = actLater
		}
	}
	held := 0
	cover := func(s side) {
		have := 0
		for _, tg := range ts {
			if tg.act != actLater && tg.act != actDown && slices.Contains(s.nodes, tg.node) {
				have++
			}
		}
		for i := range ts {
			if have >= s.need {
				return
			}
			if ts[i].act == actLater && slices.Contains(s.nodes, ts[i].node) {
				ts[i].act = actSend
				have++
			}
		}
	}
	cover(q.cur)
	if q.joint() {
		cover(q.next)
	}
	for _, tg := range ts {
		if tg.act == actLater {
			held++
		}
	}
	return held
}

// downErr is the failure recorded for a replica liveness reports down.
func downErr(node string) error {
	return fmt.Errorf("%w: %s is down (liveness), nothing sent", ErrReplicaDown, node)
}

// outcome is where a tally stands.
type outcome uint8

const (
	pending outcome = iota // not decided yet
	met                    // need answers arrived
	lost                   // too many failures: need can no longer be met
)

// side is one replica set whose quorum a request needs. A read or write
// during a membership change has two, the key's current replicas and its
// replicas after the change (joint quorum); every other request has one.
type side struct {
	nodes []string
	need  int
}

// sideCount is a side and the answers counted toward it.
type sideCount struct {
	side
	acks, fails int
}

// tally counts answers of one request toward its quorum: need of nodes,
// or for a joint quorum need of each side, met when every side has its
// acknowledgements and lost as soon as one side can no longer get them.
// A node in both sides counts for each.
type tally struct {
	need  int      // answers needed from nodes; unused when joint
	nodes []string // every node the request asks
	// joint holds the two sides of a joint quorum; nil for a request
	// with one side (need of nodes), which thus costs what it always did.
	joint *[2]sideCount
	acks  []string
	// failures is nil until the first failure: a request that meets its
	// quorum allocates no map (a request asks a handful of nodes, so
	// answered scans acks).
	failures map[string]error
}

// newTally starts the count of a request asking nodes, need of which must
// answer.
func newTally(need int, nodes []string) *tally {
	return &tally{need: need, nodes: nodes, acks: make([]string, 0, len(nodes))}
}

// answered reports whether node has acknowledged or failed.
func (t *tally) answered(node string) bool {
	if slices.Contains(t.acks, node) {
		return true
	}
	_, failed := t.failures[node]
	return failed
}

// newJointTally starts the count of a request asking nodes that needs the
// quorum of both sides (each side's nodes are among nodes).
func newJointTally(nodes []string, cur, next side) *tally {
	t := newTally(0, nodes)
	t.joint = &[2]sideCount{{side: cur}, {side: next}}
	return t
}

// ack records a success from node; later answers from the same node are
// ignored.
func (t *tally) ack(node string) {
	if t.answered(node) {
		return
	}
	t.acks = append(t.acks, node)
	if t.joint != nil {
		for i := range t.joint {
			if slices.Contains(t.joint[i].nodes, node) {
				t.joint[i].acks++
			}
		}
	}
}

// fail records a failure of node.
func (t *tally) fail(node string, err error) {
	if t.answered(node) {
		return
	}
	if t.failures == nil {
		t.failures = map[string]error{}
	}
	t.failures[node] = err
	if t.joint != nil {
		for i := range t.joint {
			if slices.Contains(t.joint[i].nodes, node) {
				t.joint[i].fails++
			}
		}
	}
}

// expire fails every node in nodes that has not answered, with err (the
// request's deadline passed).
func (t *tally) expire(nodes []string, err error) {
	for _, n := range nodes {
		if !t.answered(n) {
			t.fail(n, fmt.Errorf("no answer before the deadline: %w", err))
		}
	}
}

// state reports whether the quorum is met, lost, or still open.
func (t *tally) state() outcome {
	if t.joint == nil {
		switch {
		case len(t.acks) >= t.need:
			return met
		case len(t.nodes)-len(t.failures) < t.need:
			return lost
		}
		return pending
	}
	out := met
	for i := range t.joint {
		sc := &t.joint[i]
		switch {
		case sc.acks >= sc.need:
		case len(sc.nodes)-sc.fails < sc.need:
			return lost
		default:
			out = pending
		}
	}
	return out
}

// err is the QuorumError describing a lost or expired tally; it names the
// nodes asked but not yet answered. For a joint quorum Need and Got count
// the current replicas, the Target fields the replicas after the change.
func (t *tally) err(op string) *QuorumError {
	e := &QuorumError{Op: op, Need: t.need, Got: len(t.acks), Failures: make(map[string]error, len(t.failures))}
	maps.Copy(e.Failures, t.failures)
	if t.joint != nil {
		e.Need, e.Got = t.joint[0].need, t.joint[0].acks
		e.TargetNeed, e.TargetGot = t.joint[1].need, t.joint[1].acks
	}
	for _, n := range t.nodes {
		if !t.answered(n) {
			e.Pending = append(e.Pending, n)
		}
	}
	slices.Sort(e.Pending)
	return e
}

// quorums is what a read or write must gather, decided from one
// placement snapshot: the nodes it asks and R or W of each side.
type quorums struct {
	nodes []string // Replicas, then the Pending replicas not among them
	cur   side     // R or W of the current replicas
	next  side     // R or W of the replicas after the change; nodes nil when none is in progress
}

// joint reports whether a membership change is in progress, so that the
// request needs both quorums.
func (q quorums) joint() bool { return q.next.nodes != nil }

// tally starts the count of the request's answers.
func (q quorums) tally() *tally {
	if q.joint() {
		return newJointTally(q.nodes, q.cur, q.next)
	}
	return newTally(q.cur.need, q.nodes)
}

// quorumsFor decides the recipients and quorums of a read (k is R) or a
// write (k is W): it asks the current replicas and the pending ones, and
// needs k (resolved against n, capped by each side's size) of the current
// replicas and, while a change is in progress (pending replicas, or
// targets that differ from the replicas), k of the targets. A node in both
// counts for both. Without a change it is one side, the replicas, as it
// always was, and allocates nothing.
//
// Reads and writes take the same quorums because nodes do not learn a
// plan at the same moment: a node that installed the commit writes to W of
// the targets alone while a node still on the change reads, and a node
// still on the change writes while one that installed the commit reads R
// of the targets alone. A joint read (R of each side) overlaps both kinds
// of write on the targets, and a joint write overlaps both kinds of read.
func quorumsFor(k, def Quorum, n int, reps, pending, targets []string) (quorums, error) {
	cur, err := need(k, def, n, len(reps))
	if err != nil {
		return quorums{}, err
	}
	q := quorums{nodes: reps, cur: side{nodes: reps, need: cur}}
	if len(pending) == 0 && (len(targets) == 0 || sameSet(reps, targets)) {
		return q, nil
	}
	q.nodes = slices.Clip(reps)
	for _, p := range pending {
		if !slices.Contains(q.nodes, p) {
			q.nodes = append(q.nodes, p)
		}
	}
	next, err := need(k, def, n, len(targets))
	if err != nil {
		return quorums{}, err
	}
	q.next = side{nodes: targets, need: next}
	return q, nil
}

// sameSet reports whether a and b, each without repeats, hold the same
// names.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// standInPool returns fallbacks without any of nodes (the write's
// replicas and pending replicas): a node that gets its own copy of a write
// must not also keep another's as a hint, or its one acknowledgement would
// count twice. Placement promises this already; checking it keeps a wrong
// placement from weakening the quorum. It returns fallbacks itself when
// nothing is removed.
func standInPool(fallbacks, nodes []string) []string {
	for i, f := range fallbacks {
		if !slices.Contains(nodes, f) {
			continue
		}
		out := slices.Clone(fallbacks[:i])
		for _, g := range fallbacks[i+1:] {
			if !slices.Contains(nodes, g) {
				out = append(out, g)
			}
		}
		return out
	}
	return fallbacks
}

// reachable is what a read or write could reach at best among side
// (every target when side is nil), before anything is asked: the side's
// targets liveness reports up (the coordinator always is) plus, for a
// sloppy write, as many of its down ones as there are live stand-ins
// (each handed out once, as standIns does). Each side is counted on its own: at
// best the stand-ins go to its down replicas. A read has no stand-ins and
// is never sloppy.
func reachable(ts []target, side, fallbacks []string, sloppy bool, alive func(string) bool) int {
	up, down := 0, 0
	for _, tg := range ts {
		switch {
		case side != nil && !slices.Contains(side, tg.node):
		case tg.act == actDown:
			down++
		default:
			up++
		}
	}
	if !sloppy {
		return up
	}
	for _, f := range fallbacks {
		if down == 0 {
			break
		}
		if alive(f) {
			up, down = up+1, down-1
		}
	}
	return up
}

// unavailable is the QuorumError of a request refused before anything was
// asked or written, because fewer than need targets are up.
func unavailable(op string, need, reach int, ts []target) *QuorumError {
	e := &QuorumError{Op: op, Need: need, Unavailable: true, Reachable: reach, Failures: map[string]error{}}
	for _, tg := range ts {
		if tg.act == actDown {
			e.Failures[tg.node] = downErr(tg.node)
		}
	}
	return e
}

// checkReach is the unavailable pre-check of a read or write: nil when
// each side could reach its need (see reachable), else the error to answer
// before anything is written or sent. A read passes no stand-ins and
// sloppy false.
func checkReach(op string, q quorums, ts []target, standIns []string, sloppy bool, alive func(string) bool) *QuorumError {
	var cur []string // nil: every target is a current replica
	if q.joint() {
		cur = q.cur.nodes
	}
	reach := reachable(ts, cur, standIns, sloppy, alive)
	treach := 0
	if q.joint() {
		treach = reachable(ts, q.next.nodes, standIns, sloppy, alive)
	}
	if reach >= q.cur.need && treach >= q.next.need {
		return nil
	}
	e := unavailable(op, q.cur.need, reach, ts)
	if q.joint() {
		e.TargetNeed, e.TargetReachable = q.next.need, treach
	}
	return e
}

// refuses is the stale check of a store or read: a node refuses when it is
// neither a current nor a pending replica of the partition in its own
// plan, that plan is known (own > 0), and the sender's plan is not newer
// (sent <= own). The sender routes by an older plan, and an answer from
// here would count as a replica's. A sender with a newer plan is believed:
// this node is behind.
func refuses(self string, reps, pending []string, own, sent uint64) bool {
	return own > 0 && sent <= own && !slices.Contains(reps, self) && !slices.Contains(pending, self)
}

// repairs returns the nodes, among those that answered a read, whose set
// differs from final (they answered with less), in the order given.
// Because Merge is a canonical join, a replica holding everything in final
// holds the same versions. Sets are compared by dots and tombstone flags,
// as anti-entropy's digest does: a replica that pruned a version's context
// and one that did not yet hold the same write, and repairing one from the
// other would change nothing but cost a write on every read.
func repairs(order []string, replies map[string]vclock.Siblings, final vclock.Siblings) []string {
	var out []string
	for _, n := range order {
		s, ok := replies[n]
		if ok && !sameVersions(s, final) {
			out = append(out, n)
		}
	}
	return out
}

// sameVersions reports whether a and b hold the same dots with the same
// tombstone flags, in order (sets are sorted by dot).
func sameVersions(a, b vclock.Siblings) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Dot != b[i].Dot || a[i].Tombstone != b[i].Tombstone {
			return false
		}
	}
	return true
}
