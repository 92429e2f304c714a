package gossip

import (
	"bytes"
	"compress/lzw"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/ringkv/ringkv/gossip/gossiptest"
	"github.com/ringkv/ringkv/ring"
)

// memberlist's message type bytes (net.go).
const (
	mlPingMsg     = 0
	mlPushPullMsg = 6
	mlUserMsg     = 8 // a reliable user-message stream
	mlCompressMsg = 9
)

// rogueTarget starts node n1 with opts on a fresh in-memory network, and a
// bare transport on the same network for a test to send hostile bytes
// from; both stop with the test. joinAfter checks, once the hostile bytes
// are sent, that n1 still gossips: a second node joins through it and both
// agree on the ring.
func rogueTarget(t, top *testing.T, opts nodeOpts) (n1 *testNode, rogue *gossiptest.Transport, joinAfter func()) {
	t.Helper()
	opts.net = &gossiptest.Network{}
	n1 = startNode(t, top, "n1", t.TempDir(), opts)
	rogue, err := opts.net.NewTransport("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rogue.Shutdown() })
	return n1, rogue, func() {
		t.Helper()
		n2 := startNode(t, top, "n2", t.TempDir(), nodeOpts{net: opts.net, seeds: []string{n1.addr}})
		waitRing(t, []*testNode{n1, n2}, []string{"n1", "n2"})
	}
}

// mlPushPullHeader and mlPushNodeState mirror memberlist's unexported
// push-pull structs (net.go), which it encodes with go-msgpack's default
// MsgpackHandle as maps keyed by field name.
type mlPushPullHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}

type mlPushNodeState struct {
	Name        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Incarnation uint32
	State       uint8
	Vsn         []uint8
}

// pushPullStream encodes, as memberlist's sendLocalState does before
// compression, a push-pull carrying nodes and the user state.
func pushPullStream(t testing.TB, nodes []mlPushNodeState, user []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(mlPushPullMsg)
	enc := codec.NewEncoder(&buf, &codec.MsgpackHandle{})
	if err := enc.Encode(&mlPushPullHeader{Nodes: len(nodes), UserStateLen: len(user)}); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		if err := enc.Encode(&nodes[i]); err != nil {
			t.Fatal(err)
		}
	}
	buf.Write(user)
	return buf.Bytes()
}

// clusterPushPull returns the push-pull stream a node of a 1024-member
// cluster sends: every member in memberlist's node list and in the ring
// map. name(i), ip(i) and meta(i) describe member i.
func clusterPushPull(t testing.TB, name func(int) string, ip func(int) net.IP, meta func(int) Meta) []byte {
	t.Helper()
	const members = maxRows
	nodes := make([]mlPushNodeState, members)
	rows := Map{}
	var names []string
	for i := range members {
		m, err := EncodeMeta(meta(i))
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = mlPushNodeState{
			Name: name(i), Addr: ip(i), Port: 7946, Meta: m,
			Incarnation: 1 << 20, State: 0, Vsn: []uint8{1, 5, 5, 0, 0, 0},
		}
		rows[name(i)] = Entry{StatusJoined, versionAt(testNow), net.JoinHostPort(ip(i).String(), "7946"), ""}
		names = append(names, name(i))
	}
	if err := rows.Validate(); err != nil {
		t.Fatal(err)
	}
	// The largest plan: a change in progress, one member leaving.
	plan := ring.NewPlan(names, versionAt(testNow)).MoveTo(names[1:], versionAt(testNow))
	if err := checkPlan(plan); err != nil {
		t.Fatal(err)
	}
	return pushPullStream(t, nodes, EncodeState(rows, plan))
}

// realisticPushPull is a 1024-member push-pull with long but realistic
// names, IPv4 addresses and every listener advertised.
func realisticPushPull(t testing.TB) []byte {
	ip := func(i int) net.IP { return net.IPv4(10, 20, byte(i>>8), byte(i)).To4() }
	return clusterPushPull(t,
		func(i int) string { return fmt.Sprintf("ringkv-prod-eu-west-1a-%04d", i) },
		ip,
		func(i int) Meta {
			h := ip(i).String()
			return Meta{RPC: h + ":7947", HTTP: h + ":8080", RESP: h + ":6379", Proto: 1}
		})
}

