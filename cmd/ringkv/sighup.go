package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// sighupReloader turns SIGHUP into reloads (TLS files, gossip keys, auth tokens). It catches the signal
// from notifySIGHUP on, before the node exists: an uncaught SIGHUP kills
// the process, and a node that starts slowly (a long WAL replay) would
// die of a rotation script's signal. A signal caught before start is kept
// and reloads once the node runs.
type sighupReloader struct {
	hup    chan os.Signal
	cancel context.CancelFunc // nil until start
	done   chan struct{}      // closed when start's goroutine ends
}

// notifySIGHUP starts catching SIGHUP; call stop when done.
func notifySIGHUP() *sighupReloader {
	r := &sighupReloader{hup: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(r.hup, syscall.SIGHUP)
	return r
}

// start calls reload on each SIGHUP until ctx is done or stop; a failed
// reload is logged and leaves the node running as it was.
func (r *sighupReloader) start(ctx context.Context, log *slog.Logger, reload func() error) {
	ctx, r.cancel = context.WithCancel(ctx)
	go func() {
		defer close(r.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.hup:
				log.Info("SIGHUP: reloading tls files, gossip keys and auth tokens")
				if err := reload(); err != nil {
					log.Error("reload on SIGHUP failed in part; what failed keeps its earlier settings, the rest was applied", "err", err)
				}
			}
		}
	}()
}

// stop stops catching SIGHUP and waits for start's goroutine.
func (r *sighupReloader) stop() {
	signal.Stop(r.hup)
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
}
