package replica

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"time"
)

// helloTimeout bounds how long an accepted connection may take to
// introduce itself.
const helloTimeout = 5 * time.Second

// replyWriteGrace is how long past a call's deadline its answer may take
// to write before the connection is given up as stalled.
const replyWriteGrace = time.Second

// Serve accepts internal RPC connections on ln and answers their calls
// with h, each call under the caller's deadline. It returns nil when ln is
// closed or the transport is closed, and any other accept error.
func (t *TCPTransport) Serve(ln net.Listener, h Handler) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = ln.Close() // closed transport: refuse to serve, as Close would have
		return nil
	}
	t.lns[ln] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.lns, ln)
		t.mu.Unlock()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			t.mu.Lock()
			closed := t.closed
			t.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("replica: accept: %w", err)
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = nc.Close()
			return nil
		}
		t.served[nc] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveConn(nc, h)
	}
}

// serverConn is the write side of one accepted connection.
type serverConn struct {
	nc net.Conn
	bw *bufio.Writer // the hello's, before any call; then fw's
	// fw writes the responses, many per syscall; a failed write closes nc.
	fw *frameWriter
}

// serveConn reads the hello and answers it, then reads requests, running
// each on a worker goroutine (callWorkers; at most MaxInFlight at once) and writing
// responses as they finish, in any order. Each request frame holds its
// length in the transport's and the connection's byte budgets from the
// moment its length is read until its call is answered.
func (t *TCPTransport) serveConn(raw net.Conn, h Handler) {
	var (
		sc   *serverConn
		from string
		conn = newByteBudget(t.cfg.MaxConnBufferedBytes)
		sem  = make(chan struct{}, t.cfg.MaxInFlight)
	)
	workers := newCallWorkers(t.cfg.MaxInFlight, idleWorkersKept, func(c servedCall) {
		defer func() { <-sem }()
		defer t.unreserve(conn, c.n)
		defer func() {
			// A panic outside the handler (encoding or writing the
			// reply) may have left half a frame: the connection goes.
			if v := recover(); v != nil {
				_ = t.callPanicked("rpc call", v, from)
				_ = raw.Close()
			}
		}()
		t.serveCall(sc, from, h, &c)
	})
	defer func() {
		_ = raw.Close() // ends the connection; nothing to report
		workers.stop()  // waits for the calls running
		t.mu.Lock()
		delete(t.served, raw)
		t.mu.Unlock()
		t.wg.Done()
	}()
	// A panic ends this connection only (the deferred close above), after
	// it is logged and counted. It names the remote address until the
	// hello names the peer: the deferred call holds this slice, not a
	// copy, so overwriting its elements changes what a panic logs.
	panicAttrs := []any{"listener", "rpc", "remote", raw.RemoteAddr().String()}
	defer recoverPanic(t.log, &t.panics, "rpc connection", nil, panicAttrs...)
	nc, ok := t.secureServed(raw)
	if !ok {
		return
	}
	br := bufio.NewReaderSize(nc, rpcBufferBytes)
	// The read loop sees the close and ends the connection. The TCP
	// connection is closed, not the TLS one (rawConn).
	fw := newFrameWriter(nc, func(error) { _ = raw.Close() })
	sc = &serverConn{nc: nc, bw: fw.bw, fw: fw}
	from, ok = t.acceptHello(sc, br)
	if !ok {
		return
	}
	panicAttrs[2], panicAttrs[3] = "peer", from
	fw.panicked = t.writerPanicked(from)
	for {
		c, err := t.readCall(nc, br, conn)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
				t.log.Debug("rpc connection ended", "peer", from, "err", err)
			}
			return
		}
		sem <- struct{}{}
		workers.run(c)
	}
}

// servedCall is one call read from a served connection: its frame and the
// bytes it holds in the budgets.
type servedCall struct {
	f frame
	n int64
}

// readCall reads the next request frame and reserves its bytes (n) in the
// budgets; the caller unreserves them once the call is answered.
func (t *TCPTransport) readCall(nc net.Conn, br *bufio.Reader, conn *byteBudget) (servedCall, error) {
	// Waiting for the next frame: the connection may idle this long.
	_ = nc.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout))
	n, err := readFrameLen(br, t.cfg.MaxFrameBytes)
	if err != nil {
		return servedCall{}, err
	}
	if err := t.reserve(conn, int64(n)); err != nil {
		return servedCall{}, err
	}
	// Its bytes are reserved: the frame must now arrive whole, or the
	// connection goes and the bytes with it.
	_ = nc.SetReadDeadline(time.Now().Add(t.cfg.FrameTimeout))
	f, err := readFrameBody(br, n, true)
	if err == nil && f.typ != frameRequest {
		err = fmt.Errorf("%w: client sent frame type %d", ErrProtocol, f.typ)
	}
	if err != nil {
		t.unreserve(conn, int64(n))
		return servedCall{}, err
	}
	return servedCall{f: f, n: int64(n)}, nil
}

