package replica

import (
	"net"
	"testing"
	"time"
)

// Held frames are not written until kick, then all in one write; a
// frame that would make the held ones exceed rpcBufferBytes has them
// written first, then goes out itself.
func TestFrameWriterHoldWritesOnKick(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	g := &gatedConn{Conn: a, entered: make(chan struct{}), release: make(chan struct{})}
	close(g.release)
	w := newFrameWriter(g, func(err error) { t.Errorf("fail(%v) on a healthy connection", err) })
	const held = 5
	got := readFrames(b, held+2)
	for id := uint64(1); id <= held; id++ {
		if err := w.hold(&frame{typ: frameResponse, id: id, body: []byte("x")}, time.Time{}); err != nil {
			t.Fatalf("hold %d: %v", id, err)
		}
	}
	if n := g.writes.Load(); n != 0 {
		t.Fatalf("%d writes before kick, want 0", n)
	}
	w.kick()
	if n := g.writes.Load(); n != 1 {
		t.Fatalf("%d writes after kick, want 1", n)
	}
	w.kick() // nothing held: no write
	if err := w.hold(&frame{typ: frameResponse, id: 9, body: []byte("a")}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, rpcBufferBytes)
	bigErr := make(chan error, 1)
	go func() { bigErr <- w.hold(&frame{typ: frameResponse, id: 10, body: big}, time.Time{}) }()
	frames := <-got
	if err := <-bigErr; err != nil {
		t.Fatalf("hold of a large frame: %v", err)
	}
	if len(frames) != held+2 {
		t.Fatalf("read %d frames, want %d", len(frames), held+2)
	}
	for i, f := range frames {
		if want := []uint64{1, 2, 3, 4, 5, 9, 10}[i]; f.id != want {
			t.Fatalf("frame %d has id %d, want %d", i, f.id, want)
		}
	}
}
