//go:build unix

package main

import (
	"errors"
	"io"
	"log/slog"
	"syscall"
	"testing"

	"github.com/ringkv/ringkv/node"
)

// TestSIGHUPWhileStarting: a SIGHUP that arrives while the node starts
// does not kill the server. Were it uncaught, the signal's default action
// would end this test binary at the kill below.
func TestSIGHUPWhileStarting(t *testing.T) {
	errStarting := errors.New("still starting")
	a := &app{stdout: io.Discard, stderr: io.Discard}
	err := a.runServer(t.Context(), node.Config{}, slog.New(slog.DiscardHandler), func(node.Config, *slog.Logger) (*node.Node, error) {
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		return nil, errStarting
	}, nil)
	if !errors.Is(err, errStarting) {
		t.Fatalf("runServer: %v, want the start error", err)
	}
}
