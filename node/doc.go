// Package node wires one ringkv process together: configuration, the storage
// engine, the ring and gossip, the quorum coordinator and its internal RPC,
// hinted handoff, and the HTTP, Redis-protocol and admin front ends. It is
// the only package that imports the others; only cmd/ringkv imports it.
package node
