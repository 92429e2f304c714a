package node

import "time"

// Admitting RESP connections: limits.resp_max_clients, with redis-server's
// answer past it. The idle timeout is armed in serveConn.

// connAdmission is what track decided for a new connection.
type connAdmission int

const (
	connServed    connAdmission = iota // registered: serve it
	connClosing                        // serve is closing connections: close it
	connOverLimit                      // limits.resp_max_clients reached: refuse it
)

// track registers c, unless serve is closing connections or the limit on
// them is reached.
func (s *respServer) track(c *respConn) connAdmission {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connsClosed {
		return connClosing
	}
	if limit := s.limits.RESPMaxClients; limit > 0 && len(s.conns) >= limit {
		return connOverLimit
	}
	s.conns[c] = struct{}{}
	return connServed
}

// untrack removes what track registered.
func (s *respServer) untrack(c *respConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// respMaxClientsText is redis-server's answer to a connection past its
// maxclients, so that clients and operators recognise it.
const respMaxClientsText = "ERR max number of clients reached"

// respMaxClientsReply is respMaxClientsText on the wire.
var respMaxClientsReply = []byte("-" + respMaxClientsText + "\r\n")

// respMaxRefusing bounds the connections being refused at once. Past it a
// refused connection is closed without the answer: a TLS client may hold
// its refusal up to respHandshakeTimeout, and a flood of them must not
// pile up the goroutines the cap is there to prevent.
const respMaxRefusing = 64

// refuse counts a connection over limits.resp_max_clients, answers it
// with redis-server's error on a goroutine of its own (with TLS the answer
// waits for the handshake) and closes it, all within respHandshakeTimeout.
// It is kept among the refusals closeConns closes, so that shutdown does
// not leave it waiting on a client that does not read.
func (s *respServer) refuse(c *respConn) {
	s.metrics.respDropped.WithLabelValues(respDroppedMaxClients).Inc()
	s.overLimitLog.Log("max_clients", "remote", c.addr, "resp_max_clients", s.limits.RESPMaxClients)
	s.mu.Lock()
	if s.connsClosed || len(s.refusals) >= respMaxRefusing {
		s.mu.Unlock()
		_ = c.nc.Close()
		return
	}
	s.refusals[c.nc] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.refusals, c.nc)
			s.mu.Unlock()
		}()
		_ = c.nc.SetDeadline(time.Now().Add(respHandshakeTimeout))
		_, _ = c.nc.Write(respMaxClientsReply) // best effort: the client is refused either way
		_ = c.nc.Close()
	}()
}
