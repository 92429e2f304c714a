package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/vclock"
)

// The front ends (HTTP, RESP, admin) do not talk to replica, gossip, ring and
// storage directly: they see the two small interfaces below, which node.go
// implements on top of the real packages (wire.go) and the tests implement
// with in-memory fakes. This keeps protocol handling testable without a
// cluster and keeps the mapping of errors to status codes in one place.

// kvBackend is the quorum coordinator as the client front ends see it.
// Implementations are safe for concurrent use; calls block until the quorum
// answered or the request deadline passed. Keys and values passed in are
// owned by the backend after the call (callers copy protocol buffers first);
// returned sibling sets must not be modified.
type kvBackend interface {
	// Get reads key with read quorum r ("" = configured default).
	Get(ctx context.Context, key []byte, r string) (kvResult, error)
	// Put writes value. With hasContext false it is a blind write that
	// supersedes whatever the coordinator holds (docs/http-api.md).
	Put(ctx context.Context, key, value []byte, w string, c vclock.Clock, hasContext bool) (kvResult, error)
	// Delete writes a tombstone, with the same context rules as Put.
	Delete(ctx context.Context, key []byte, w string, c vclock.Clock, hasContext bool) (kvResult, error)
}

// kvResult is the answer of a kvBackend call.
type kvResult struct {
	// Siblings is the merged sibling set; it may hold tombstones.
	Siblings vclock.Siblings
}

// Context returns the causal context that supersedes every sibling. It
// is computed on each call: the Redis protocol, which has no contexts,
// never pays for it.
func (r kvResult) Context() vclock.Clock { return r.Siblings.Context() }

// errBadQuorum marks an r or w the coordinator refused (unknown spelling,
// or outside 1..N). The front ends answer it with 400 / ERR.
var errBadQuorum = errors.New("node: bad quorum")

// errTooManySiblings marks a write refused because the key would hold
// more versions than the sibling cap. HTTP answers 409, RESP an error.
var errTooManySiblings = errors.New("node: too many siblings")

// errNotFound is returned by the admin backend for an unknown node name.
var errNotFound = errors.New("node: not found")

// errBadRequest is returned by the admin backend for a request it refuses
// (for example removing the node itself).
var errBadRequest = errors.New("node: bad request")

// quorumFailure is a read or write that fewer than the required replicas
// answered in time. The front ends answer it with 503 / ERR.
type quorumFailure struct {
	Op       string
	Need     int
	Got      int
	Failures map[string]string // node -> cause
	// Pending are replicas asked that had not answered when it gave up.
	Pending []string
	// Unavailable: refused before anything was asked or written, because
	// liveness said only Reachable replicas could answer.
	Unavailable bool
	Reachable   int
}

// Error names what was needed, what answered and why the others did not.
func (q *quorumFailure) Error() string {
	var b strings.Builder
	if q.Unavailable {
		fmt.Fprintf(&b, "%s unavailable: need %d, only %d reachable; nothing was sent", q.Op, q.Need, q.Reachable)
	} else {
		fmt.Fprintf(&b, "%s quorum not met: need %d, got %d", q.Op, q.Need, q.Got)
	}
	if len(q.Pending) > 0 {
		fmt.Fprintf(&b, ", no answer yet from %s", strings.Join(q.Pending, ", "))
	}
	for _, n := range slices.Sorted(maps.Keys(q.Failures)) {
		fmt.Fprintf(&b, "; %s: %s", n, q.Failures[n])
	}
	return b.String()
}

// adminBackend is the cluster management view the admin routes need.
// Implementations are safe for concurrent use.
type adminBackend interface {
	// Members lists every known node, sorted by name.
	Members() []client.Member
	// LocalStats is what this node's storage engine holds.
	LocalStats() client.NodeStats
	// Ring is GET /v1/ring: the serving ring, the plan's target during a
	// change, and every member's keys and bytes (asked of each node).
	Ring(ctx context.Context) client.Ring
	// Placement is key's preference list (GET /v1/ring?key=K).
	Placement(key []byte) client.KeyPlacement
	// Partitions is every partition's replicas (GET /v1/ring/partitions).
	Partitions() client.Partitions
	// WhatIf is what adding (op "add", in zone, "" for none) or removing
	// (op "remove") node would move (GET /v1/ring?what_if=op:NAME). Errors
	// wrapping errBadRequest or errNotFound are the client's.
	WhatIf(op, node, zone string) (client.WhatIf, error)
	// Leave starts this node's leave: it hands its partitions off, then
	// leaves the ring and stops.
	Leave(ctx context.Context) error
	// SetTransferRate sets this node's transfer rate limit in MB/s (0:
	// none).
	SetTransferRate(mb float64)
	// Remove marks another node as removed from the ring.
	Remove(ctx context.Context, name string) error
	// AAE is this node's anti-entropy state per partition it replicates;
	// nil when anti-entropy is off.
	AAE() []client.AAEPartition
}

// parseWhatIf splits "add:NAME" or "remove:NAME".
func parseWhatIf(s string) (op, name string, err error) {
	op, name, ok := strings.Cut(s, ":")
	if !ok || (op != "add" && op != "remove") || name == "" {
		return "", "", fmt.Errorf("%w: what_if must be add:NAME or remove:NAME, got %q", errBadRequest, s)
	}
	return op, name, nil
}

// Version is the ringkv release this package belongs to; INFO and the CLI
// report it.
const Version = "0.1.0"
