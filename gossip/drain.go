package gossip

import (
	"github.com/hashicorp/memberlist"
)

// shutdownUnread shuts down a transport that memberlist is not reading:
// one New bound and Start never handed over, or one Create failed on.
//
// memberlist's NetTransport starts its listeners when it binds. Each
// hands what it receives to an unbuffered channel, and its Shutdown waits
// for them to end, so a listener parked on a packet or a stream that
// nobody reads would make Shutdown wait forever. Peers do send to a node
// that has bound but not started: after a restart they still gossip to
// its address, and rejoin loops dial it. So the channels are drained while
// the transport shuts down: packets are dropped, streams closed.
func shutdownUnread(t memberlist.Transport) error {
	done := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		packets, streams := t.PacketCh(), t.StreamCh()
		for packets != nil || streams != nil {
			select {
			case <-done:
				return
			case _, ok := <-packets:
				if !ok {
					packets = nil // a closed channel would spin
				}
			case c, ok := <-streams:
				switch {
				case !ok:
					streams = nil
				case c != nil:
					_ = c.Close()
				}
			}
		}
	}()
	err := t.Shutdown()
	close(done)
	<-drained
	return err
}
