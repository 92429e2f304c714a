package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringkv/ringkv/node"
)

// defaultNode is the HTTP address of the first "ringkv dev" node, so that
// client commands work out of the box next to a dev cluster.
const defaultNode = "127.0.0.1:8001"

// maxResponseBytes bounds what the CLI reads from a node: the largest value
// (1 MiB by default) base64-encoded in a sibling list, with room to spare.
const maxResponseBytes = 64 << 20

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

// client is a small client of a node's HTTP API (docs/http-api.md).
type client struct {
	base  *url.URL
	hc    *http.Client
	token string // sent as a bearer when not empty
}

func (o *clientOpts) client() (*client, error) {
	c, err := newClient(o.node)
	if err != nil {
		return nil, err
	}
	c.hc.Timeout = o.timeout
	if err := o.tls.apply(o.cmd, c); err != nil {
		return nil, err
	}
	c.token = resolveToken(o.token)
	return c, nil
}

// newClient parses addr, host:port or an http(s) URL.
func newClient(addr string) (*client, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usageError("--node must be host:port or http://host:port, got %q", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &client{base: u, hc: &http.Client{}}, nil
}

// apiError is a non-2xx answer from a node, decoded from its ErrorBody.
type apiError struct {
	Status  int
	Body    node.ErrorBody
	Context string // the X-Ringkv-Context header, set on 404
}

func (e *apiError) Error() string {
	msg := e.Body.Error
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return "not authorised: the node wants a valid token (give --token or set " + tokenEnv + "): " + msg
	case http.StatusForbidden:
		return "refused: " + msg
	}
	if e.Body.Need > 0 && e.Body.Got != nil && !strings.Contains(msg, "need") {
		msg += fmt.Sprintf(" (need %d, got %d)", e.Body.Need, *e.Body.Got)
	}
	if len(e.Body.Failures) > 0 {
		names := make([]string, 0, len(e.Body.Failures))
		for n := range e.Body.Failures {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			// The server's message usually names the failures already.
			if p := n + ": " + e.Body.Failures[n]; !strings.Contains(msg, p) {
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			msg += "; " + strings.Join(parts, "; ")
		}
	}
	return msg
}

// response is a raw answer: status, headers and a bounded body.
type response struct {
	Status  int
	Header  http.Header
	Body    []byte
	Context string
}

// do sends one request and reads the whole (bounded) answer. A transport
// failure names the node so that "connection refused" says where.
func (c *client) do(ctx context.Context, method, path string, query url.Values, header http.Header, body []byte) (*response, error) {
	u := *c.base
	u.RawPath = c.base.Path + path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("bad request path %q: %w", path, err)
	}
	u.Path = p
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", c.base.Host, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("node %s: read answer: %w", c.base.Host, err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("node %s: answer larger than %d bytes", c.base.Host, maxResponseBytes)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data, Context: resp.Header.Get(node.ContextHeader)}, nil
}

// unwrapURLError drops url.Error's "Get "http://...": " prefix, which only
// repeats what the caller already says.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// asError turns a non-success answer into an *apiError.
func (r *response) asError() error {
	e := &apiError{Status: r.Status, Context: r.Context}
	if err := json.Unmarshal(r.Body, &e.Body); err != nil || e.Body.Error == "" {
		// Not one of ours (a proxy, or a route that does not exist):
		// show the start of what came back.
		text := strings.TrimSpace(string(r.Body))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		e.Body = node.ErrorBody{Error: fmt.Sprintf("HTTP %d %s", r.Status, http.StatusText(r.Status))}
		if text != "" {
			e.Body.Error += ": " + text
		}
	}
	return e
}

// getJSON fetches path and decodes a 200 answer into out.
func (c *client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	r, err := c.do(ctx, http.MethodGet, path, query, nil, nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return r.asError()
	}
	if err := json.Unmarshal(r.Body, out); err != nil {
		return fmt.Errorf("node %s: decode %s: %w", c.base.Host, path, err)
	}
	return nil
}

