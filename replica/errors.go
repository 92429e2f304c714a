package replica

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Sentinel errors. Callers test them with errors.Is; the RPC carries their
// identity across the wire (see RemoteError), so a forwarded request fails
// with the same sentinel as a local one.
var (
	// ErrQuorum: fewer than R or W replicas answered before the deadline.
	// Always wrapped in a *QuorumError.
	ErrQuorum = errors.New("replica: quorum not reached")
	// ErrBadQuorum: an R or W value that is not one/quorum/all/1..N.
	ErrBadQuorum = errors.New("replica: bad quorum")
	// ErrNoReplicas: the placement has no replica for the key (empty ring).
	ErrNoReplicas = errors.New("replica: no replicas for key")
	// ErrBadRequest: a request that can never succeed (empty key, malformed
	// context or sibling set). Client errors, HTTP 400.
	ErrBadRequest = errors.New("replica: bad request")
	// ErrReplicaDown: liveness reports the replica down, so nothing was sent.
	ErrReplicaDown = errors.New("replica: replica down")
	// ErrNotReplica: a forwarded write reached a node outside the key's
	// preference list (the two nodes' ring views differ), or a store or
	// read reached a node that is no replica of the key's partition in a
	// plan at least as new as the sender's.
	ErrNotReplica = errors.New("replica: node is not a replica of the key")
	// ErrUnknownKind: the request kind is not one this node serves (a newer
	// peer sent a call this version does not know).
	ErrUnknownKind = errors.New("replica: unknown request kind")
	// ErrNoHints: a store request asked this node to keep a hint but no hint
	// sink is configured.
	ErrNoHints = errors.New("replica: hints not supported")
	// ErrClosed: the transport or coordinator was closed.
	ErrClosed = errors.New("replica: closed")
	// ErrUnknownPeer: the transport cannot resolve the node's address.
	ErrUnknownPeer = errors.New("replica: unknown peer")
	// ErrUnreachable: dialing the peer failed, or it is in reconnect backoff.
	ErrUnreachable = errors.New("replica: peer unreachable")
	// ErrConnLost: the connection carrying the call broke before the reply.
	// The peer may have run the request.
	ErrConnLost = errors.New("replica: connection lost")
	// ErrNotSent: the call failed before its request left this node (its
	// connection had already failed, or writing the frame failed), so the
	// peer did not run it. Such errors wrap ErrConnLost too.
	ErrNotSent = errors.New("replica: request not sent")
	// ErrFrameTooLarge: a frame exceeds the configured maximum size.
	ErrFrameTooLarge = errors.New("replica: frame too large")
	// ErrProtocol: bytes on the wire that are not a valid frame or message.
	ErrProtocol = errors.New("replica: protocol error")
	// ErrTooManySiblings: a write would leave a key with more versions
	// than Config.MaxSiblings. The client resolves the siblings first
	// (HTTP 409).
	ErrTooManySiblings = errors.New("replica: too many siblings")
	// ErrWrongPeer: the node at the other end of an RPC connection is not
	// the one the caller meant (its hello named another node), so the
	// connection was refused before any call was sent on it.
	ErrWrongPeer = errors.New("replica: connected to the wrong node")
	// ErrStalePlan: a transfer source refused a pull because its own plan
	// is older than the puller's; the puller retries once the source has
	// learnt the plan.
	ErrStalePlan = errors.New("replica: plan not known here yet")
	// ErrDropAborted: dropping a partition stopped because the node must
	// hold the partition again (its plan changed while it was dropping).
	ErrDropAborted = errors.New("replica: partition drop aborted")
	// ErrNoTree: an anti-entropy call (KindTree, KindKeys, KindFetch)
	// reached a node that serves none (its coordinator has no Tree).
	ErrNoTree = errors.New("replica: anti-entropy not served here")
	// ErrInternal: a remote failure with no more specific sentinel.
	ErrInternal = errors.New("replica: remote error")
)

// QuorumError reports a request that did not gather enough answers. The
// HTTP layer maps it to 503 and shows Need, Got and Failures.
type QuorumError struct {
	// Op is the operation: "get", "put" or "delete".
	Op string
	// Need is the number of answers required (R or W, capped by the
	// replicas that exist).
	Need int
	// Got is the number of answers received when the request gave up.
	Got int
	// Failures maps each replica that did not answer to the cause; a
	// replica that liveness reported down was never asked, and its cause
	// wraps ErrReplicaDown.
	Failures map[string]error
	// Pending names the replicas that were asked and had not answered
	// when the request gave up (because the failures already made the
	// quorum unreachable), sorted.
	Pending []string
	// Unavailable is set when liveness said, before anything was asked
	// or written, that fewer than Need replicas could answer (Cassandra's
	// unavailable error): Got is then 0 and nothing was stored anywhere.
	Unavailable bool
	// Reachable is, when Unavailable, how many replicas (and, for a sloppy
	// write, stand-ins) liveness reported up, the coordinator included.
	Reachable int
	// TargetNeed, TargetGot and TargetReachable are set for a read or
	// write during a membership change, which needs R or W answers among
	// the key's current replicas and as many among its replicas after the
	// change (joint quorum): Need, Got and Reachable then count the current
	// replicas, and these the replicas after the change. TargetNeed is 0
	// otherwise.
	TargetNeed, TargetGot, TargetReachable int
}