// TestLegitimatePushPullFits measures the largest push-pull a 1024-member
// cluster sends (uncompressed, which is larger than what memberlist sends
// by default; with a plan in the middle of a change, both lists full) and
// checks the default cap leaves a wide margin; the extreme case (128-byte
// names, IPv6, metadata near memberlist's 512 bytes) is logged for
// docs/gossip.md.
func TestLegitimatePushPullFits(t *testing.T) {
	real := len(realisticPushPull(t))
	ip6 := func(i int) net.IP {
		return net.ParseIP(fmt.Sprintf("fd00:1234:5678:9abc:def0:1234:%x:%x", i>>8, i&0xff))
	}
	extreme := len(clusterPushPull(t,
		func(i int) string { return fmt.Sprintf("%0128d", i) },
		ip6,
		func(i int) Meta {
			h := strings.Repeat("h", 150) + fmt.Sprintf(".%04d", i)
			return Meta{RPC: h + ":7947", HTTP: h + ":8080", RESP: h + ":6379", Proto: 1}
		}))
	var lz bytes.Buffer
	w := lzw.NewWriter(&lz, lzw.LSB, 8) // memberlist's compression
	_, _ = w.Write(realisticPushPull(t))
	_ = w.Close()
	t.Logf("1024-member push-pull: realistic %d bytes (%d LZW-compressed), extreme %d bytes; cap %d",
		real, lz.Len(), extreme, DefaultMaxStreamBytes)
	// The plan (two lists of up to 1024 names) took some of the margin
	// this test once required (8x realistic, 2x extreme).
	if real*7 > DefaultMaxStreamBytes || extreme*3 > DefaultMaxStreamBytes*2 {
		t.Errorf("1024-member push-pulls of %d (realistic) and %d (extreme) bytes leave too little margin under the %d-byte cap",
			real, extreme, DefaultMaxStreamBytes)
	}
}

// TestLegitimatePushPullAccepted: a node behind the capped transport takes
// a realistic 1024-member push-pull whole and answers it.
func TestLegitimatePushPullAccepted(t *testing.T) { synctest.Test(t, testLegitimatePushPullAccepted) }

