package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// reloadOnHangup calls reload on every SIGHUP until ctx ends or the
// returned stop is called, logging the outcome: a bad configuration
// leaves the node running as it was. Signals that arrive while a reload
// runs are coalesced into one more reload.
func reloadOnHangup(ctx context.Context, log *slog.Logger, reload func() error) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-hup:
			}
			if err := reload(); err != nil {
				log.Error("configuration reload on SIGHUP failed; the node keeps running as it was", "err", err)
				continue
			}
			log.Info("configuration reloaded on SIGHUP: gossip keys applied")
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-exited
	}
}
