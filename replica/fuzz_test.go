package replica

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

func sampleRequests() []Request {
	_, s := vclock.Mint(nil, "inc-a", vclock.Write{Value: []byte("v"), WallTime: 7})
	_, s2 := vclock.Mint(nil, "inc-b", vclock.Write{Tombstone: true})
	set := vclock.Merge(s, s2)
	return []Request{
		{Kind: KindPing},
		{Kind: KindRead, Key: []byte("k")},
		{Kind: KindStore, Key: []byte("k"), Siblings: set, HintFor: "n3"},
		{Kind: KindForward, Key: []byte("k"), Write: &ForwardWrite{Value: []byte("x"), Context: set.Context(), HasContext: true, W: QuorumAll}},
		{Kind: Kind(200), Key: []byte("future")},
		{Kind: KindTree, Partition: 3, AEQuery: &AEQuery{Level: 1}},
		{Kind: KindTree, Partition: 3, AEQuery: &AEQuery{Level: 2, Nodes: []uint32{0, 17, 255}}},
		{Kind: KindKeys, Partition: 3, AEQuery: &AEQuery{Nodes: []uint32{4, 200}}, Limit: 1024},
		{Kind: KindFetch, Partition: 3, AEQuery: &AEQuery{Keys: [][]byte{[]byte("a"), []byte("b")}}},
		{Kind: KindHandoff, Batch: []Entry{{Key: []byte("k"), Siblings: set}}},
		{Kind: KindNodeStats},
	}
}

func FuzzUnmarshalRequest(f *testing.F) {
	for _, r := range sampleRequests() {
		b, err := MarshalRequest(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range oldReflectMessages(f)[:len(goldenRequests())] {
		f.Add(b)
	}
	f.Add([]byte{ProtocolVersion})
	f.Add([]byte{9, 0x80})
	// {"lvl": 0}: an anti-entropy query with every field empty.
	f.Add([]byte("\x02\x83\xa100\xa400000\xa3lvl\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		var err error
		// A count from the input must not size an allocation beyond a
		// small multiple of the input (plus the decoders' fixed costs).
		if got := allocated(func() { r, err = UnmarshalRequest(b) }); got > 64*uint64(len(b))+1<<20 {
			t.Fatalf("decoding %d bytes allocated %d", len(b), got)
		}
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is neither ErrProtocol nor ErrBadRequest", err)
			}
			return
		}
		again, err := MarshalRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := UnmarshalRequest(again)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if d := cmp.Diff(r, r2, cmpopts.EquateEmpty(), cmpopts.IgnoreUnexported(Entry{}, KeyDigest{})); d != "" {
			t.Fatalf("round trip changed the request:\n%s", d)
		}
	})
}

