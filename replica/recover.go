package replica

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
)

// recoverPanic, deferred directly, stops a panic in the calling goroutine:
// it logs it at error level ("panic recovered", with what was running,
// attrs, the panic value and the stack), adds one to n and runs cleanup
// (if not nil), so that a bug on one connection or call ends only that
// connection or call. Without a panic it does nothing.
func recoverPanic(log *slog.Logger, n *atomic.Uint64, what string, cleanup func(), attrs ...any) {
	v := recover()
	if v == nil {
		return
	}
	n.Add(1)
	args := append([]any{"in", what}, attrs...)
	args = append(args, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	log.Error("panic recovered", args...)
	if cleanup != nil {
		cleanup()
	}
}

// writerPanicked is a frameWriter's panicked hook for a connection to
// peer: it logs and counts a panic of the drain goroutine as
// recoverPanic does (the writer has failed the connection already).
func (t *TCPTransport) writerPanicked(peer string) func(v any) {
	return func(v any) {
		t.panics.Add(1)
		t.log.Error("panic recovered", "in", "rpc frame writer", "listener", "rpc", "peer", peer, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}
