//go:build unix

package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// SIGHUP runs the reload; a failed reload is logged and the next SIGHUP
// runs it again; after stop, SIGHUP no longer reaches it.
func TestReloadOnHangup(t *testing.T) {
	calls := make(chan int, 4)
	n := 0
	r := notifySIGHUP()
	stop := r.stop
	r.start(t.Context(), slog.New(slog.DiscardHandler), func() error {
		n++
		calls <- n
		if n == 1 {
			return errors.New("bad config")
		}
		return nil
	})
	for want := 1; want <= 2; want++ {
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("reload call %d, want %d", got, want)
			}
		case <-time.After(time.Minute): // a generous deadline: the signal is delivered asynchronously
			t.Fatalf("SIGHUP %d ran no reload", want)
		}
	}
	// Another handler keeps the SIGHUP after stop from killing the test
	// binary (signal.Stop restores the default action when no one else
	// listens) and says when it has been delivered: the runtime hands a
	// signal to every listening channel in one pass.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)
	stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-guard:
	case <-time.After(time.Minute): // a generous deadline: the signal is delivered asynchronously
		t.Fatal("the SIGHUP after stop was never delivered")
	}
	select {
	case got := <-calls:
		t.Fatalf("a reload ran after stop: call %d", got)
	default:
	}
}

// gossip.keys comes from the environment as a comma-separated list, as
// seeds do, so a rotation can be driven by RINGKV_GOSSIP_KEYS too.
func TestGossipKeysFromEnvironment(t *testing.T) {
	t.Setenv("RINGKV_GOSSIP_KEYS", "MDEyMzQ1Njc4OWFiY2RlZg==,ZmVkY2JhOTg3NjU0MzIxMA==")
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Gossip.Keys) != 2 || cfg.Gossip.Keys[1] != "ZmVkY2JhOTg3NjU0MzIxMA==" {
		t.Fatalf("gossip.keys = %q", cfg.Gossip.Keys)
	}
}
