package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/tidwall/redcon"
)

// The RESP connection loop. redcon's Server and reader are not used (see
// resp_proto.go); its Conn interface and reply encoders are, so that the
// command handlers read as any redcon handler does.

const (
	// respFlushAt is how much reply data a pipeline may pile up before
	// it is written even though more commands are buffered.
	respFlushAt = 64 << 10
	// respWriteTimeout bounds one flush: a client that stops reading its
	// replies cannot hold the connection's goroutine for good.
	respWriteTimeout = 30 * time.Second
)

// respHandshakeTimeout bounds a RESP client's TLS handshake, as the HTTP
// listener's ReadHeaderTimeout and the RPC hello deadline bound theirs.
const respHandshakeTimeout = 5 * time.Second

// serve accepts connections on ln until shutdown closes it; it then
// closes every connection and returns nil.
func (s *respServer) serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return ln.Close()
	}
	s.ln = ln
	s.mu.Unlock()
	defer s.closeConns()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait, as net/http
			// does, rather than spin or give up serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("resp accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := &respConn{nc: nc, addr: nc.RemoteAddr().String()}
		switch s.track(c) {
		case connClosing:
			_ = nc.Close()
		case connOverLimit:
			s.refuse(c)
		case connServed:
			// Its buffers only now that it is served: a refused
			// connection costs no more than its descriptor.
			s.attachReader(c)
			go s.serveConn(c)
		}
	}
}

// attachReader gives c the reader serveConn reads its commands with: one
// that writes the pending replies before it waits for input, held to the
// limits before AUTH when authentication is on.
func (s *respServer) attachReader(c *respConn) {
	c.rd = newRESPReader(flushingReader{c}, respCommandCap(s.limits))
	if s.gate != nil && s.gate.auth != nil {
		c.rd.restrict()
	}
}

// closeConns closes every connection, those being refused included, and
// any accepted later.
func (s *respServer) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connsClosed = true
	for c := range s.conns {
		_ = c.nc.Close()
	}
	for nc := range s.refusals {
		_ = nc.Close()
	}
}