// Error names the missing replicas and why each failed, in name order.
func (e *QuorumError) Error() string {
	var b strings.Builder
	switch {
	case e.Unavailable && e.TargetNeed > 0:
		fmt.Fprintf(&b, "replica: %s unavailable: need %d, only %d reachable of the current replicas and need %d, only %d reachable of the replicas after the change; nothing was sent",
			e.Op, e.Need, e.Reachable, e.TargetNeed, e.TargetReachable)
	case e.Unavailable:
		fmt.Fprintf(&b, "replica: %s unavailable: need %d, only %d reachable; nothing was sent", e.Op, e.Need, e.Reachable)
	case e.TargetNeed > 0:
		fmt.Fprintf(&b, "replica: %s quorum not reached: need %d, got %d of the current replicas and need %d, got %d of the replicas after the change",
			e.Op, e.Need, e.Got, e.TargetNeed, e.TargetGot)
	default:
		fmt.Fprintf(&b, "replica: %s quorum not reached: need %d, got %d", e.Op, e.Need, e.Got)
	}
	if len(e.Pending) > 0 {
		fmt.Fprintf(&b, ", no answer yet from %s", strings.Join(e.Pending, ", "))
	}
	for i, n := range slices.Sorted(maps.Keys(e.Failures)) {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", n, e.Failures[n])
		if i == len(e.Failures)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// Unwrap returns ErrQuorum.
func (e *QuorumError) Unwrap() error { return ErrQuorum }

// RemoteError is an error returned by a peer's handler, carried over the
// RPC. Unwrap yields the sentinel the peer reported (by its code), so
// errors.Is works across nodes; unknown codes map to ErrInternal.
type RemoteError struct {
	// Node is the peer that failed the call.
	Node string
	// Code names the sentinel (see errorCodes).
	Code string
	// Msg is the peer's error text.
	Msg string
}

// Error returns the peer's message prefixed by its name.
func (e *RemoteError) Error() string { return e.Node + ": " + e.Msg }

// Unwrap returns the sentinel named by Code.
func (e *RemoteError) Unwrap() error {
	if s, ok := errorCodes[e.Code]; ok {
		return s
	}
	return ErrInternal
}

// errorCodes names the sentinels that keep their identity on the wire.
// Codes are part of the protocol: never renumber, only add.
var errorCodes = map[string]error{
	"quorum":       ErrQuorum,
	"bad_quorum":   ErrBadQuorum,
	"no_replicas":  ErrNoReplicas,
	"bad_request":  ErrBadRequest,
	"replica_down": ErrReplicaDown,
	"not_replica":  ErrNotReplica,
	"unknown_kind": ErrUnknownKind,
	"no_hints":     ErrNoHints,
	"closed":       ErrClosed,
	"frame_large":  ErrFrameTooLarge,
	"protocol":     ErrProtocol,
	"internal":     ErrInternal,
	"unknown_peer": ErrUnknownPeer,
	"unreachable":  ErrUnreachable,
	"conn_lost":    ErrConnLost,
	"siblings":     ErrTooManySiblings,
	"wrong_peer":   ErrWrongPeer,
	"stale_plan":   ErrStalePlan,
	"drop_aborted": ErrDropAborted,
	"no_tree":      ErrNoTree,
	"deadline":     context.DeadlineExceeded,
	"canceled":     context.Canceled,
}

// errorCode returns the wire code of the first sentinel err matches.
func errorCode(err error) string {
	// Order matters: ErrQuorum errors are checked first because a
	// QuorumError's causes may themselves wrap other sentinels.
	for _, c := range []string{"quorum", "bad_quorum", "bad_request", "no_replicas", "not_replica",
		"unknown_kind", "no_hints", "siblings", "replica_down", "closed", "frame_large", "protocol",
		"unknown_peer", "unreachable", "conn_lost", "wrong_peer", "stale_plan", "drop_aborted", "no_tree", "deadline", "canceled"} {
		if errors.Is(err, errorCodes[c]) {
			return c
		}
	}
	return "internal"
}
