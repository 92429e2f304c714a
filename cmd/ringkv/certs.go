package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringkv/ringkv/node"
)

func (a *app) certsCmd() *cobra.Command {
	var (
		cfg   node.CertsConfig
		days  int
		hosts []string
	)
	cmd := &cobra.Command{
		Use:   "certs [flags] NODE...",
		Short: "Write a cluster CA and a TLS certificate per node",
		Long: `Write into --dir a cluster CA (ca.crt, ca.key) and, signed by it, a key and
certificate per NODE (NODE.crt, NODE.key) for the tls.* config keys, usable
both as server and as client certificate. Each node certificate names the
node, localhost, 127.0.0.1, ::1 and its --host values: peers check the node
name on the internal RPC, clients check the host they dial.

--host NODE=HOST adds a DNS name or IP address to NODE's certificate only;
a bare --host HOST is allowed when one NODE is issued. A node name may not
be localhost, an IP address, or a name another node's certificate carries,
and a host may not be another node's name: peers would take that node's
certificate for the named one.

With --client it also writes client.crt and client.key for the CLI.

An existing ca.crt and ca.key in --dir are reused, so nodes added later
join the same CA. A new CA is valid 10 years; --days is the node and client
certificates' validity, cut short to the CA's expiry. Other existing files
are left alone and the command fails, unless --force (which does not revoke
the replaced certificate: only a new CA does). Keys are ECDSA P-256; files
are written 0600 and a new directory 0700. Keep ca.key off the nodes: only
"ringkv certs" needs it.

  ringkv certs --dir certs n1 n2 n3
  ringkv certs --dir certs --host n1=db1.example.com --host n1=10.0.0.11 n1 n2
  ringkv certs --dir certs --host db2.example.com n2`,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			cfg.Nodes = args
			if len(args) == 0 && !cfg.Client {
				return usageError("certs takes at least one NODE name (or --client); see %q", cmd.CommandPath()+" --help")
			}
			if days < 1 {
				return usageError("--days must be at least 1, got %d", days)
			}
			cfg.Validity = time.Duration(days) * 24 * time.Hour
			if cfg.Hosts, err = parseCertHosts(hosts, args); err != nil {
				return err
			}
			cfg.Waiting = func(lock string) {
				fmt.Fprintf(a.stderr, "waiting for another ringkv certs run to release %s\n", lock)
			}
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
			if ca, err := node.ReadCertFile(filepath.Join(cfg.Dir, node.CACertFile)); err == nil && time.Until(ca.NotAfter) < cfg.Validity {
				fmt.Fprintf(a.stdout, "note: the certificates expire with the CA on %s, before --days %d\n", ca.NotAfter.UTC().Format(time.DateOnly), days)
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
	f.StringArrayVar(&hosts, "host", nil, "NODE=HOST: an extra DNS name or IP in NODE's certificate; plain HOST with a single NODE (repeatable)")
	f.BoolVar(&cfg.Client, "client", false, "also write client.crt and client.key for the CLI")
	f.BoolVar(&cfg.Force, "force", false, "replace existing node and client files (the CA is kept)")
	f.IntVar(&days, "days", 825, "validity of the node and client certificates in days (at most the CA's)")
	return cmd
}

// parseCertHosts turns --host values into hosts by node: NODE=HOST, or a
// bare HOST when exactly one node is issued. A host never contains "=",
// which DNS names and IP addresses cannot.
func parseCertHosts(hosts, nodes []string) (map[string][]string, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	for _, h := range hosts {
		n, host, ok := strings.Cut(h, "=")
		if !ok {
			if len(nodes) != 1 {
				return nil, usageError("--host %s: say which node it is for (--host NODE=%s) when issuing %d nodes", h, h, len(nodes))
			}
			n, host = nodes[0], h
		}
		if n == "" || host == "" {
			return nil, usageError("--host %q: want NODE=HOST", h)
		}
		out[n] = append(out[n], host)
	}
	return out, nil
}
