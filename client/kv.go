package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Quorum is how many replicas must answer a read (R) or acknowledge a
// write (W): One, Quorum, All, or N(count).
type Quorum string

// The named quorums; the empty Quorum means the node's configured default.
const (
	One      Quorum = "one"
	Majority Quorum = "quorum"
	All      Quorum = "all"
)

// N is a quorum of exactly n replicas (1..the replication factor).
func N(n int) Quorum { return Quorum(strconv.Itoa(n)) }

// Result is what a read found, or what a write left: one value, siblings,
// or nothing.
type Result struct {
	// Found is false for a key that does not exist or was deleted.
	Found bool `json:"found"`
	// Value is the value when there is exactly one live version.
	Value []byte `json:"value,omitempty"`
	// Siblings are the concurrent live versions, when there are more than
	// one (a write answers them too when it left others beside it).
	Siblings []Sibling `json:"siblings,omitempty"`
	// Context is the opaque causal context: pass it to a later Put or
	// Delete (WithCausal) to supersede exactly what this result showed.
	// After a delete or for a deleted key it covers the tombstone.
	Context string `json:"context,omitempty"`
}

// Option sets a per-request parameter.
type Option func(*options)

type options struct {
	r, w   Quorum
	causal string
}

// R sets the read quorum of a Get.
func R(q Quorum) Option { return func(o *options) { o.r = q } }

// W sets the write quorum of a Put or Delete.
func W(q Quorum) Option { return func(o *options) { o.w = q } }

// WithCausal passes the causal context of an earlier Result: the write
// supersedes exactly the versions it covers.
func WithCausal(context string) Option { return func(o *options) { o.causal = context } }

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// errEmptyKey refuses an empty key before a round trip: no node takes one.
var errEmptyKey = errors.New("client: empty key")

// kvPath is the route of one key; the key is path-escaped so that any
// bytes, "/" included, reach the server intact.
func kvPath(key string) string { return "/v1/kv/" + url.PathEscape(key) }

// quorumQuery builds ?r= / ?w=, leaving out what is not set so that the
// node's configured default applies.
func quorumQuery(name string, q Quorum) url.Values {
	v := url.Values{}
	if q != "" {
		v.Set(name, string(q))
	}
	return v
}

// Get reads key at R replicas. A missing or deleted key is not an error:
// its Result has Found false.
func (c *Client) Get(ctx context.Context, key string, opts ...Option) (Result, error) {
	if key == "" {
		return Result{}, errEmptyKey
	}
	o := collect(opts)
	r, err := c.do(ctx, request{method: http.MethodGet, path: kvPath(key), query: quorumQuery("r", o.r)})
	if err != nil {
		return Result{}, err
	}
	switch r.status {
	case http.StatusOK:
		return Result{Found: true, Value: r.body, Context: r.ctx()}, nil
	case http.StatusMultipleChoices:
		return r.siblings()
	case http.StatusNotFound:
		if !r.keyNotFound() {
			return Result{}, r.asError()
		}
		return Result{Context: r.ctx()}, nil
	default:
		return Result{}, r.asError()
	}
}

// keyNotFound reports a 404 that a node gave for a missing key: the node
// sets the context header on every answer of the key route, and its body
// is the ErrorBody "not found". Any other 404 (a wrong base path, the admin
// listener, a proxy) would make a read-modify-write write blind.
func (r *response) keyNotFound() bool {
	if _, ok := r.header[ContextHeader]; ok {
		return true
	}
	var b ErrorBody
	return json.Unmarshal(r.body, &b) == nil && b.Error == "not found"
}

// Put writes value under key and returns once W replicas acknowledged it.
// The Result holds the new context and, when concurrent versions remain,
// every live sibling.
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...Option) (Result, error) {
	if value == nil {
		value = []byte{}
	}
	return c.write(ctx, http.MethodPut, key, value, collect(opts))
}

// Delete writes a tombstone for key. Without a causal context the node
// first reads the key and removes every value that read returns.
func (c *Client) Delete(ctx context.Context, key string, opts ...Option) (Result, error) {
	return c.write(ctx, http.MethodDelete, key, nil, collect(opts))
}

func (c *Client) write(ctx context.Context, method, key string, value []byte, o options) (Result, error) {
	if key == "" {
		return Result{}, errEmptyKey
	}
	h := http.Header{}
	if o.causal != "" {
		h.Set(ContextHeader, o.causal)
	}
	r, err := c.do(ctx, request{method: method, path: kvPath(key), query: quorumQuery("w", o.w), header: h, body: value})
	if err != nil {
		return Result{}, err
	}
	if r.status == http.StatusMultipleChoices {
		return r.siblings()
	}
	if r.status/100 != 2 {
		return Result{}, r.asError()
	}
	return Result{Found: method == http.MethodPut, Context: r.ctx()}, nil
}

// siblings decodes a 300 answer, to a read or a write: every live version
// and the context that covers them, from the body, else the header.
func (r *response) siblings() (Result, error) {
	var sb SiblingsBody
	if err := json.Unmarshal(r.body, &sb); err != nil {
		return Result{}, fmt.Errorf("node %s: decode siblings: %w", r.node, err)
	}
	ctxt := sb.Context
	if ctxt == "" {
		ctxt = r.ctx()
	}
	return Result{Found: true, Siblings: sb.Siblings, Context: ctxt}, nil
}
