package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringkv/ringkv/internal/httpclient"
)

// healthBodyBytes bounds what "ringkv health" reads and prints of a probe's
// answer: /healthz and /readyz answer a line or a short JSON body.
const healthBodyBytes = 4 << 10

// healthCmd probes a URL once, for container health checks in images that
// have no shell and no curl (the ringkv image is FROM scratch).
func (a *app) healthCmd() *cobra.Command {
	var (
		rawURL  string
		timeout time.Duration
		quiet   bool
		tlsOpts clientTLS
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Probe a node's /readyz or /healthz once: exit 0 on a 2xx answer, 1 otherwise",
		Long: `Send one GET to --url and exit 0 if it answers 2xx within --timeout, 1 if it
answers anything else or cannot be reached. For health checks where no shell or
curl is at hand, such as the ringkv container image:

  ringkv health --url http://127.0.0.1:8001/readyz

An https:// URL (or any --tls-* flag) talks HTTPS and verifies the node with
the CA given by --tls-ca or --tls-dir. The probes need no token.`,
		Args: exactArgs(0, "no arguments (the address is --url)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := healthClient(cmd, rawURL, timeout, &tlsOpts)
			if err != nil {
				return err
			}
			return a.probe(cmd, c, quiet)
		},
	}
	cmd.Flags().StringVar(&rawURL, "url", "http://127.0.0.1:8001/readyz", "URL to GET: a node's /readyz (serving clients) or /healthz (process up)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "fail when no answer came within this long")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "print nothing on success")
	tlsOpts.addFlags(cmd)
	return cmd
}

// healthProbe is the one request "ringkv health" sends: its URL and the
// HTTP client (timeout, TLS) that sends it.
type healthProbe struct {
	base *url.URL
	hc   *http.Client
}

// healthClient checks the probe's flags and builds its client: the URL
// must be an absolute http(s) URL with a host. Any TLS option makes it
// HTTPS.
func healthClient(cmd *cobra.Command, rawURL string, timeout time.Duration, tlsOpts *clientTLS) (*healthProbe, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usageError("--url must be an http:// or https:// URL with a host, got %q", rawURL)
	}
	if timeout <= 0 {
		return nil, usageError("--timeout must be positive, got %s", timeout)
	}
	// A redirect is an answer, not a way to another host: a probe that
	// followed one could report another service's health, or carry a token
	// there.
	c := &healthProbe{base: u, hc: &http.Client{Timeout: timeout, CheckRedirect: httpclient.NoRedirect}}
	cfg, err := tlsOpts.clientConfig(cmd, u.Scheme == "https")
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		c.base.Scheme = "https"
		c.hc.Transport = &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}
	}
	return c, nil
}

// probe sends the GET and turns its answer into the exit code. The first
// line of the body is printed either way, so that a failing health check
// in "docker inspect" says why (readyz: "not joined yet ...").
func (a *app) probe(cmd *cobra.Command, c *healthProbe, quiet bool) error {
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, c.base.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", c.base.Redacted(), httpclient.URLCause(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, healthBodyBytes))
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s: %s", c.base.Redacted(), resp.Status, line)
	}
	if quiet {
		return nil
	}
	_, err = fmt.Fprintf(a.stdout, "%s %s\n", resp.Status, line)
	return err
}
