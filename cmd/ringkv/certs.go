package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringkv/ringkv/node"
)

func (a *app) certsCmd() *cobra.Command {
	var (
		cfg  node.CertsConfig
		days int
	)
	cmd := &cobra.Command{
		Use:   "certs [flags] NODE...",
		Short: "Write a cluster CA and a TLS certificate per node",
		Long: `Write into --dir a cluster CA (ca.crt, ca.key) and, signed by it, a key and
certificate per NODE (NODE.crt, NODE.key) for the tls.* config keys, usable
both as server and as client certificate. Each node certificate names the
node, localhost, 127.0.0.1, ::1 and every --host: peers check the node name
on the internal RPC, clients check the host they dial.

With --client it also writes client.crt and client.key for the CLI.

An existing ca.crt and ca.key in --dir are reused, so nodes added later
join the same CA. Other existing files are left alone and the command
fails, unless --force. Keys are ECDSA P-256; files are written 0600 and a
new directory 0700. Keep ca.key off the nodes: only "ringkv certs" needs it.

  ringkv certs --dir certs n1 n2 n3
  ringkv certs --dir certs --host db1.example.com --host 10.0.0.11 n1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Nodes = args
			if len(args) == 0 && !cfg.Client {
				return usageError("certs takes at least one NODE name (or --client); see %q", cmd.CommandPath()+" --help")
			}
			if days < 1 {
				return usageError("--days must be at least 1, got %d", days)
			}
			cfg.Validity = time.Duration(days) * 24 * time.Hour
			written, err := node.WriteCerts(cfg)
			for _, p := range written {
				fmt.Fprintln(a.stdout, "wrote", p)
			}
			if errors.Is(err, node.ErrCertExists) {
				return &exitCodeError{code: 1, err: err}
			}
			if err != nil {
				return err
			}
			if len(args) > 0 {
				fmt.Fprintf(a.stdout, "node %s: tls.cert_file %s, tls.key_file %s, tls.ca_file %s\n", args[0],
					filepath.Join(cfg.Dir, args[0]+".crt"), filepath.Join(cfg.Dir, args[0]+".key"), filepath.Join(cfg.Dir, node.CACertFile))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "certs", "directory to write into (created 0700)")
	f.StringSliceVar(&cfg.Hosts, "host", nil, "extra DNS name or IP in every node certificate (repeatable)")
	f.BoolVar(&cfg.Client, "client", false, "also write client.crt and client.key for the CLI")
	f.BoolVar(&cfg.Force, "force", false, "replace existing node and client files (the CA is kept)")
	f.IntVar(&days, "days", 825, "validity of the certificates in days")
	return cmd
}
