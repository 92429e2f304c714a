package gossip

import (
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// sourceBoundTransport makes memberlist's TCP streams leave from the IP
// the node's gossip is bound to.
//
// memberlist's NetTransport sends UDP from its bound socket, so packets
// already carry the bind address, but it dials streams (push-pull, TCP
// fallback pings, reliable messages) with a plain dialer, and the kernel
// then picks the source by route: 127.0.0.1 for any loopback peer. Rules
// that cut links by source and destination address (chaos tests giving
// each node its own 127.0.0.x, multi-homed hosts) would miss those
// streams.
type sourceBoundTransport struct {
	memberlist.NodeAwareTransport
	ip net.IP
}

var _ memberlist.NodeAwareTransport = (*sourceBoundTransport)(nil)

// bindDials wraps inner so that its streams are dialled from bindAddr,
// when that is one specific IP. For a wildcard bind (0.0.0.0, ::, empty)
// the kernel's choice is the only sensible one, and inner is returned as
// it is.
func bindDials(inner memberlist.NodeAwareTransport, bindAddr string) memberlist.NodeAwareTransport {
	ip := net.ParseIP(bindAddr)
	if ip == nil || ip.IsUnspecified() {
		return inner
	}
	return &sourceBoundTransport{NodeAwareTransport: inner, ip: ip}
}

// DialTimeout dials addr from the bind IP.
func (t *sourceBoundTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout dials a.Addr from the bind IP; otherwise it is
// NetTransport's own: a plain TCP dial bounded by timeout.
func (t *sourceBoundTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: t.ip}}
	return d.Dial("tcp", a.Addr)
}
