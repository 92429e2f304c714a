// Package client is the Go client of a ringkv cluster's HTTP API.
//
// A Client holds the HTTP addresses of one or more nodes. Every request
// goes to the first node; when that node cannot be reached, or answers 503
// before it asked or wrote anything (it has not joined its cluster yet, or
// it knows too few replicas are up), the request moves on to the next node,
// so any node of a cluster can serve any request.
//
// Reads return a Result: one value, or siblings (concurrent versions) and
// the causal context that covers them. Passing that context back on Put or
// Delete (WithCausal) supersedes exactly what it covers: this is how a
// read-modify-write stays safe against concurrent writers, and how
// siblings are resolved. A Put without a context is a blind write that
// supersedes whatever the coordinating node holds.
//
// R and W are per request (R, W) and default to the node's configured
// quorums. Deadlines and cancellation come from the context.Context of
// each call. Config.TLS and Config.Token reach nodes that serve HTTPS and
// require a bearer token.
//
// The client never follows a redirect: a PUT or DELETE redirected would be
// sent again as a GET, or with its body and token to another host. A 3xx
// answer other than 300 (siblings) is an error that names its Location;
// give the address that serves the API. A 404 is a missing key only when it
// is a node's answer on the key route; any other 404 (a wrong prefix, the
// admin listener, a proxy) is an error.
//
// The types in api.go are the wire format of the HTTP API: the server
// writes them and this package reads them.
package client