// connCount is the number of connections being served.
func (s *respServer) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// serveConn reads and runs c's commands until the client leaves, sends
// malformed input, or QUIT. It runs on the connection's own goroutine and
// recovers a panic there: the connection ends with an error reply, the
// panic is logged and counted, and the process goes on.
func (s *respServer) serveConn(c *respConn) {
	defer func() {
		if v := recover(); v != nil {
			s.metrics.panicked("resp")
			s.log.Error("panic recovered", "listener", "resp", "remote", c.addr,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			c.out = c.out[:c.mark] // drop the half-written reply
			c.WriteError("ERR internal error; closing the connection")
			_ = c.flush()
		}
		_ = c.nc.Close()
		s.untrack(c)
	}()
	if tc, ok := c.nc.(*tls.Conn); ok {
		// Without a deadline a client that never completes the handshake
		// holds a descriptor and a goroutine for good, and one host can
		// open enough of them to use up the process's file limit.
		_ = tc.SetDeadline(time.Now().Add(respHandshakeTimeout))
		if err := tc.Handshake(); err != nil {
			return
		}
		_ = tc.SetDeadline(time.Time{})
	}
	idle := s.limits.RESPIdleTimeout
	for {
		if idle > 0 {
			// Armed before every command, buffered or not: each must
			// arrive whole within idle of the previous answer, however
			// long the commands before it took to run.
			_ = c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		args, err := c.rd.next()
		if err != nil {
			if idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				s.metrics.respDropped.WithLabelValues(respDroppedIdle).Inc()
				s.log.Debug("resp connection idle, closed", "remote", c.addr, "resp_idle_timeout", idle)
			}
			if errors.Is(err, errRESPProtocol) {
				var pe *respProtocolError
				errors.As(err, &pe)
				c.WriteError("ERR Protocol error: " + pe.Msg)
				_ = c.flush()
			}
			return
		}
		c.mark = len(c.out)
		s.handle(c, redcon.Command{Args: args})
		c.mark = len(c.out)
		switch authed := authenticated(c); {
		case c.rd.unauth && authed:
			c.rd.allow()
		case !c.rd.unauth && !authed && s.gate != nil && s.gate.auth != nil:
			// Logged out by a reload of the tokens (respServer.recheck):
			// the limits of a client without a token apply again.
			c.rd.restrict()
		}
		if c.closed {
			_ = c.flush()
			return
		}
		// Replies go out when the reader next waits for input
		// (flushingReader), or here once a pipeline piled up enough.
		if len(c.out) >= respFlushAt {
			if err := c.flush(); err != nil {
				return
			}
		}
	}
}

// respConn is one client connection as the command handlers see it. Only
// the connection's goroutine touches it.
type respConn struct {
	nc     net.Conn
	addr   string
	rd     *respReader
	out    []byte // replies not yet written
	mark   int    // len(out) without the running command's reply
	closed bool   // Close was called: flush and end
	// deadline is the write deadline set on nc (zero: none yet).
	deadline time.Time
	ctx      any
	err      error // the first write error; later writes are dropped
}

var _ redcon.Conn = (*respConn)(nil)

// flushingReader is what a connection's respReader reads from: before
// it waits for more input it writes the replies still pending, as
// redis-server writes its replies before it waits for events. A client
// that pipelined commands and then sent part of one more gets its answers
// without sending the rest, and answers are never held while an idle
// timeout runs out.
type flushingReader struct{ c *respConn }

func (r flushingReader) Read(p []byte) (int, error) {
	if err := r.c.flush(); err != nil {
		return 0, err
	}
	return r.c.nc.Read(p)
}

// flush writes the pending replies, within respWriteTimeout/2 at least.
func (c *respConn) flush() error {
	if c.err != nil || len(c.out) == 0 {
		return c.err
	}
	// Moving the deadline resets a runtime timer under a lock: it is moved
	// only once less than half of respWriteTimeout is left, so a flush
	// still has at least that long.
	if now := time.Now(); c.deadline.Sub(now) < respWriteTimeout/2 {
		c.deadline = now.Add(respWriteTimeout)
		if err := c.nc.SetWriteDeadline(c.deadline); err != nil {
			c.err = err
			return err
		}
	}
	_, c.err = c.nc.Write(c.out)
	if cap(c.out) > respFlushAt {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	c.mark = 0
	return c.err
}

// RemoteAddr is the client's address.
func (c *respConn) RemoteAddr() string { return c.addr }

// Close ends the connection once the running command's reply is written.
func (c *respConn) Close() error { c.closed = true; return nil }

// WriteError appends an error reply (newlines become spaces).
func (c *respConn) WriteError(msg string) { c.out = redcon.AppendError(c.out, msg) }

// WriteString appends a simple string reply (newlines become spaces).
func (c *respConn) WriteString(str string) { c.out = redcon.AppendString(c.out, str) }

// WriteBulk appends a bulk string reply.
func (c *respConn) WriteBulk(bulk []byte) { c.out = redcon.AppendBulk(c.out, bulk) }

// WriteBulkString appends a bulk string reply.
func (c *respConn) WriteBulkString(bulk string) { c.out = redcon.AppendBulkString(c.out, bulk) }

// WriteInt appends an integer reply.
func (c *respConn) WriteInt(num int) { c.out = redcon.AppendInt(c.out, int64(num)) }

// WriteInt64 appends an integer reply.
func (c *respConn) WriteInt64(num int64) { c.out = redcon.AppendInt(c.out, num) }

// WriteUint64 appends an integer reply.
func (c *respConn) WriteUint64(num uint64) { c.out = redcon.AppendUint(c.out, num) }

// WriteArray appends an array header; the elements follow.
func (c *respConn) WriteArray(count int) { c.out = redcon.AppendArray(c.out, count) }

// WriteNull appends a null bulk string.
func (c *respConn) WriteNull() { c.out = redcon.AppendNull(c.out) }

// WriteRaw appends bytes as they are.
func (c *respConn) WriteRaw(data []byte) { c.out = append(c.out, data...) }

// WriteAny appends v as redcon.AppendAny renders it.
func (c *respConn) WriteAny(v any) { c.out = redcon.AppendAny(c.out, v) }

// WriteBulkFrom appends a bulk string of n bytes read from rb; a short
// read ends the connection, since the reply would be malformed.
func (c *respConn) WriteBulkFrom(n int64, rb io.Reader) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rb, b); err != nil {
		c.closed = true
		return
	}
	c.WriteBulk(b)
}

// Context returns what SetContext stored.
func (c *respConn) Context() any { return c.ctx }

// SetContext stores a value for the handlers.
func (c *respConn) SetContext(v any) { c.ctx = v }

// SetReadBuffer does nothing: the read buffer has a fixed size.
func (c *respConn) SetReadBuffer(int) {}

// Detach is not supported (ringkv has no pub/sub); it returns nil.
func (c *respConn) Detach() redcon.DetachedConn { return nil }

// ReadPipeline returns nil: commands are read one at a time.
func (c *respConn) ReadPipeline() []redcon.Command { return nil }

// PeekPipeline returns nil: commands are read one at a time.
func (c *respConn) PeekPipeline() []redcon.Command { return nil }

// NetConn returns the client's connection.
func (c *respConn) NetConn() net.Conn { return c.nc }

// authenticated reports whether c's client has logged in with a token.
func authenticated(c *respConn) bool {
	sess, ok := c.ctx.(*respSession)
	return ok && sess.tok.role != RoleNone
}
