package node

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/replica"
)

// Ring inspection reads the other nodes' statistics over the internal RPC
// (replica.KindNodeStats) rather than their HTTP API: the RPC port is
// for peers only, mutually authenticated when TLS is on, and needs no
// client token. Asking over HTTP meant forwarding the operator's token to
// whatever address gossip named, and protected mode refused the call on a
// cluster without tokens.

// statsTimeout bounds one peer's answer during an inspection.
const statsTimeout = time.Second

// encodeNodeStats encodes st for a KindNodeStats answer: msgpack with the
// JSON field names, which fields a newer node adds are skipped by an
// older one.
func encodeNodeStats(st client.NodeStats) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	if err := enc.Encode(st); err != nil {
		return nil, fmt.Errorf("node: encode stats: %w", err)
	}
	if buf.Len() > replica.MaxStatsBytes {
		return nil, fmt.Errorf("node: stats take %d bytes, at most %d", buf.Len(), replica.MaxStatsBytes)
	}
	return buf.Bytes(), nil
}

// decodeNodeStats decodes a peer's answer. Its length is bounded (by the
// RPC layer, and again here); CheckEncoding bounds every length and depth
// inside by the bytes present before the decoder allocates anything.
func decodeNodeStats(b []byte) (client.NodeStats, error) {
	var st client.NodeStats
	if len(b) > replica.MaxStatsBytes {
		return st, fmt.Errorf("node: stats of %d bytes, at most %d", len(b), replica.MaxStatsBytes)
	}
	if err := wire.CheckEncoding(b); err != nil {
		return st, fmt.Errorf("node: stats: %w", err)
	}
	r := bytes.NewReader(b)
	dec := msgpack.NewDecoder(r)
	dec.SetCustomStructTag("json")
	if err := dec.Decode(&st); err != nil {
		return client.NodeStats{}, fmt.Errorf("node: stats: %w", err)
	}
	if r.Len() != 0 {
		return client.NodeStats{}, fmt.Errorf("node: stats: %d trailing bytes", r.Len())
	}
	return st, nil
}

// statsReply answers a peer's KindNodeStats with this node's statistics.
func (a *clusterAdmin) statsReply() (replica.Response, error) {
	b, err := encodeNodeStats(a.LocalStats())
	if err != nil {
		return replica.Response{}, err
	}
	return replica.Response{Stats: b}, nil
}

// remoteStats asks member for its statistics and checks that it answered
// as that member: the transport already checks the name the peer's hello
// (and, with TLS, its certificate) gives, this guards against a peer that
// reports another's numbers as its own.
func (a *clusterAdmin) remoteStats(ctx context.Context, member string) (client.NodeStats, error) {
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	resp, err := a.rpc.Call(ctx, member, replica.Request{Kind: replica.KindNodeStats})
	if err != nil {
		return client.NodeStats{}, err
	}
	st, err := decodeNodeStats(resp.Stats)
	if err != nil {
		return client.NodeStats{}, err
	}
	if st.Node != member {
		return client.NodeStats{}, fmt.Errorf("node %q answered as %q", member, truncateString(st.Node, 64))
	}
	return st, nil
}
