// Package e2e holds end-to-end tests that build the real ringkv binary once
// and drive a cluster of "ringkv server" processes on 127.0.0.1 over HTTP,
// the Redis protocol and the CLI, as a user would. It imports none of
// ringkv's packages: everything it knows about the system comes over the
// wire, so it checks the documented interfaces and nothing else.
package e2e
