package replica

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frames on an internal RPC connection (see doc.go for the whole format):
//
//	uint32 length  bytes after this field, big endian; at most MaxFrameBytes
//	uint8  type    frameHello, frameRequest or frameResponse
//	uint64 id      request ID, echoed by its response; 0 for hello
//	int64  budget  request only: nanoseconds left until the caller's
//	               deadline, 0 for none (relative, so clocks need not agree)
//	body           hello: see helloBody;
//	               request: MarshalRequest; response: MarshalReply

const (
	frameHello    byte = 1
	frameRequest  byte = 2
	frameResponse byte = 3
)

// frameHeader is the fixed part after the length: type and id.
const frameHeader = 1 + 8

// frame is one decoded frame.
type frame struct {
	typ    byte
	id     uint64
	budget int64
	body   []byte
}

// encodedLen is the frame's length field: everything after it.
func (f *frame) encodedLen() int {
	n := frameHeader + len(f.body)
	if f.typ == frameRequest {
		n += 8
	}
	return n
}

// writeFrame writes f to w (the caller holds the connection's write lock
// and flushes). The header is built in w's free buffer: a local array
// handed to Write would escape to the heap, one allocation per frame.
func writeFrame(w *bufio.Writer, f *frame) error {
	hdr := w.AvailableBuffer()
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(f.encodedLen()))
	hdr = append(hdr, f.typ)
	hdr = binary.BigEndian.AppendUint64(hdr, f.id)
	if f.typ == frameRequest {
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(f.budget))
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(f.body)
	return err
}

// readFrame reads one frame, refusing (before allocating) one longer than
// maxLen with ErrFrameTooLarge, and a malformed header with ErrProtocol.
// io.EOF means the peer closed the connection between frames.
func readFrame(r *bufio.Reader, maxLen int) (frame, error) {
	n, err := readFrameLen(r, maxLen)
	if err != nil {
		return frame{}, err
	}
	return readFrameBody(r, n, false)
}

// readFrameLen reads a frame's length field and checks it against maxLen
// and the header size. io.EOF means the peer closed the connection
// between frames.
func readFrameLen(r *bufio.Reader, maxLen int) (int, error) {
	// Peeked rather than read into a local array, which would escape to
	// the heap: one allocation per frame.
	lb, err := r.Peek(4)
	if err != nil {
		if len(lb) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // cut off inside the length, as io.ReadFull says
		}
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(lb))
	_, _ = r.Discard(4) // peeked: cannot fail
	if n > maxLen {
		return 0, fmt.Errorf("%w: %d bytes exceeds %d", ErrFrameTooLarge, n, maxLen)
	}
	if n < frameHeader {
		return 0, fmt.Errorf("%w: frame of %d bytes is shorter than its header", ErrProtocol, n)
	}
	return n, nil
}

// readFrameBody reads the n bytes after a frame's length field and parses
// them. Unless reserved, the buffer grows as the bytes arrive (see readN);
// a caller that reserved n bytes of its frame budget for this frame gets
// one allocation of n, without the garbage of growing.
func readFrameBody(r *bufio.Reader, n int, reserved bool) (frame, error) {
	var buf []byte
	var err error
	if reserved {
		buf = make([]byte, n)
		_, err = io.ReadFull(r, buf)
	} else {
		buf, err = readN(r, n)
	}
	if err != nil {
		return frame{}, fmt.Errorf("%w: truncated frame: %w", ErrProtocol, err)
	}
	return parseFrame(buf)
}

// frameChunk is the first allocation for a frame's bytes.
const frameChunk = 64 << 10

// readN reads exactly n bytes, growing its buffer as they arrive (doubling
// from frameChunk) rather than trusting the length prefix up front: a peer
// announcing a frame near MaxFrameBytes and then sending nothing would
// otherwise pin that much memory per connection, hello frames included.
func readN(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, frameChunk))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	for len(buf) < n {
		grow := min(n-len(buf), len(buf))
		buf = append(buf, make([]byte, grow)...)
		if _, err := io.ReadFull(r, buf[len(buf)-grow:]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// parseFrame decodes a frame's bytes after the length field.
func parseFrame(buf []byte) (frame, error) {
	if len(buf) < frameHeader {
		return frame{}, fmt.Errorf("%w: frame of %d bytes is shorter than its header", ErrProtocol, len(buf))
	}
	f := frame{typ: buf[0], id: binary.BigEndian.Uint64(buf[1:])}
	rest := buf[frameHeader:]
	switch f.typ {
	case frameRequest:
		if len(rest) < 8 {
			return frame{}, fmt.Errorf("%w: request frame without a budget", ErrProtocol)
		}
		f.budget = int64(binary.BigEndian.Uint64(rest))
		if f.budget < 0 {
			return frame{}, fmt.Errorf("%w: negative budget", ErrProtocol)
		}
		rest = rest[8:]
	case frameHello, frameResponse:
	default:
		return frame{}, fmt.Errorf("%w: unknown frame type %d", ErrProtocol, f.typ)
	}
	f.body = rest
	return f, nil
}

// maxHelloBytes bounds a hello frame: it comes before the peer has said
// who it is, so it gets no share of the frame budget.
const maxHelloBytes = 4096

// maxNameBytes bounds a node name in a hello.
const maxNameBytes = 1024

// hello is the first frame in each direction. The caller names itself and
// the node it meant to dial; the server answers with a hello naming itself
// and the caller it was told. Each side checks that the other is the node
// it expects, so a call can never be answered, and acknowledged, by a node
// other than the one it was meant for (an address that resolves to the
// wrong host, a stale gossip address, a loopback address on another host).
type hello struct {
	self string // the sender's node name
	peer string // the node the sender believes it talks to
}

// helloBody encodes a hello: the protocol version byte, then self and
// peer, each a uint16 big-endian length and the name's bytes.
func helloBody(h hello) []byte {
	b := make([]byte, 0, 1+2+len(h.self)+2+len(h.peer))
	b = append(b, ProtocolVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.self)))
	b = append(b, h.self...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.peer)))
	return append(b, h.peer...)
}

// parseHello decodes a hello body. Both names must be present and at most
// maxNameBytes long.
func parseHello(b []byte) (hello, error) {
	if len(b) < 1 {
		return hello{}, fmt.Errorf("%w: empty hello", ErrProtocol)
	}
	if b[0] != ProtocolVersion {
		return hello{}, fmt.Errorf("%w: peer speaks version %d, want %d", ErrProtocol, b[0], ProtocolVersion)
	}
	rest := b[1:]
	name := func(what string) (string, error) {
		if len(rest) < 2 {
			return "", fmt.Errorf("%w: hello without the %s's name", ErrProtocol, what)
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if n == 0 || n > maxNameBytes || n > len(rest) {
			return "", fmt.Errorf("%w: hello: %s's name of %d bytes (%d left, at most %d)", ErrProtocol, what, n, len(rest), maxNameBytes)
		}
		s := string(rest[:n])
		rest = rest[n:]
		return s, nil
	}
	var h hello
	var err error
	if h.self, err = name("sender"); err != nil {
		return hello{}, err
	}
	if h.peer, err = name("receiver"); err != nil {
		return hello{}, err
	}
	if len(rest) != 0 {
		return hello{}, fmt.Errorf("%w: hello: %d trailing bytes", ErrProtocol, len(rest))
	}
	return h, nil
}
