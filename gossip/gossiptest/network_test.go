package gossiptest

import (
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestNetworkDatagramsAndStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n Network
		a, err := n.NewTransport("")
		if err != nil {
			t.Fatal(err)
		}
		b, err := n.NewTransport("127.0.0.1:7946")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.NewTransport(b.Addr()); !errors.Is(err, ErrAddrInUse) {
			t.Fatalf("second transport on %s: %v, want ErrAddrInUse", b.Addr(), err)
		}
		msg := []byte("ping")
		if _, err := a.WriteTo(msg, b.Addr()); err != nil {
			t.Fatal(err)
		}
		msg[0] = 'X' // the receiver holds its own copy
		if p := <-b.PacketCh(); string(p.Buf) != "ping" || p.From.String() != a.Addr() {
			t.Fatalf("got %q from %v", p.Buf, p.From)
		}

		go func() {
			c := <-b.StreamCh()
			_, _ = c.Write([]byte("hello"))
			_ = c.Close()
		}()
		c, err := a.DialTimeout(b.Addr(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(c); string(got) != "hello" {
			t.Fatalf("stream read %q", got)
		}

		// Cut off: datagrams vanish, dials fail.
		n.Isolate(b.Addr(), true)
		if _, err := a.WriteToAddress([]byte("lost"), memberlist.Address{Addr: b.Addr()}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.DialTimeout(b.Addr(), time.Second); err == nil {
			t.Fatal("dial to an isolated transport succeeded")
		}
		n.Isolate(b.Addr(), false)
		synctest.Wait()
		select {
		case p := <-b.PacketCh():
			t.Fatalf("isolated transport received %q", p.Buf)
		default:
		}

		// Shut down: the address is free for a restarted node.
		if err := b.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.DialTimeout(b.Addr(), time.Second); err == nil {
			t.Fatal("dial to a shut-down transport succeeded")
		}
		if _, err := n.NewTransport(b.Addr()); err != nil {
			t.Fatalf("restart on %s: %v", b.Addr(), err)
		}
	})
}