func FuzzUnmarshalReply(f *testing.F) {
	_, s := vclock.Mint(nil, "inc-a", vclock.Write{Value: []byte("v")})
	for _, c := range []struct {
		r   Response
		err error
	}{
		{Response{Siblings: s, Context: s.Context(), Replies: 2}, nil},
		{Response{}, &QuorumError{Op: "put", Need: 2, Got: 1, Failures: map[string]error{"n2": ErrReplicaDown}}},
		{Response{}, ErrBadQuorum},
		{Response{AEAnswer: &AEAnswer{Hashes: []uint64{1, 1 << 63, 0}}}, nil},
		{Response{More: true, AEAnswer: &AEAnswer{Digests: []KeyDigest{{Key: []byte("a"), Digest: 7}, {Key: []byte("b"), Digest: 1 << 60, Tombstone: true}}}}, nil},
		{Response{Batch: []Entry{{Key: []byte("a"), Siblings: s}}, More: true}, nil},
		{Response{Stats: []byte{0x81, 0xa4, 'n', 'o', 'd', 'e', 0xa2, 'n', '2'}}, nil},
		{Response{}, ErrNoTree},
	} {
		b, err := MarshalReply(c.r, c.err)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range oldReflectMessages(f)[len(goldenRequests()):] {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalReply("peer", b)
		if err != nil {
			return // any error is fine; a panic is not
		}
		again, err := MarshalReply(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := UnmarshalReply("peer", again)
		if err != nil || !cmp.Equal(r, r2, cmpopts.EquateEmpty(), cmpopts.IgnoreUnexported(Entry{}, KeyDigest{})) {
			t.Fatalf("round trip: %+v, %v; want %+v", r2, err, r)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	for _, fr := range []frame{
		{typ: frameHello, body: helloBody(hello{self: "n1", peer: "n2"})},
		{typ: frameRequest, id: 7, budget: 1e9, body: []byte{1, 2, 3}},
		{typ: frameResponse, id: 7, body: []byte{4}},
	} {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := writeFrame(w, &fr); err != nil {
			f.Fatal(err)
		}
		_ = w.Flush()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxLen = 1 << 12
		fr, err := readFrame(bufio.NewReader(bytes.NewReader(b)), maxLen)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := writeFrame(w, &fr); err != nil {
			t.Fatal(err)
		}
		_ = w.Flush()
		if !bytes.HasPrefix(b, buf.Bytes()) {
			t.Fatalf("re-encoded frame %x is not a prefix of input %x", buf.Bytes(), b)
		}
	})
}

// TestUnmarshalRequestHostileShapes: a field this version does not know is
// skipped by msgpack with one recursion per nesting level, so 8 MB of
// nested arrays there overflowed the goroutine stack (a fatal error that
// kills the node). Sets of more siblings than any key can hold are
// refused before their (linear, but not free) validity check.
func TestUnmarshalRequestHostileShapes(t *testing.T) {
	deep := []byte{ProtocolVersion, 0x82, 0xa1, 'k', 0x01, 0xa2, 'z', 'z'}
	deep = append(deep, bytes.Repeat([]byte{0x91}, 8<<20)...)
	deep = append(deep, 0xc0)
	if _, err := UnmarshalRequest(deep); !errors.Is(err, ErrProtocol) {
		t.Fatalf("deeply nested unknown field: %v, want ErrProtocol", err)
	}

	many := make(vclock.Siblings, maxWireSiblings+1)
	for i := range many {
		many[i] = vclock.Version{Dot: vclock.Dot{Actor: fmt.Sprintf("a%06d", i), Counter: 1}, Value: []byte("v")}
	}
	for name, req := range map[string]Request{
		"store":   {Kind: KindStore, Key: []byte("k"), Siblings: many},
		"handoff": {Kind: KindHandoff, Batch: []Entry{{Key: []byte("k"), Siblings: many}}},
	} {
		b, err := MarshalRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnmarshalRequest(b); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s of %d siblings: %v, want ErrBadRequest", name, len(many), err)
		}
	}
	b, err := MarshalRequest(Request{Kind: KindStore, Key: []byte("k"), Siblings: many[:maxWireSiblings]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalRequest(b); err != nil {
		t.Fatalf("store of %d siblings: %v", maxWireSiblings, err)
	}
	rb, err := MarshalReply(Response{Siblings: many}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalReply("peer", rb); !errors.Is(err, ErrProtocol) {
		t.Fatalf("reply of %d siblings: %v, want ErrProtocol", len(many), err)
	}
}

// connSeeds returns byte streams a client might send: a hello followed by
// requests, and a few broken variants.
func connSeeds(t testing.TB, self, peer string) [][]byte {
	var seeds [][]byte
	enc := func(frames ...frame) []byte {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		for i := range frames {
			if err := writeFrame(w, &frames[i]); err != nil {
				t.Fatal(err)
			}
		}
		_ = w.Flush()
		return buf.Bytes()
	}
	h := frame{typ: frameHello, body: helloBody(hello{self: self, peer: peer})}
	var reqs []frame
	for i, r := range sampleRequests() {
		b, err := MarshalRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, frame{typ: frameRequest, id: uint64(i + 1), budget: int64(time.Second), body: b})
	}
	seeds = append(seeds, enc(h), enc(append([]frame{h}, reqs...)...), enc(h, reqs[2]))
	seeds = append(seeds, enc(frame{typ: frameHello, body: helloBody(hello{self: self, peer: "elsewhere"})}, reqs[0]))
	deep := append([]byte{ProtocolVersion, 0x81, 0xa2, 'z', 'z'}, bytes.Repeat([]byte{0x91}, 4000)...)
	seeds = append(seeds, enc(h, frame{typ: frameRequest, id: 9, body: append(deep, 0xc0)}))
	return seeds
}

// fuzzServer is one serving transport per fuzzing process.
var fuzzServer struct {
	once sync.Once
	tr   *TCPTransport
	addr string
	err  error
}

const fuzzMaxFrame = 64 << 10

// fuzzCallTimeout bounds one call, and the fake peer's connection, in the
// connection fuzz targets: an input may make a call fail, never hang.
const fuzzCallTimeout = 2 * time.Second

// FuzzRPCConnection feeds raw bytes, as the client side of a real TCP
// connection, to a serving transport: the hello, then frames. The server
// must not panic, must hold no more than its frame budget, must answer
// with its own hello before anything else, and must free the budget once
// the connection is gone.
func FuzzRPCConnection(f *testing.F) {
	for _, s := range connSeeds(f, "cli", "srv") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzServer.once.Do(func() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				fuzzServer.err = err
				return
			}
			cfg := DefaultTCPConfig()
			cfg.Self = "srv"
			cfg.Resolve = func(string) (string, bool) { return "", false }
			cfg.MaxFrameBytes = fuzzMaxFrame
			cfg.IdleTimeout, cfg.FrameTimeout = time.Second, time.Second
			h := HandlerFunc(func(_ context.Context, _ string, req Request) (Response, error) {
				return Response{Siblings: req.Siblings}, nil
			})
			fuzzServer.tr, fuzzServer.err = NewTCPTransport(cfg)
			if fuzzServer.err == nil {
				fuzzServer.addr = ln.Addr().String()
				go func() { _ = fuzzServer.tr.Serve(ln, h) }()
			}
		})
		if fuzzServer.err != nil {
			t.Fatal(fuzzServer.err)
		}
		srv := fuzzServer.tr
		nc, err := net.Dial("tcp", fuzzServer.addr)
		if err != nil {
			t.Fatal(err)
		}
		// Close with a reset: tens of thousands of connections in
		// TIME_WAIT would exhaust the ephemeral ports.
		_ = nc.(*net.TCPConn).SetLinger(0)
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			_, _ = nc.Write(data)
			_ = nc.(*net.TCPConn).CloseWrite()
		}()
		br := bufio.NewReader(nc)
		first := true
		for range 64 {
			f, err := readFrame(br, 2*fuzzMaxFrame)
			if err != nil {
				break
			}
			if first {
				h, err := parseHello(f.body)
				if f.typ != frameHello || err != nil || h.self != "srv" {
					t.Fatalf("server's first frame: type %d, %+v, %v", f.typ, h, err)
				}
				first = false
				continue
			}
			if f.typ != frameResponse {
				t.Fatalf("server sent frame type %d", f.typ)
			}
			if _, err := UnmarshalReply("srv", f.body); err != nil {
				// The server's own replies always decode; errors come
				// back as the handler's or the decoder's sentinel.
				var re *RemoteError
				if !errors.As(err, &re) {
					t.Fatalf("server reply does not decode: %v", err)
				}
			}
		}
		_ = nc.Close()
		if s := srv.Stats(); s.BufferedBytes > srv.cfg.MaxBufferedBytes {
			t.Fatalf("server holds %d frame bytes, budget %d", s.BufferedBytes, srv.cfg.MaxBufferedBytes)
		}
		testkit.Eventually(t, socketWait, "the server to release the closed connection's frame bytes", func() error {
			if n := srv.Stats().BufferedBytes; n != 0 {
				return fmt.Errorf("it still holds %d", n)
			}
			return nil
		})
	})
}

