// Command ringkv is the ringkv server and its command-line client.
//
//	ringkv server --config configs/single.yaml   run one node
//	ringkv dev                                   run a local 3-node cluster
//	ringkv put KEY VALUE / get KEY / delete KEY  talk to a node over HTTP
//	ringkv members / ring / leave / remove NODE  operate the cluster
//	ringkv bench                                 load-test a cluster (YCSB-style workloads)
//	ringkv chaos                                 inject faults into a cluster it starts, check the history
//
// Run "ringkv help" for every command and flag.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handlers so that a
		// second Ctrl-C kills a process whose graceful stop hangs.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
