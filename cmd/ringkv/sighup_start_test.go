//go:build unix

package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPBeforeStart: a SIGHUP caught after notifySIGHUP but before
// start (runServer calls notifySIGHUP before node.New, so this is a signal
// during a slow start) is kept and runs exactly one reload once the node
// runs. A second handler tells the test when the signal has been
// delivered: the runtime hands a signal to every listening channel in one
// pass, so the reloader's channel has it too.
func TestSIGHUPBeforeStart(t *testing.T) {
	r := notifySIGHUP()
	defer r.stop()
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-guard:
	case <-time.After(time.Minute): // a generous deadline: the signal is delivered asynchronously
		t.Fatal("SIGHUP never delivered")
	}
	reloads := make(chan struct{}, 4)
	r.start(t.Context(), slog.New(slog.DiscardHandler), func() error {
		reloads <- struct{}{}
		return nil
	})
	select {
	case <-reloads:
	case <-time.After(time.Minute):
		t.Fatal("the SIGHUP caught before start ran no reload")
	}
	r.stop()
	select {
	case <-reloads:
		t.Fatal("one SIGHUP ran two reloads")
	default:
	}
}
