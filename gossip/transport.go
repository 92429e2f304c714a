package gossip

import (
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrStreamTooLong is returned by Read on a gossip stream once more than
// Config.MaxStreamBytes have come in on it; the stream is then closed.
var ErrStreamTooLong = errors.New("gossip: stream exceeds the size limit")

// DefaultMaxStreamBytes is the default Config.MaxStreamBytes: 2 MiB. A
// push-pull of a 1024-member cluster (the ring map's row limit) in the
// middle of a change (a plan with 1024 members and 1023 in its target)
// with realistic names, addresses and metadata is 279 kB before
// compression; with 128-byte names, IPv6 and metadata near memberlist's
// 512-byte limit it is 1.18 MB (TestLegitimatePushPullFits measures
// both). The cap is 1.7 times the extreme case and 7.5 times the
// realistic one.
const DefaultMaxStreamBytes = 2 << 20

// DefaultMaxConcurrentStreams is the default Config.MaxConcurrentStreams.
// Legitimate incoming streams are few and short: each member push-pulls
// with one random peer per PushPullInterval (30 s on a LAN, longer above
// 32 members), so a node takes about one push-pull per interval; joins,
// TCP fallback pings and reliable messages come one at a time; and each
// stream lasts milliseconds. 16 streams open at once is many times that,
// while memberlist may allocate up to 40 MiB for each (see docs/gossip.md).
const DefaultMaxConcurrentStreams = 16

// cappedTransport wraps the transport memberlist uses so that no stream,
// accepted or dialled, can make memberlist read more than max bytes.
//
// memberlist decodes push-pull streams with go-msgpack straight off the
// connection. The compressed payload and each node's Meta are msgpack bin
// values whose declared length may be up to 4 GiB, and the decoder keeps
// growing its buffer as bytes arrive, so without a cap one peer (without
// the key, when encryption is off) holds memory bounded only by bandwidth
// x TCPTimeout x 128 concurrent push-pulls. With the cap, Read fails and
// the connection is closed at max+1 bytes. Packets need no cap: a datagram
// is at most 64 KiB (memberlist's UDP read buffer).
//
// It also bounds the incoming streams open at once: memberlist handles
// each on its own goroutine and may allocate up to 40 MiB for one (a
// decompressed push-pull, or a 20 MiB reliable message it allocates
// before reading), and counts only push-pulls against its limit of 128.
// A stream beyond the bound is closed unread; its slot is held until
// memberlist closes the connection.
type cappedTransport struct {
	memberlist.NodeAwareTransport
	max     int64
	refused func(remote net.Addr) // called once per stream cut at the cap
	busy    func(remote net.Addr) // called once per stream closed for lack of a slot

	// slots holds one token per incoming stream memberlist has open;
	// its capacity is the bound.
	slots chan struct{}

	streams  chan net.Conn
	down     chan struct{} // closed by Shutdown; ends forward
	downOnce sync.Once
	wg       sync.WaitGroup // forward
}

var _ memberlist.NodeAwareTransport = (*cappedTransport)(nil)

// newCappedTransport wraps inner and starts the goroutine that wraps its
// incoming streams; Shutdown stops it.
func newCappedTransport(inner memberlist.NodeAwareTransport, max int64, maxOpen int, refused, busy func(net.Addr)) *cappedTransport {
	t := &cappedTransport{
		NodeAwareTransport: inner,
		max:                max,
		refused:            refused,
		busy:               busy,
		slots:              make(chan struct{}, maxOpen),
		streams:            make(chan net.Conn),
		down:               make(chan struct{}),
	}
	t.wg.Add(1)
	go t.forward()
	return t
}

// forward hands memberlist each incoming stream, wrapped, while a slot is
// free, and closes it at once otherwise.
func (t *cappedTransport) forward() {
	defer t.wg.Done()
	in := t.NodeAwareTransport.StreamCh()
	for {
		select {
		case <-t.down:
			return
		case c := <-in:
			select {
			case t.slots <- struct{}{}:
			default:
				_ = c.Close()
				t.busy(c.RemoteAddr())
				continue
			}
			w := t.wrap(c)
			w.release = t.release
			select {
			case t.streams <- w:
			case <-t.down:
				_ = w.Close()
				return
			}
		}
	}
}

// release frees the slot of an incoming stream.
func (t *cappedTransport) release() { <-t.slots }

// wrap caps c.
func (t *cappedTransport) wrap(c net.Conn) *cappedConn {
	return &cappedConn{Conn: c, left: t.max, t: t}
}

// StreamCh delivers incoming streams, each capped at max bytes.
func (t *cappedTransport) StreamCh() <-chan net.Conn { return t.streams }

// DialTimeout opens a capped stream: a peer we push-pull with is held to
// the same limit as one that calls us.
func (t *cappedTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return t.wrap(c), nil
}

// DialAddressTimeout opens a capped stream.
func (t *cappedTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return t.wrap(c), nil
}

// Shutdown shuts the wrapped transport down, then stops forwarding
// streams. The order matters: memberlist shuts its transport down first
// and reads streams until that returns, while the inner transport's
// listener may be blocked handing over one last accepted stream, which
// only a forward loop still running can take. Safe to call more than
// once; later calls do nothing.
func (t *cappedTransport) Shutdown() error {
	var err error
	t.downOnce.Do(func() {
		err = t.NodeAwareTransport.Shutdown()
		close(t.down)
		t.wg.Wait()
	})
	return err
}

// cappedConn is a stream that refuses to deliver more than its cap.
// memberlist reads a stream from one goroutine, so Read's state needs no
// lock; Close may come from another goroutine and touches only closeOnce.
type cappedConn struct {
	net.Conn
	left    int64 // bytes that may still be read; only Read touches it
	t       *cappedTransport
	refused bool // the cap was passed; only Read touches it
	// release, set on incoming streams, frees the stream's slot; the
	// first Close calls it, later ones do not.
	release   func()
	closeOnce sync.Once
}

// Close closes the connection and, the first time, frees its slot.
func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.release != nil {
			c.release()
		}
	})
	return err
}

