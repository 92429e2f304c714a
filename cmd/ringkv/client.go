package main

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringkv/ringkv/client"
)

// defaultNode is the HTTP address of the first "ringkv dev" node, so that
// client commands work out of the box next to a dev cluster.
const defaultNode = "127.0.0.1:8001"

// maxStdinBytes bounds the value "put KEY -" reads from stdin, so that a
// runaway pipe cannot exhaust memory.
const maxStdinBytes = 64 << 20

// tokenEnv is the environment variable a client command takes its token
// from when --token is not given; it keeps the token out of shell history
// and process listings.
const tokenEnv = "RINGKV_TOKEN"

// clientOpts are the flags every command that talks to a node shares.
type clientOpts struct {
	node    string
	json    bool
	timeout time.Duration
	tls     clientTLS
	cmd     *cobra.Command
	token   string
}

func (o *clientOpts) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.node, "node", defaultNode, "HTTP address of any node (host:port, http://host:port or https://host:port)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON for scripts instead of human-readable text")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "give up on the node after this long")
	o.tls.addFlags(cmd)
	o.cmd = cmd
	addTokenFlag(cmd, &o.token)
}

// addTokenFlag declares --token. Its default is not shown in --help, so
// that the help never prints a token taken from the environment.
func addTokenFlag(cmd *cobra.Command, token *string) {
	cmd.Flags().StringVar(token, "token", "", "bearer token for nodes with auth.tokens (default: $"+tokenEnv+")")
}

// resolveToken is --token, or else $RINGKV_TOKEN.
func resolveToken(flag string) string {
	if flag != "" {
		return flag
	}
	return strings.TrimSpace(os.Getenv(tokenEnv))
}

// client connects to --node with the TLS options and the token; the
// public client package does the rest (docs/http-api.md). --timeout bounds
// each request to the node.
func (o *clientOpts) client() (*client.Client, error) {
	u, err := client.ParseNode(o.node)
	if err != nil {
		return nil, usageError("--node must be host:port or http://host:port, got %q", o.node)
	}
	tlsCfg, err := o.tls.clientConfig(o.cmd, u.Scheme == "https")
	if err != nil {
		return nil, err
	}
	// No Transport: the client package builds one for TLS (with the
	// default transport's timeouts), and its copy of this client never
	// follows a redirect. The answer bound is the package's default, which
	// fits a key's largest sibling list.
	hc := &http.Client{Timeout: o.timeout}
	return client.New(client.Config{Nodes: []string{o.node}, TLS: tlsCfg, Token: resolveToken(o.token), HTTPClient: hc})
}

// tokenHint is printed under an error that says the node wants a token.
func tokenHint(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == http.StatusUnauthorized {
		return "give --token or set " + tokenEnv
	}
	return ""
}