// acceptHello reads the caller's hello and answers with this node's. A
// hello meant for another node is refused (and counted): the answer still
// names this node, so the caller can report whom it reached, and then the
// connection is closed. It returns the caller's name.
func (t *TCPTransport) acceptHello(sc *serverConn, br *bufio.Reader) (string, bool) {
	nc := sc.nc
	_ = nc.SetDeadline(time.Now().Add(helloTimeout))
	h, err := readHello(br)
	if err != nil {
		t.log.Warn("refused rpc connection", "remote", nc.RemoteAddr().String(), "err", err)
		return "", false
	}
	if !t.checkServedPeer(nc, h.self) {
		return "", false
	}
	// Counted before the answer goes out, so a caller that has read the
	// answer sees the count.
	wrong := h.peer != t.cfg.Self
	if wrong {
		t.wrongPeer.Add(1)
	}
	err = writeFrame(sc.bw, &frame{typ: frameHello, body: helloBody(hello{self: t.cfg.Self, peer: h.self})})
	if err == nil {
		err = sc.bw.Flush()
	}
	if wrong {
		t.log.Warn("refused rpc connection meant for another node", "remote", nc.RemoteAddr().String(), "peer", h.self, "addressed_to", h.peer)
		return "", false
	}
	if err != nil {
		t.log.Debug("rpc hello not sent", "peer", h.self, "err", err)
		return "", false
	}
	_ = nc.SetDeadline(time.Time{})
	return h.self, true
}

// reserve takes n bytes from the connection's budget, then from the
// transport's, waiting (and so not reading: backpressure) until both have
// room or the transport closes.
func (t *TCPTransport) reserve(conn *byteBudget, n int64) error {
	if err := conn.acquire(t.srv, n); err != nil {
		return err
	}
	if err := t.budget.acquire(t.srv, n); err != nil {
		conn.release(n)
		return err
	}
	return nil
}

// unreserve returns what reserve took.
func (t *TCPTransport) unreserve(conn *byteBudget, n int64) {
	t.budget.release(n)
	conn.release(n)
}

// serveCall decodes and runs one request on a worker and writes its
// response, under the caller's deadline.
func (t *TCPTransport) serveCall(sc *serverConn, from string, h Handler, c *servedCall) {
	ctx, cancel := t.srv, context.CancelFunc(func() {})
	if c.f.budget > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(c.f.budget))
	}
	defer cancel()
	resp, err := t.handle(ctx, from, h, c.f.body)
	// A caller that stops reading must not pin this goroutine and its
	// reply (nor, through sem, the connection) until the transport closes:
	// the write gets until the caller's deadline plus replyWriteGrace. The
	// grace keeps a healthy connection, shared with other calls, from being
	// cut (a timed-out write leaves half a frame) just because a handler
	// finished near its deadline.
	var deadline time.Time
	if d, ok := ctx.Deadline(); ok {
		deadline = d.Add(replyWriteGrace)
	}
	out := t.reply(c.f.id, resp, err)
	_ = sc.fw.write(&out, deadline) // a failed write closes the connection
}

// reply encodes the response frame to call id: resp, or err.
func (t *TCPTransport) reply(id uint64, resp Response, err error) frame {
	body, merr := MarshalReply(resp, err)
	if merr != nil {
		body, _ = MarshalReply(Response{}, fmt.Errorf("%w: encode reply: %v", ErrInternal, merr))
	}
	out := frame{typ: frameResponse, id: id, body: body}
	if out.encodedLen() > t.cfg.MaxFrameBytes {
		body, _ = MarshalReply(Response{}, fmt.Errorf("%w: reply of %d bytes exceeds %d", ErrFrameTooLarge, out.encodedLen(), t.cfg.MaxFrameBytes))
		out.body = body
	}
	return out
}

// handle decodes and runs one request. A panic in either fails only this
// call, with ErrInternal, after it is logged and counted.
func (t *TCPTransport) handle(ctx context.Context, from string, h Handler, body []byte) (resp Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = Response{}, t.callPanicked("rpc handler", v, from)
		}
	}()
	req, err := UnmarshalRequest(body)
	if err != nil {
		return Response{}, err
	}
	return h.Handle(ctx, from, req)
}

// callPanicked logs and counts a panic v recovered in a served call
// (where it happened: what) from peer from, as recoverPanic does, and
// returns the call's error. Not
// recoverPanic itself: its arguments, built on every call whether it
// panics or not, cost two allocations per call.
func (t *TCPTransport) callPanicked(what string, v any, from string) error {
	t.panics.Add(1)
	t.log.Error("panic recovered", "in", what, "listener", "rpc", "peer", from, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return fmt.Errorf("%w: the call failed on %s", ErrInternal, t.cfg.Self)
}
