package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/ringkv/ringkv/internal/httpclient"
)

// DefaultMaxResponseBytes bounds what the client reads from a node. It fits
// the largest answer a node gives with its default limits: a sibling list
// of max_siblings (100) values of max_value_bytes (1 MiB) each, base64
// encoded (100 x 1398104 bytes, about 133 MiB), with room for the JSON and
// the context. A node with higher limits needs Config.MaxResponseBytes.
const DefaultMaxResponseBytes = 160 << 20

// maxNodes bounds Config.Nodes: each failed attempt costs a round trip.
const maxNodes = 64

// Config says which nodes a Client talks to and how.
type Config struct {
	// Nodes are HTTP addresses of cluster nodes, host:port or
	// http(s)://host:port[/prefix], tried in this order. At least one.
	Nodes []string
	// TLS, when not nil, makes every node be reached over HTTPS with this
	// configuration (CA to verify the node, client certificate); with
	// an HTTPClient whose Transport is set, that Transport must carry it.
	// An https:// address without TLS uses the system's roots.
	TLS *tls.Config
	// Token, when not empty, is sent as a bearer token on every request
	// (nodes with auth.tokens require one).
	Token string
	// HTTPClient, when not nil, sends the requests (its Timeout bounds each
	// attempt). Nil: a client of its own, without a timeout: deadlines come
	// from each call's context. The Client uses a copy that never follows
	// redirects: a 3xx other than 300 (siblings) is an error naming its
	// Location.
	HTTPClient *http.Client
	// MaxResponseBytes bounds an answer's body; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Client talks to a ringkv cluster. It is safe for concurrent use.
type Client struct {
	nodes    []*url.URL
	hc       *http.Client
	token    string
	maxBytes int64
}

// New checks cfg and returns a Client. It does not contact any node.
func New(cfg Config) (*Client, error) {
	if len(cfg.Nodes) == 0 {
		return nil, errors.New("client: no node address given")
	}
	if len(cfg.Nodes) > maxNodes {
		return nil, fmt.Errorf("client: %d node addresses, at most %d", len(cfg.Nodes), maxNodes)
	}
	c := &Client{token: cfg.Token, maxBytes: cfg.MaxResponseBytes}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxResponseBytes
	}
	c.hc = noRedirects(cfg.HTTPClient)
	if c.hc.Transport == nil && cfg.TLS != nil {
		c.hc.Transport = tlsTransport(cfg.TLS)
	}
	for _, addr := range cfg.Nodes {
		u, err := ParseNode(addr)
		if err != nil {
			return nil, err
		}
		if cfg.TLS != nil {
			u.Scheme = "https"
		}
		c.nodes = append(c.nodes, u)
	}
	return c, nil
}

// noRedirects returns a shallow copy of hc (a new client when nil) that
// never follows a redirect. Go would follow a 301 or 302 to a PUT or DELETE
// as a GET, whose 200 would then read as a write done, and a 307 or 308
// would send the body, and the token, to wherever Location points. The
// caller's client is left as it was.
func noRedirects(hc *http.Client) *http.Client {
	out := &http.Client{}
	if hc != nil {
		c := *hc
		out = &c
	}
	out.CheckRedirect = httpclient.NoRedirect
	return out
}

// maxIdlePerHost lets a Client shared by many goroutines keep its
// connections instead of redialling (net/http's default is 2).
const maxIdlePerHost = 64

// tlsTransport is http.DefaultTransport, with its dial, handshake and idle
// timeouts and HTTP/2, speaking TLS with cfg (cloned).
func tlsTransport(cfg *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg.Clone()
	t.MaxIdleConnsPerHost = maxIdlePerHost
	t.ForceAttemptHTTP2 = true
	return t
}

