package node

import (
	"context"

	"github.com/ringkv/ringkv/replica"
)

// rpcHandler serves the internal RPC: the coordinator, except that a
// write forwarded to a node not joined yet is refused rather than
// coordinated on a ring that may be only itself (the refusal is a quorum
// error, so the forwarding node answers its client 503), and that the
// node itself answers a peer's ring inspection (KindNodeStats).
type rpcHandler struct{ n *Node }

// rpcHandler returns the node's handler of internal calls.
func (n *Node) rpcHandler() replica.Handler { return rpcHandler{n: n} }

// Handle serves one internal call.
func (h rpcHandler) Handle(ctx context.Context, from string, req replica.Request) (replica.Response, error) {
	n := h.n
	if req.Kind == replica.KindNodeStats {
		return n.admin.statsReply()
	}
	if req.Kind == replica.KindForward && !n.ready.Load() {
		return replica.Response{}, &replica.QuorumError{Op: "forward", Need: 1,
			Failures: map[string]error{n.cfg.Node.Name: errNotJoined}}
	}
	return n.coord.Handle(ctx, from, req)
}