// Read reads at most one byte past the cap; when that byte arrives it
// closes the connection and fails with ErrStreamTooLong.
func (c *cappedConn) Read(p []byte) (int, error) {
	if c.refused {
		return 0, c.tooLong()
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.Conn.Read(p)
	if int64(n) <= c.left {
		c.left -= int64(n)
		return n, err
	}
	n = int(c.left)
	c.left = 0
	c.refused = true
	_ = c.Conn.Close()
	c.t.refused(c.Conn.RemoteAddr())
	return n, c.tooLong()
}

func (c *cappedConn) tooLong() error {
	return fmt.Errorf("%w: more than %d bytes from %s", ErrStreamTooLong, c.t.max, c.Conn.RemoteAddr())
}

// newNetTransport builds memberlist's default UDP and TCP transport the
// way memberlist.Create would (it can no longer, since gossip always hands
// it a wrapped transport), and records a dynamically chosen port in mc.
func newNetTransport(mc *memberlist.Config, logger *log.Logger) (*memberlist.NetTransport, error) {
	nc := &memberlist.NetTransportConfig{
		BindAddrs: []string{mc.BindAddr},
		BindPort:  mc.BindPort,
		Logger:    logger,
	}
	// Binding UDP and TCP to the same dynamic port is racy; memberlist
	// retries ten times, and so do we.
	tries := 1
	if mc.BindPort == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			if mc.BindPort == 0 {
				mc.BindPort = nt.GetAutoBindPort()
				mc.AdvertisePort = mc.BindPort
			}
			return nt, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("gossip: listen on %s:%d: %w", mc.BindAddr, mc.BindPort, err)
}
