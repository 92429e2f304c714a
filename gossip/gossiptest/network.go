// Package gossiptest provides an in-memory network for memberlist, so that
// gossip tests (and tests of packages that start gossip) run without real
// sockets, and inside testing/synctest bubbles where fake time only moves
// when every goroutine is blocked: probe timeouts then depend on the
// protocol, never on how loaded the machine running the test is.
package gossiptest

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrAddrInUse is returned by Network.NewTransport for an address that a
// live transport already holds.
var ErrAddrInUse = errors.New("gossiptest: address in use")

// packetQueue is how many datagrams a transport buffers before it drops
// more, as a full UDP receive buffer would.
const packetQueue = 512

// Network connects the transports made from it. The zero value is ready to
// use. All methods are safe for concurrent use.
//
// Datagrams (WriteTo) are copied and delivered to the addressee's queue, or
// dropped without an error when the addressee is unknown, shut down, cut off
// or has a full queue: UDP semantics. Streams (DialTimeout) are net.Pipe
// pairs; dialling an unknown or cut-off address fails at once.
type Network struct {
	mu       sync.Mutex            // guards byAddr, cut and nextPort
	byAddr   map[string]*Transport // live transports
	cut      map[string]bool       // addresses isolated from everyone
	nextPort int
}

// NewTransport returns a transport at addr ("127.0.0.1:port"), or at a
// fresh address on 127.0.0.1 when addr is empty. An address becomes free
// again when its transport shuts down, so a node can restart on it.
func (n *Network) NewTransport(addr string) (*Transport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byAddr == nil {
		n.byAddr = map[string]*Transport{}
		n.cut = map[string]bool{}
		n.nextPort = 20000
	}
	if addr == "" {
		for {
			n.nextPort++
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.nextPort))
			if n.byAddr[addr] == nil {
				break
			}
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("gossiptest: address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	p, err := strconv.Atoi(port)
	if ip == nil || err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("gossiptest: address %q is not ip:port", addr)
	}
	if n.byAddr[addr] != nil {
		return nil, fmt.Errorf("%w: %s", ErrAddrInUse, addr)
	}
	t := &Transport{
		net:      n,
		addr:     addr,
		ip:       ip,
		port:     p,
		packetCh: make(chan *memberlist.Packet, packetQueue),
		streamCh: make(chan net.Conn),
		down:     make(chan struct{}),
	}
	n.byAddr[addr] = t
	return t, nil
}

// Isolate cuts addr off from every other transport (on) or reconnects it
// (off): datagrams to and from it are dropped and dials fail.
func (n *Network) Isolate(addr string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut == nil {
		n.cut = map[string]bool{}
	}
	if on {
		n.cut[addr] = true
	} else {
		delete(n.cut, addr)
	}
}

// route returns the live transport at to, or nil if from cannot reach it.
func (n *Network) route(from, to string) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut[from] || n.cut[to] {
		return nil
	}
	return n.byAddr[to]
}

// release frees t's address.
func (n *Network) release(t *Transport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byAddr[t.addr] == t {
		delete(n.byAddr, t.addr)
	}
}

// Transport is one node's end of a Network; it implements memberlist's
// NodeAwareTransport. Put it in memberlist.Config.Transport (or
// gossip.Config.Transport).
type Transport struct {
	net      *Network
	addr     string
	ip       net.IP
	port     int
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	down     chan struct{} // closed by Shutdown
	downOnce sync.Once
}

var (
	_ memberlist.NodeAwareTransport      = (*Transport)(nil)
	_ memberlist.IngestionAwareTransport = (*Transport)(nil) //nolint:staticcheck // SA1019: memberlist still type-asserts it
)

// Addr returns the transport's address (ip:port).
func (t *Transport) Addr() string { return t.addr }

// FinalAdvertiseAddr returns the transport's own address whatever is asked:
// there is nothing else to bind.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.ip, t.port, nil
}

// WriteTo sends a datagram to addr.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a copy of b to a.Addr. Like UDP it reports success
// even when the datagram is lost.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	select {
	case <-t.down:
		return now, fmt.Errorf("gossiptest: transport %s is shut down", t.addr)
	default:
	}
	dest := t.net.route(t.addr, a.Addr)
	if dest == nil {
		return now, nil
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: &net.UDPAddr{IP: t.ip, Port: t.port}, Timestamp: now}
	select {
	case <-dest.down:
	case dest.packetCh <- p:
	default: // queue full: dropped
	}
	return now, nil
}

// PacketCh delivers incoming datagrams.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout opens a stream to addr.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to a.Addr, waiting at most timeout for
// the addressee to accept it.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dest := t.net.route(t.addr, a.Addr)
	if dest == nil {
		return nil, fmt.Errorf("gossiptest: dial %s from %s: connection refused", a.Addr, t.addr)
	}
	local, remote := net.Pipe()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case dest.streamCh <- remote:
		return local, nil
	case <-dest.down:
	case <-t.down:
	case <-timer.C:
	}
	_ = local.Close()
	_ = remote.Close()
	return nil, fmt.Errorf("gossiptest: dial %s from %s: not accepted", a.Addr, t.addr)
}

// StreamCh delivers incoming streams.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// IngestPacket reads a whole datagram from conn and queues it as received
// from addr.
func (t *Transport) IngestPacket(conn net.Conn, addr net.Addr, now time.Time, shouldClose bool) error {
	if shouldClose {
		defer conn.Close()
	}
	buf := make([]byte, 0, 1500)
	tmp := make([]byte, 1500)
	for len(buf) < 1<<16 {
		n, err := conn.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			break
		}
	}
	if len(buf) == 0 {
		return fmt.Errorf("gossiptest: empty packet from %s", addr)
	}
	select {
	case t.packetCh <- &memberlist.Packet{Buf: buf, From: addr, Timestamp: now}:
	case <-t.down:
	}
	return nil
}

// IngestStream queues conn as an incoming stream.
func (t *Transport) IngestStream(conn net.Conn) error {
	select {
	case t.streamCh <- conn:
		return nil
	case <-t.down:
		return fmt.Errorf("gossiptest: transport %s is shut down", t.addr)
	}
}

// Shutdown frees the address; later datagrams to it are lost and dials to
// it fail. Safe to call more than once.
func (t *Transport) Shutdown() error {
	t.downOnce.Do(func() {
		close(t.down)
		t.net.release(t)
	})
	return nil
}
