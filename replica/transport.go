package replica

import "context"

// Transport sends internal calls to other nodes. Implementations are safe
// for concurrent use and multiplex many calls at once. Call blocks until
// the peer answers, the call fails, or ctx ends; the ctx deadline travels
// with the call so the peer's handler stops waiting at the same time. The
// request's slices may be retained until Call returns and are not modified;
// the response belongs to the caller. A peer's handler error comes back as
// a *QuorumError or *RemoteError (errors.Is matches the peer's sentinel);
// transport failures wrap ErrUnknownPeer, ErrUnreachable, ErrConnLost,
// ErrFrameTooLarge, ErrProtocol, ErrClosed or the ctx error.
type Transport interface {
	Call(ctx context.Context, to string, req Request) (Response, error)
}

// AsyncCaller is an optional Transport extension (type-asserted by the
// coordinator; the TCP transport has it): Call without a goroutine
// waiting for the answer. Go sends req to node to and returns (it may
// block while a connection is dialed or the frame written, as Call does,
// but never for the answer); done is
// called exactly once, with what Call would have returned, when the answer
// arrives, the call fails or ctx ends: possibly before Go returns, else
// from the transport's own goroutine, so done must not block. A
// coordinator fanning a write out to N-1 replicas then needs no goroutine
// (and no stack growth) per replica. The request's slices may be retained
// until done is called.
type AsyncCaller interface {
	Go(ctx context.Context, to string, req Request, done func(Response, error))
}

// TransportFunc adapts a function to Transport.
type TransportFunc func(ctx context.Context, to string, req Request) (Response, error)

// Call calls f.
func (f TransportFunc) Call(ctx context.Context, to string, req Request) (Response, error) {
	return f(ctx, to, req)
}

// Handler serves internal calls on the receiving node (the Coordinator is
// one). It is called concurrently; ctx carries the caller's deadline. The
// request belongs to the handler; the response is not retained by the
// transport after it is encoded.
type Handler interface {
	Handle(ctx context.Context, from string, req Request) (Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, from string, req Request) (Response, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, from string, req Request) (Response, error) {
	return f(ctx, from, req)
}

var (
	_ Transport = TransportFunc(nil)
	_ Handler   = HandlerFunc(nil)
)
