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
	// straight to a stand-in (hinted handoff, see nextStandIn); a read
	// counts it as a failure.
	actDown
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

// nextStandIn returns the first node of fallbacks[from:] that alive
// reports up, and the index to continue from; ok is false when none is
// left. Each write hands out its fallbacks in ring order, each at most
// once, so two down replicas never share a stand-in.
func nextStandIn(fallbacks []string, from int, alive func(string) bool) (node string, next int, ok bool) {
	for i := from; i < len(fallbacks); i++ {
		if alive(fallbacks[i]) {
			return fallbacks[i], i + 1, true
		}
	}
	return "", len(fallbacks), false
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

// tally counts answers of one request toward its quorum.
type tally struct {
	need     int
	nodes    []string // the request's replicas
	acks     []string
	failures map[string]error
	answered map[string]bool
}

// newTally starts the count of a request asking nodes, need of which must
// answer.
func newTally(need int, nodes []string) *tally {
	return &tally{need: need, nodes: nodes, failures: map[string]error{}, answered: map[string]bool{}}
}

// ack records a success from node; later answers from the same node are
// ignored.
func (t *tally) ack(node string) {
	if t.answered[node] {
		return
	}
	t.answered[node] = true
	t.acks = append(t.acks, node)
}

// fail records a failure of node.
func (t *tally) fail(node string, err error) {
	if t.answered[node] {
		return
	}
	t.answered[node] = true
	t.failures[node] = err
}

// expire fails every node in nodes that has not answered, with err (the
// request's deadline passed).
func (t *tally) expire(nodes []string, err error) {
	for _, n := range nodes {
		if !t.answered[n] {
			t.fail(n, fmt.Errorf("no answer before the deadline: %w", err))
		}
	}
}

// state reports whether the quorum is met, lost, or still open.
func (t *tally) state() outcome {
	switch {
	case len(t.acks) >= t.need:
		return met
	case len(t.nodes)-len(t.failures) < t.need:
		return lost
	}
	return pending
}

// err is the QuorumError describing a lost or expired tally; it names the
// nodes asked but not yet answered.
func (t *tally) err(op string) *QuorumError {
	e := &QuorumError{Op: op, Need: t.need, Got: len(t.acks), Failures: maps.Clone(t.failures)}
	for _, n := range t.nodes {
		if !t.answered[n] {
			e.Pending = append(e.Pending, n)
		}
	}
	slices.Sort(e.Pending)
	return e
}

// upCount counts the targets liveness reports up (the coordinator is
// always up): what a read could hear from at best, before anything is
// asked.
func upCount(ts []target) int {
	up := 0
	for _, tg := range ts {
		if tg.act != actDown {
			up++
		}
	}
	return up
}

// reachable is what a write could reach at best, before anything is
// asked: the targets liveness reports up plus, for a sloppy write, the
// live stand-ins (handed out as nextStandIn does) that can take the down
// replicas' copies.
func reachable(ts []target, fallbacks []string, sloppy bool, alive func(string) bool) int {
	up := upCount(ts)
	if !sloppy {
		return up
	}
	next := 0
	for down := len(ts) - up; down > 0; down-- {
		_, n, ok := nextStandIn(fallbacks, next, alive)
		if !ok {
			break
		}
		up, next = up+1, n
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

// repairs returns the nodes, among those that answered a read, whose set
// differs from final (they answered with less), in the order given.
// Because Merge is a canonical join, a replica holding everything in final
// holds exactly final.
func repairs(order []string, replies map[string]vclock.Siblings, final vclock.Siblings) []string {
	var out []string
	for _, n := range order {
		s, ok := replies[n]
		if ok && !s.Equal(final) {
			out = append(out, n)
		}
	}
	return out
}