// postJSON posts an empty body to path and decodes the OKBody answer.
func (c *client) postOK(ctx context.Context, path string) (node.OKBody, error) {
	r, err := c.do(ctx, http.MethodPost, path, nil, nil, nil)
	if err != nil {
		return node.OKBody{}, err
	}
	if r.Status/100 != 2 {
		return node.OKBody{}, r.asError()
	}
	var ok node.OKBody
	if len(bytes.TrimSpace(r.Body)) > 0 {
		if err := json.Unmarshal(r.Body, &ok); err != nil {
			return node.OKBody{}, fmt.Errorf("node %s: decode %s: %w", c.base.Host, path, err)
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

// kvPath is the route of one key; the key is path-escaped so that any bytes,
// "/" included, reach the server intact.
func kvPath(key string) string {
	return "/v1/kv/" + url.PathEscape(key)
}

// quorumQuery builds ?r= / ?w=, leaving out what the user did not set so
// that the node's configured default applies.
func quorumQuery(name, value string) url.Values {
	q := url.Values{}
	if value != "" {
		q.Set(name, value)
	}
	return q
}

// put writes value under key. The result holds the new context and, when
// concurrent versions remain (a 300 answer), every live sibling.
func (c *client) put(ctx context.Context, key string, value []byte, w, causal string) (getResult, error) {
	return c.write(ctx, http.MethodPut, key, value, w, causal)
}

// del writes a tombstone for key; its result is put's.
func (c *client) del(ctx context.Context, key, w, causal string) (getResult, error) {
	return c.write(ctx, http.MethodDelete, key, nil, w, causal)
}

func (c *client) write(ctx context.Context, method, key string, value []byte, w, causal string) (getResult, error) {
	h := http.Header{}
	if causal != "" {
		h.Set(node.ContextHeader, causal)
	}
	if method == http.MethodPut && value == nil {
		value = []byte{}
	}
	r, err := c.do(ctx, method, kvPath(key), quorumQuery("w", w), h, value)
	if err != nil {
		return getResult{}, err
	}
	if r.Status == http.StatusMultipleChoices {
		return c.siblings(r)
	}
	if r.Status/100 != 2 {
		return getResult{}, r.asError()
	}
	return getResult{Context: r.Context}, nil
}

// getResult is what a read found: one value, siblings, or nothing.
type getResult struct {
	Found    bool               `json:"found"`
	Value    []byte             `json:"value,omitempty"`
	Siblings []node.SiblingJSON `json:"siblings,omitempty"`
	Context  string             `json:"context,omitempty"`
}

// get reads key. A 404 is not an error here: it is a result with Found
// false and, after a delete, the tombstone's context.
func (c *client) get(ctx context.Context, key, r string) (getResult, error) {
	resp, err := c.do(ctx, http.MethodGet, kvPath(key), quorumQuery("r", r), nil, nil)
	if err != nil {
		return getResult{}, err
	}
	switch resp.Status {
	case http.StatusOK:
		return getResult{Found: true, Value: resp.Body, Context: resp.Context}, nil
	case http.StatusMultipleChoices:
		return c.siblings(resp)
	case http.StatusNotFound:
		return getResult{Found: false, Context: resp.Context}, nil
	default:
		return getResult{}, resp.asError()
	}
}

// siblings decodes a 300 answer, to a read or a write: every live version
// and the context that covers them, from the body, else the header.
func (c *client) siblings(r *response) (getResult, error) {
	var sb node.SiblingsBody
	if err := json.Unmarshal(r.Body, &sb); err != nil {
		return getResult{}, fmt.Errorf("node %s: decode siblings: %w", c.base.Host, err)
	}
	ctxt := sb.Context
	if ctxt == "" {
		ctxt = r.Context
	}
	return getResult{Found: true, Siblings: sb.Siblings, Context: ctxt}, nil
}