// FuzzRPCClientConnection feeds raw bytes, as the server side of a real
// TCP connection, to a calling transport after it sent its hello. The
// client must not panic, and a call may succeed only if the bytes began
// with a hello from the node it called, naming it.
func FuzzRPCClientConnection(f *testing.F) {
	var srvSeeds [][]byte
	for _, r := range []struct {
		resp Response
		err  error
	}{{Response{Replies: 1}, nil}, {Response{}, ErrBadRequest}} {
		b, err := MarshalReply(r.resp, r.err)
		if err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		_ = writeFrame(w, &frame{typ: frameHello, body: helloBody(hello{self: "srv", peer: "cli"})})
		_ = writeFrame(w, &frame{typ: frameResponse, id: 1, body: b})
		_ = w.Flush()
		srvSeeds = append(srvSeeds, buf.Bytes())
	}
	for _, s := range srvSeeds {
		f.Add(s)
	}
	f.Add(connSeeds(f, "n3", "cli")[0])
	f.Fuzz(func(t *testing.T, data []byte) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		// Every input ends within fuzzCallTimeout and leaves nothing
		// running: the server goroutine is waited for, the listener and
		// the transport are closed, so no call, socket or goroutine
		// outlives its input.
		served := make(chan struct{})
		go func() {
			defer close(served)
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			_ = nc.(*net.TCPConn).SetLinger(0) // see FuzzRPCConnection
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(fuzzCallTimeout))
			if _, err := readHello(bufio.NewReader(nc)); err != nil {
				return
			}
			_, _ = nc.Write(data)
		}()
		addr := ln.Addr().String()
		cfg := DefaultTCPConfig()
		cfg.Self = "cli"
		cfg.Resolve = func(string) (string, bool) { return addr, true }
		cfg.MaxFrameBytes = fuzzMaxFrame
		cfg.ConnsPerPeer = 1
		cli, err := NewTCPTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), fuzzCallTimeout)
		_, err = cli.Call(ctx, "srv", Request{Kind: KindPing})
		cancel()
		_ = cli.Close()
		_ = ln.Close() // a call that never dialed leaves Accept waiting
		<-served
		if err == nil {
			h, herr := readHello(bufio.NewReader(bytes.NewReader(data)))
			if herr != nil || h != (hello{self: "srv", peer: "cli"}) {
				t.Fatalf("call succeeded though the server's hello was %+v, %v", h, herr)
			}
		}
	})
}
