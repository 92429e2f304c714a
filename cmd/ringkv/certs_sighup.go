package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringkv/ringkv/node"
)

// reloadOnSIGHUP reloads the node's TLS files on each SIGHUP until the
// returned func is called. Without it SIGHUP would kill the server.
func reloadOnSIGHUP(ctx context.Context, n *node.Node, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading tls files")
				_ = n.ReloadTLS() // logged and counted by the node
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
