package gossip

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
)

// Stats is a snapshot of a Gossip's counters and plan epoch.
type Stats struct {
	// RecoveredPanics counts panics recovered in the delegate methods
	// memberlist calls, most of which handle a peer's bytes. Each is a
	// bug, logged at error level; only that message or exchange was lost.
	RecoveredPanics uint64
	// RefusedStreams counts TCP streams closed because a peer sent more
	// than Config.MaxStreamBytes on them.
	RefusedStreams uint64
	// BusyStreams counts incoming TCP streams closed unread because
	// Config.MaxConcurrentStreams were already open.
	BusyStreams uint64
	// PlanEpoch is the epoch of the cluster plan held (0: none known).
	PlanEpoch uint64
	// LogWarnings counts memberlist's warning and error lines, most of
	// them caused by bytes from outside (malformed or undecryptable
	// packets); LogSuppressed counts those of them not written because a
	// line of the same reason was written less than 10 s before.
	LogWarnings, LogSuppressed uint64
}

// Stats returns the counters.
func (g *Gossip) Stats() Stats {
	// Suppressed before warnings: a line is counted in warnings first,
	// so this order never reports more suppressed than warnings.
	suppressed := g.mlSuppressed.Load()
	return Stats{
		RecoveredPanics: g.panics.Load(),
		RefusedStreams:  g.refusedStreams.Load(),
		BusyStreams:     g.busyStreams.Load(),
		PlanEpoch:       g.Plan().Epoch,
		LogWarnings:     g.mlWarnings.Load(),
		LogSuppressed:   suppressed,
	}
}

// recoverPanic, deferred directly, stops a panic in the calling goroutine
// (one of memberlist's): it logs it at error level ("panic recovered",
// with what was running, the panic value and the stack) and adds one to
// n. Without a panic it does nothing. memberlist does not recover panics
// in its delegates, so one bad message would otherwise end the process.
func recoverPanic(log *slog.Logger, n *atomic.Uint64, what string) {
	v := recover()
	if v == nil {
		return
	}
	n.Add(1)
	log.Error("panic recovered", "listener", "gossip", "in", what,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}
