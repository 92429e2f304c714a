package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ringkv/ringkv/node"
)

// readyPrefix starts the one line "ringkv server" prints on stdout once all
// its listeners are bound; "ringkv dev" and the e2e tests wait for it.
const readyPrefix = "ringkv ready "

func (a *app) serverCmd() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run one ringkv node",
		Long: `Run one ringkv node until SIGINT or SIGTERM, then stop gracefully and exit 0.

Configuration comes from, highest precedence first: the flags below, RINGKV_*
environment variables (the YAML key upper-cased with "." -> "_", e.g.
RINGKV_LISTEN_HTTP, RINGKV_QUORUM_W), the --config YAML file, and the
defaults. configs/production.yaml lists every key with its default.

On SIGHUP it reloads the TLS files (tls.cert_file, tls.key_file,
tls.ca_file; the node also reloads them when they change) and reads its
configuration again (file, environment, flags) to apply gossip.keys to the
running node, for key rotation without a restart (docs/gossip.md); nothing
else is reloaded.

Once every listener is bound the server prints one line to stdout:
  ringkv ready name=<name> http=<addr> resp=<addr> rpc=<addr> gossip=<addr>`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFile, cmd.Flags())
			if err != nil {
				return err
			}
			logger, err := newLogger(a.stderr, cfg.Log)
			if err != nil {
				return err
			}
			// node.New and the packages it starts name the node in every
			// line they log; only the command's own lines add it here.
			if unknown := lookupEnvKeys(); len(unknown) > 0 {
				logger.Warn("ignoring environment variables that match no config key", "node", cfg.Node.Name, "vars", strings.Join(unknown, ","))
			}
			reread := func() (node.Config, error) { return loadConfig(configFile, cmd.Flags()) }
			return a.runServer(cmd.Context(), cfg, logger, node.New, reread)
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "YAML config file (see configs/)")
	addServerFlags(cmd.Flags())
	return cmd
}

// runServer starts the node with newNode (node.New; tests replace it),
// prints the ready line and runs the node until ctx ends. On SIGHUP it
// reloads the TLS files and, with reread (nil: none), the configuration's
// gossip keys and auth tokens.
func (a *app) runServer(ctx context.Context, cfg node.Config, logger *slog.Logger,
	newNode func(node.Config, *slog.Logger) (*node.Node, error), reread func() (node.Config, error)) error {
	// SIGHUP is caught before the node starts: uncaught, it kills the
	// process, and a rotation script's signal may come while a node
	// replays its WAL.
	hup := notifySIGHUP()
	defer hup.stop()
	n, err := newNode(cfg, logger)
	if err != nil {
		return fmt.Errorf("start node %s: %w", cfg.Node.Name, err)
	}
	hup.start(ctx, logger.With("node", cfg.Node.Name), func() error {
		_ = n.ReloadTLS() // logged and counted by the node
		if reread == nil {
			return nil
		}
		next, err := reread()
		if err != nil {
			return err
		}
		return errors.Join(n.ReloadGossipKeys(next), n.ReloadTokens(next))
	})
	fmt.Fprintln(a.stdout, readyLine(cfg.Node.Name, n.Addrs()))
	if err := n.Run(ctx); err != nil {
		return fmt.Errorf("node %s: %w", cfg.Node.Name, err)
	}
	return nil
}

// readyLine formats the ready line from the addresses the node bound, which
// differ from the configured ones when a port was 0.
func readyLine(name string, a node.Addrs) string {
	line := fmt.Sprintf("%sname=%s http=%s resp=%s rpc=%s gossip=%s", readyPrefix, name, a.HTTP, a.RESP, a.RPC, a.Gossip)
	if a.Admin != "" {
		line += " admin=" + a.Admin
	}
	return line
}

// parseReadyLine is the inverse of readyLine: it returns the key=value
// fields of a ready line, or false for any other line.
func parseReadyLine(line string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), readyPrefix)
	if !ok {
		return nil, false
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, false
		}
		fields[k] = v
	}
	return fields, fields["name"] != "" && fields["http"] != ""
}

// newLogger builds the server's logger from log.level and log.format.
func newLogger(w io.Writer, c node.LogConfig) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("config log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("config log.format: must be text or json, got %q", c.Format)
	}
}
