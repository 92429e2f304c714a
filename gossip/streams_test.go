package gossip

import (
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// rogueUserMsgHeader is a reliable user-message stream declaring a
// message of memberlist's largest allowed size, 20 MiB: memberlist
// allocates the whole buffer as soon as it has decoded these 17 bytes.
func rogueUserMsgHeader() []byte {
	b := []byte{mlUserMsg, 0x81, 0xaa}
	b = append(b, "UserMsgLen"...)
	return append(b, 0xce, 0x01, 0x40, 0x00, 0x00) // uint32 20 MiB
}

// TestConcurrentStreamsBounded: a peer opens MaxConcurrentStreams+extra
// streams that each declare a 20 MiB user message and then stall.
// memberlist would take every one and allocate 20 MiB for each; the
// transport hands it only MaxConcurrentStreams of them and closes the
// rest at once, counting each. Once the test closes the stalled ones
// their slots are free again and a second node joins.
func TestConcurrentStreamsBounded(t *testing.T) { synctest.Test(t, testConcurrentStreamsBounded) }

func testConcurrentStreamsBounded(t *testing.T) {
	const limit, extra = 4, 4
	top := t
	lingerInBubble(t)
	n1, rogue, joinAfter := rogueTarget(t, top, nodeOpts{maxStreams: limit})
	conns := make([]net.Conn, 0, limit+extra)
	for range limit + extra {
		c, err := rogue.DialTimeout(n1.addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// A refused stream is closed before anything is read: the write
		// fails, which is fine.
		_, _ = c.Write(rogueUserMsgHeader())
	}
	// Every stream the node took is now blocked in memberlist's read of
	// the 20 MiB body (fake time stands still until the test waits).
	synctest.Wait()
	open := 0
	for _, c := range conns {
		// net.Pipe: a one-byte write succeeds only if memberlist is
		// reading the stream, and fails at once if it was closed.
		if _, err := c.Write([]byte{0}); err == nil {
			open++
		}
	}
	if open != limit {
		t.Errorf("%d of %d stalled streams held open by the node; want MaxConcurrentStreams = %d", open, limit+extra, limit)
	}
	if got := n1.g.Stats().BusyStreams; got != extra {
		t.Errorf("BusyStreams = %d, want %d", got, extra)
	}
	if !n1.logw.contains("refusing a gossip stream, too many open", "limit=4") {
		t.Error("n1 did not log the refused streams")
	}
	for _, c := range conns {
		_ = c.Close()
	}
	synctest.Wait()

	joinAfter()
	if got := n1.g.Stats().BusyStreams; got != extra {
		t.Errorf("BusyStreams = %d after the join, want still %d", got, extra)
	}
}

// TestStreamSlotReleasedOnce: closing an incoming stream twice (memberlist
// closes both its label wrapper and the original on some paths) frees one
// slot, not two.
func TestStreamSlotReleasedOnce(t *testing.T) {
	tr := &cappedTransport{max: 100, slots: make(chan struct{}, 2)}
	tr.slots <- struct{}{}
	tr.slots <- struct{}{}
	a, b := net.Pipe()
	defer b.Close()
	c := tr.wrap(a)
	c.release = tr.release
	_ = c.Close()
	_ = c.Close()
	if got := len(tr.slots); got != 1 {
		t.Errorf("%d slots held after closing one of two streams twice, want 1", got)
	}
}
