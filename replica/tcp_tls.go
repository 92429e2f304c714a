package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// TCPTLS runs a TCPTransport's connections over TLS. The transport only
// performs the handshakes and asks CheckPeer; which certificates are good
// is the caller's policy.
type TCPTLS struct {
	// Server secures accepted connections. For mutual TLS it asks for the
	// caller's certificate and verifies it. Required.
	Server *tls.Config
	// Client returns the config to dial node peer with: it presents this
	// node's certificate and must refuse a server whose certificate does
	// not name peer. Called once per dial. Required.
	Client func(peer string) *tls.Config
	// CheckPeer is called on an accepted connection once the caller's
	// hello names it, with the finished handshake; an error refuses the
	// connection before the hello is answered (one node's certificate
	// used in the name of another). Nil accepts every name.
	CheckPeer func(claimed string, state tls.ConnectionState) error
	// Refused is told of each connection refused at the TLS layer: a
	// failed handshake on either side, or CheckPeer's error. remote is
	// the other end's address. It is not told of handshakes that end for
	// reasons of their own: a dial whose ctx ended, an accepted
	// connection that closes or goes quiet without an alert (a port
	// probe, a load balancer's check, a caller that gave up), or any
	// handshake cut short by Close. It is called on the connection's goroutine and must not
	// block; nil ignores refusals.
	Refused func(remote string, err error)
}

// validate checks the required fields.
func (c *TCPTLS) validate() error {
	if c != nil && (c.Server == nil || c.Client == nil) {
		return fmt.Errorf("replica: tcp config: TLS needs Server and Client")
	}
	return nil
}

// refused reports a refusal to the TLS hook.
func (t *TCPTransport) refused(remote string, err error) {
	if t.cfg.TLS.Refused != nil {
		t.cfg.TLS.Refused(remote, err)
	}
}

// secureServed runs the server side of the handshake on an accepted
// connection (within helloTimeout), or returns nc as is without TLS.
func (t *TCPTransport) secureServed(nc net.Conn) (net.Conn, bool) {
	if t.cfg.TLS == nil {
		return nc, true
	}
	tc := tls.Server(nc, t.cfg.TLS.Server)
	_ = nc.SetDeadline(time.Now().Add(helloTimeout))
	if err := tc.HandshakeContext(t.srv); err != nil {
		switch {
		case t.srv.Err() != nil: // closing
		case silentEnd(err):
			// A refusal by either side's policy comes as an error or an
			// alert; a peer that hangs up or goes quiet (a port probe, a
			// caller whose own deadline passed) refused nothing.
			t.log.Debug("rpc connection ended during the tls handshake", "remote", nc.RemoteAddr().String(), "err", err)
		default:
			t.refused(nc.RemoteAddr().String(), err)
		}
		return nil, false
	}
	return tc, true
}

// silentEnd reports whether err is the peer going away or going quiet
// rather than saying something wrong.
func silentEnd(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne) && ne.Timeout()
}

// checkServedPeer asks CheckPeer whether the accepted connection nc may
// speak for the node its hello claims; a refusal is reported.
func (t *TCPTransport) checkServedPeer(nc net.Conn, claimed string) bool {
	tc, ok := nc.(*tls.Conn)
	if !ok || t.cfg.TLS.CheckPeer == nil {
		return true
	}
	if err := t.cfg.TLS.CheckPeer(claimed, tc.ConnectionState()); err != nil {
		t.refused(nc.RemoteAddr().String(), err)
		return false
	}
	return true
}

// secureDialed runs the client side of the handshake with node to on a
// dialed connection, under ctx and the deadline already set on nc, or
// returns nc as is without TLS. On error the caller closes nc.
func (t *TCPTransport) secureDialed(ctx context.Context, nc net.Conn, to string) (net.Conn, error) {
	if t.cfg.TLS == nil {
		return nc, nil
	}
	tc := tls.Client(nc, t.cfg.TLS.Client(to))
	if err := tc.HandshakeContext(ctx); err != nil {
		// The caller giving up, or a server that hangs up or goes quiet
		// (a loaded peer past the dial deadline), refused nothing: a
		// refusal comes as an error or an alert.
		if ctx.Err() == nil && !silentEnd(err) {
			t.refused(nc.RemoteAddr().String(), err)
		}
		return nil, fmt.Errorf("replica: TLS handshake with %s: %w", to, err)
	}
	return tc, nil
}

// rawConn returns the TCP connection under nc when nc is a TLS one, else
// nc. A connection given up on is closed through it: tls.Conn.Close first
// sends close_notify under a 5 s write deadline, which blocks against a
// peer that stopped reading, the very peer that made a write fail.
func rawConn(nc net.Conn) net.Conn {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return nc
}