func testLegitimatePushPullAccepted(t *testing.T) {
	lingerInBubble(t)
	n1, rogue, _ := rogueTarget(t, t, nodeOpts{})
	conn, err := rogue.DialTimeout(n1.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := realisticPushPull(t)
	werr := make(chan error, 1)
	go func() { _, err := conn.Write(msg); werr <- err }()
	reply, err := io.ReadAll(conn)
	if err := <-werr; err != nil {
		t.Fatalf("writing %d bytes of push-pull: %v", len(msg), err)
	}
	if err != nil || len(reply) == 0 || (reply[0] != mlPushPullMsg && reply[0] != mlCompressMsg) {
		t.Fatalf("push-pull of %d bytes answered %d bytes (%x...), err %v", len(msg), len(reply), reply[:min(len(reply), 1)], err)
	}
	if got := n1.g.Stats().RefusedStreams; got != 0 {
		t.Errorf("RefusedStreams = %d after a legitimate push-pull", got)
	}
}

// rogueMetaHeader is a push-pull announcing one node whose Meta is a
// msgpack bin declaring 1 GiB: go-msgpack reads and buffers it as it comes.
func rogueMetaHeader() []byte {
	b := []byte{mlPushPullMsg}
	b = append(b, 0x83, 0xa5)
	b = append(b, "Nodes"...)
	b = append(b, 0x01, 0xac)
	b = append(b, "UserStateLen"...)
	b = append(b, 0x00, 0xa4)
	b = append(b, "Join"...)
	b = append(b, 0xc2, 0x82, 0xa4)
	b = append(b, "Name"...)
	b = append(b, 0xa5)
	b = append(b, "rogue"...)
	b = append(b, 0xa4)
	b = append(b, "Meta"...)
	return append(b, 0xc6, 0x40, 0x00, 0x00, 0x00) // bin32, 1 GiB
}

// TestRogueStreamCutAtCap: a peer opens a push-pull whose node Meta
// declares 1 GiB and streams bytes (8 MiB here). memberlist would read
// every one of them; the capped transport closes the stream once it
// delivered DefaultMaxStreamBytes, counts it, logs it, and the node keeps
// gossiping.
func TestRogueStreamCutAtCap(t *testing.T) { synctest.Test(t, testRogueStreamCutAtCap) }

func testRogueStreamCutAtCap(t *testing.T) {
	const send, chunk = 8 << 20, 64 << 10
	top := t
	lingerInBubble(t)
	n1, rogue, joinAfter := rogueTarget(t, top, nodeOpts{})
	conn, err := rogue.DialTimeout(n1.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// net.Pipe: a Write returns only once the node has read the bytes, so
	// sent counts exactly what the node took.
	sent := 0
	hdr := rogueMetaHeader()
	n, err := conn.Write(hdr)
	sent += n
	junk := bytes.Repeat([]byte{'x'}, chunk)
	for i := 0; err == nil && i < send/chunk; i++ {
		n, err = conn.Write(junk)
		sent += n
	}
	_ = conn.Close()
	t.Logf("node read %d of %d bytes; last write: %v", sent, len(hdr)+send, err)
	if sent > DefaultMaxStreamBytes+1 {
		t.Fatalf("node read %d bytes of a hostile stream; cap %d", sent, DefaultMaxStreamBytes)
	}
	synctest.Wait()
	if got := n1.g.Stats().RefusedStreams; got != 1 {
		t.Errorf("RefusedStreams = %d, want 1", got)
	}
	if !n1.logw.contains("refusing a gossip stream over the size limit", "limit=2097152") {
		t.Error("n1 did not log the refused stream")
	}

	joinAfter()
}

// TestCappedConn: Read delivers exactly the cap, then fails with
// ErrStreamTooLong and closes the connection, whatever the read sizes.
func TestCappedConn(t *testing.T) {
	for _, bufSize := range []int{1, 7, 100, 4096} {
		t.Run(fmt.Sprintf("buf=%d", bufSize), func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			go func() {
				_, _ = b.Write(bytes.Repeat([]byte{1}, 1000))
				_ = b.Close()
			}()
			refused := 0
			tr := &cappedTransport{max: 100, refused: func(net.Addr) { refused++ }}
			c := tr.wrap(a)
			got, err := io.ReadAll(readerFunc(func(p []byte) (int, error) { return c.Read(p[:min(len(p), bufSize)]) }))
			if len(got) != 100 || !errors.Is(err, ErrStreamTooLong) || refused != 1 {
				t.Errorf("read %d bytes, err %v, refused %d; want 100, ErrStreamTooLong, 1", len(got), err, refused)
			}
			if _, err := a.Write([]byte{1}); err == nil {
				t.Error("the connection is still open")
			}
		})
	}
	// At most the cap: the stream ends normally.
	a, b := net.Pipe()
	go func() { _, _ = b.Write(bytes.Repeat([]byte{1}, 100)); _ = b.Close() }()
	tr := &cappedTransport{max: 100, refused: func(net.Addr) { t.Error("refused a stream of exactly the cap") }}
	if got, err := io.ReadAll(tr.wrap(a)); len(got) != 100 || err != nil {
		t.Errorf("exactly the cap: read %d bytes, err %v", len(got), err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// shutdownSender is an inner transport that, like memberlist's
// NetTransport, accepts a stream just as it shuts down: its listener
// goroutine blocks handing the stream to StreamCh, and Shutdown waits for
// that goroutine to end.
type shutdownSender struct {
	memberlist.NodeAwareTransport
	ch   chan net.Conn
	conn net.Conn
}

func (s *shutdownSender) StreamCh() <-chan net.Conn { return s.ch }

func (s *shutdownSender) Shutdown() error {
	done := make(chan struct{})
	go func() { // the listener, with a stream accepted at the last moment
		s.ch <- s.conn
		close(done)
	}()
	<-done
	return nil
}

// TestShutdownWhileAStreamIsHandedOver: the wrapper keeps taking streams
// while the inner transport shuts down (memberlist shuts its transport
// down first and reads streams until then). Before, the wrapper stopped
// forwarding first, the inner listener stayed blocked on its send, and
// Shutdown, so a node's stop, hung for good (synctest reports the
// deadlock). A stream taken that late is handed over or closed.
func TestShutdownWhileAStreamIsHandedOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		inner := &shutdownSender{ch: make(chan net.Conn), conn: a}
		tr := newCappedTransport(inner, 1<<20, 4, func(net.Addr) {}, func(net.Addr) {})
		stop := make(chan struct{})
		go func() { // memberlist's stream handler, alive until after Shutdown
			for {
				select {
				case c := <-tr.StreamCh():
					_ = c.Close()
				case <-stop:
					return
				}
			}
		}()
		if err := tr.Shutdown(); err != nil {
			t.Fatal(err)
		}
		close(stop)
		// Handed to memberlist or closed by the wrapper, the stream is
		// never left open.
		if _, err := b.Read(make([]byte, 1)); err == nil {
			t.Error("the stream accepted during shutdown was left open")
		}
	})
}
