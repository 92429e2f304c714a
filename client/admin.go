package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Members lists every node the answering node's gossip knows, sorted by
// name, with liveness, ring status and the hints it holds for each.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var ms []Member
	err := c.getJSON(ctx, request{path: "/v1/members"}, &ms)
	return ms, err
}

// Ring inspects the serving ring: per node, partitions owned and
// replicated, shares, keys and bytes; the plan and transfer progress.
func (c *Client) Ring(ctx context.Context) (Ring, error) {
	var r Ring
	err := c.getJSON(ctx, request{path: "/v1/ring"}, &r)
	return r, err
}

// Placement returns key's partition, replicas and fallbacks.
func (c *Client) Placement(ctx context.Context, key string) (KeyPlacement, error) {
	var kp KeyPlacement
	err := c.getJSON(ctx, request{path: "/v1/ring", query: url.Values{"key": {key}}}, &kp)
	return kp, err
}

// WhatIf reports what would move if node were added (op "add") or removed
// (op "remove"), without changing anything.
func (c *Client) WhatIf(ctx context.Context, op, node string) (WhatIf, error) {
	if op != "add" && op != "remove" {
		return WhatIf{}, fmt.Errorf("client: what-if operation must be add or remove, got %q", op)
	}
	var w WhatIf
	err := c.getJSON(ctx, request{path: "/v1/ring", query: url.Values{"what_if": {op + ":" + node}}}, &w)
	return w, err
}

// WhatIfAddZone is WhatIf for adding node in zone: the members keep their
// zones, and the answer's Zone names the added node's.
func (c *Client) WhatIfAddZone(ctx context.Context, node, zone string) (WhatIf, error) {
	var w WhatIf
	q := url.Values{"what_if": {"add:" + node}, "zone": {zone}}
	err := c.getJSON(ctx, request{path: "/v1/ring", query: q}, &w)
	return w, err
}

// Partitions returns every partition's replicas on the serving ring,
// owner first.
func (c *Client) Partitions(ctx context.Context) (Partitions, error) {
	var p Partitions
	err := c.getJSON(ctx, request{path: "/v1/ring/partitions"}, &p)
	return p, err
}

// Versions reads key at R replicas like Get, and returns where it lives
// and every version the read found, tombstones included, with their dots
// and wall times.
func (c *Client) Versions(ctx context.Context, key string, opts ...Option) (Versions, error) {
	o := collect(opts)
	q := quorumQuery("r", o.r)
	q.Set("key", key)
	var v Versions
	err := c.getJSON(ctx, request{path: "/v1/versions", query: q}, &v)
	return v, err
}

// WhoAmI returns what the client's token may do on the first node: its
// role (none, read, read-write or admin) and name.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var w WhoAmI
	err := c.getJSON(ctx, request{path: "/v1/whoami", one: true}, &w)
	return w, err
}

// Stats returns what the first node holds, its plan and its totals.
func (c *Client) Stats(ctx context.Context) (NodeStats, error) {
	var s NodeStats
	err := c.getJSON(ctx, request{path: "/v1/stats", one: true}, &s)
	return s, err
}

// AAE returns the first node's anti-entropy state per partition it
// replicates (empty when anti-entropy is off).
func (c *Client) AAE(ctx context.Context) ([]AAEPartition, error) {
	var st []AAEPartition
	err := c.getJSON(ctx, request{path: "/v1/aae", one: true}, &st)
	return st, err
}

// Leave makes the first node hand its partitions to their new replicas,
// leave the ring and stop. It returns once the node accepted; the node's
// ring view (Ring) shows progress until it stops answering.
func (c *Client) Leave(ctx context.Context) (OKBody, error) {
	return c.postOK(ctx, request{method: http.MethodPost, path: "/v1/leave", one: true})
}

// Remove takes node, a member that is gone for good, out of the ring: the
// surviving replicas copy its partitions to the new ones.
func (c *Client) Remove(ctx context.Context, node string) (OKBody, error) {
	return c.postOK(ctx, request{method: http.MethodPost, path: "/v1/remove/" + url.PathEscape(node)})
}

// SetTransferRate sets the first node's partition-transfer rate limit in
// MB/s (0 removes it) until it restarts.
func (c *Client) SetTransferRate(ctx context.Context, mb float64) (OKBody, error) {
	q := url.Values{"mb": {strconv.FormatFloat(mb, 'g', -1, 64)}}
	return c.postOK(ctx, request{method: http.MethodPut, path: "/v1/transfer/rate", query: q, one: true})
}