// ParseNode parses a node address, host:port or an http(s) URL, as New
// does.
func ParseNode(addr string) (*url.URL, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("client: node address must be host:port or http://host:port, got %q", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u, nil
}

// Nodes returns the nodes' base URLs, in the order they are tried.
func (c *Client) Nodes() []string {
	out := make([]string, len(c.nodes))
	for i, u := range c.nodes {
		out[i] = u.String()
	}
	return out
}

// response is a raw answer: status, headers and a bounded body.
type response struct {
	node   string // host:port of the node that answered
	status int
	header http.Header
	body   []byte
}

// ctx is the answer's causal context (X-Ringkv-Context), if any.
func (r *response) ctx() string { return r.header.Get(ContextHeader) }

// request is one HTTP request as the client retries it.
type request struct {
	method string
	path   string // escaped path below the node's base
	query  url.Values
	header http.Header
	body   []byte
	// one keeps the request on the first node: it is about that node
	// (its statistics, its leaving), not about the cluster.
	one bool
}

// do sends req to the first node and, while an attempt failed without
// anything being done, to the next ones (only the first for a request
// meant for that node: req.one). It returns the first answer that counts;
// when every node refused with a 503 that did nothing, the last one; else
// the last failure.
func (c *Client) do(ctx context.Context, req request) (*response, error) {
	nodes := c.nodes
	if req.one {
		nodes = nodes[:1]
	}
	var refused *response
	var lastErr error
	for _, base := range nodes {
		r, err := c.send(ctx, base, req)
		switch {
		case err == nil && !nothingDone(r):
			return r, nil
		case err == nil:
			refused = r
			continue
		case ctx.Err() != nil, !retryable(req.method, err):
			return nil, err
		}
		lastErr = err
	}
	if refused != nil {
		return refused, nil
	}
	return nil, lastErr
}

// nothingDone reports a 503 given before anything was asked or written:
// the node has not joined its cluster, or it knows too few replicas are up.
// Another node may serve the request, and sending it again is safe.
func nothingDone(r *response) bool {
	if r.status != http.StatusServiceUnavailable {
		return false
	}
	var b ErrorBody
	if json.Unmarshal(r.body, &b) != nil {
		return false
	}
	return b.Unavailable || strings.HasPrefix(b.Error, "not joined yet")
}

// retryable reports whether a failed attempt may go to another node: a
// connection that was never made sent nothing, and a read can always be
// asked again.
func retryable(method string, err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return method == http.MethodGet
}

// send makes one attempt on one node. A transport failure names the node,
// so that "connection refused" says where.
func (c *Client) send(ctx context.Context, base *url.URL, req request) (*response, error) {
	u := *base
	// The base's escaped form: its decoded Path would lose a %2F and fail
	// to unescape a %25.
	u.RawPath = base.EscapedPath() + req.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("client: bad request path %q: %w", req.path, err)
	}
	u.Path = p
	u.RawQuery = req.query.Encode()
	var rd io.Reader
	if req.body != nil {
		rd = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("client: build request: %w", err)
	}
	for k, vs := range req.header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", base.Host, httpclient.URLCause(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("node %s: read answer: %w", base.Host, err)
	}
	if int64(len(data)) > c.maxBytes {
		return nil, fmt.Errorf("node %s: answer larger than %d bytes (Config.MaxResponseBytes)", base.Host, c.maxBytes)
	}
	if resp.StatusCode/100 == 3 && resp.StatusCode != http.StatusMultipleChoices {
		return nil, fmt.Errorf("node %s: answered %d %s to %s (Location %q): the client does not follow redirects; give the address that serves the API",
			base.Host, resp.StatusCode, http.StatusText(resp.StatusCode), req.path, resp.Header.Get("Location"))
	}
	return &response{node: base.Host, status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// getJSON fetches path and decodes a 200 answer into out.
func (c *Client) getJSON(ctx context.Context, req request, out any) error {
	req.method = http.MethodGet
	path := req.path
	r, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return r.asError()
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		return fmt.Errorf("node %s: decode %s: %w", r.node, path, err)
	}
	return nil
}

// postOK posts an empty body to path and decodes the OKBody answer.
func (c *Client) postOK(ctx context.Context, req request) (OKBody, error) {
	path := req.path
	r, err := c.do(ctx, req)
	if err != nil {
		return OKBody{}, err
	}
	if r.status/100 != 2 {
		return OKBody{}, r.asError()
	}
	var ok OKBody
	if len(bytes.TrimSpace(r.body)) > 0 {
		if err := json.Unmarshal(r.body, &ok); err != nil {
			return OKBody{}, fmt.Errorf("node %s: decode %s: %w", r.node, path, err)
		}
	} else {
		ok.OK = true
	}
	if !ok.OK {
		msg := ok.Message
		if msg == "" {
			msg = "node answered ok=false"
		}
		return ok, errors.New(msg)
	}
	return ok, nil
}
