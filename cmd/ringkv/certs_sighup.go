package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringkv/ringkv/node"
)

// sighupReloader turns SIGHUP into TLS reloads. It catches the signal
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

// start reloads n's TLS files on each SIGHUP until ctx is done or stop.
func (r *sighupReloader) start(ctx context.Context, n *node.Node, log *slog.Logger) {
	ctx, r.cancel = context.WithCancel(ctx)
	go func() {
		defer close(r.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.hup:
				log.Info("SIGHUP: reloading tls files")
				_ = n.ReloadTLS() // logged and counted by the node
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
