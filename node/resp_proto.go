package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The RESP request parser. redcon's reader cannot face outside bytes: it
// adds a declared bulk length to an index unchecked (one header overflows
// it and panics the process), loops over a declared multibulk count even
// when no bytes back it (one header spins a core forever), and rescans its
// whole buffer, recursively, on every read (a long line fed slowly is
// quadratic in CPU and stack). This parser checks every header before it
// acts on it, with Redis's limits, never allocates for what was only
// declared, and looks at each received byte a bounded number of times.

// Redis's limits on what one request may declare (server.h).
const (
	// respMaxInline bounds an inline command and every header line
	// (PROTO_INLINE_MAX_SIZE).
	respMaxInline = 64 << 10
	// respMaxMultibulk bounds the elements of one command array (Redis
	// allows 1024*1024 for clients that are not authenticated).
	respMaxMultibulk = 1 << 20
	// respReadBuffer is what a connection buffers from the socket
	// (PROTO_IOBUF_LEN); longer lines are assembled apart.
	respReadBuffer = 16 << 10
	// respLengthDigits bounds the digits of a length: any more is far
	// beyond every limit, and 18 digits cannot overflow an int64.
	respLengthDigits = 18
)

// What one command may take from a client that has not authenticated
// while tokens are configured: room for AUTH and HELLO ... AUTH ...
// SETNAME, not for a value. Redis limits unauthenticated clients the same
// way (CVE-2021-32675), so that a client without a token cannot make the
// node buffer large commands.
const (
	respUnauthArgs  = 10
	respUnauthBytes = 16 << 10
)

// errRESPProtocol marks malformed input; the connection answers it with
// "-ERR Protocol error: ..." and is closed.
var errRESPProtocol = errors.New("node: resp protocol error")

// respProtocolError is malformed input; Msg is what the client is told
// after "Protocol error: ".
type respProtocolError struct{ Msg string }

func (e *respProtocolError) Error() string { return errRESPProtocol.Error() + ": " + e.Msg }

// Is makes errors.Is(err, errRESPProtocol) hold.
func (e *respProtocolError) Is(target error) bool { return target == errRESPProtocol }

func protocolError(format string, a ...any) error {
	return &respProtocolError{Msg: fmt.Sprintf(format, a...)}
}

// respReader reads commands, as RESP arrays of bulk strings or as inline
// (telnet) lines, from one connection. It is not safe for concurrent use.
//
// Memory: the socket buffer, one line of at most respMaxInline, and the
// current command's arguments, which grow with the bytes that arrived
// (never by a declared length alone) and never past max on the wire.
type respReader struct {
	br      *bufio.Reader
	max     int // bytes one command may take on the wire
	maxArgs int // arguments one command may have
	used    int // bytes of the current command read so far
	// full is max once the client authenticated; unauth is set while
	// the smaller limits of a client that has not apply.
	full   int
	unauth bool

	arena []byte   // the current command's arguments, back to back
	ends  []int    // end offset in arena of each argument
	args  [][]byte // views of arena handed to the caller
	line  []byte   // a line longer than br's buffer, being assembled

	peak int // the largest footprint seen, for tests
}

// newRESPReader reads from r; max bounds the wire size of one command
// (headers included).
func newRESPReader(r io.Reader, max int) *respReader {
	return &respReader{br: bufio.NewReaderSize(r, respReadBuffer), max: max, maxArgs: respMaxMultibulk, full: max}
}

// restrict applies the limits of a client that has not authenticated
// (respUnauthArgs, respUnauthBytes) from the next command on.
func (rd *respReader) restrict() {
	rd.unauth, rd.max, rd.maxArgs = true, min(rd.full, respUnauthBytes), respUnauthArgs
}

// allow lifts restrict's limits from the next command on.
func (rd *respReader) allow() {
	rd.unauth, rd.max, rd.maxArgs = false, rd.full, respMaxMultibulk
}

// footprint is roughly what the reader holds in memory, in bytes.
func (rd *respReader) footprint() int {
	return rd.br.Size() + cap(rd.line) + cap(rd.arena) + 8*cap(rd.ends) + 24*cap(rd.args)
}

// next reads the next command. The arguments alias the reader's buffers
// and are valid until the next call. An error wrapping errRESPProtocol is
// malformed input; any other error is the connection's (io.EOF when the
// client left between commands). After an error the reader is done.
func (rd *respReader) next() ([][]byte, error) {
	for {
		rd.reset()
		first, err := rd.br.Peek(1)
		if err != nil {
			return nil, err
		}
		var ok bool
		if first[0] == '*' {
			ok, err = rd.multibulk()
		} else {
			ok, err = rd.inline()
		}
		rd.peak = max(rd.peak, rd.footprint())
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the client left inside a command
			}
			return nil, err
		}
		if ok && len(rd.ends) > rd.maxArgs { // an inline command; arrays are refused by their header
			return nil, rd.tooMany()
		}
		if ok {
			start := 0
			for _, end := range rd.ends {
				rd.args = append(rd.args, rd.arena[start:end:end])
				start = end
			}
			return rd.args, nil
		}
		// An empty array or a blank line: nothing to run, as in Redis.
	}
}

// reset starts a new command, letting go of buffers a large one grew.
func (rd *respReader) reset() {
	rd.used = 0
	if cap(rd.arena) > respReadBuffer {
		rd.arena = nil
	}
	if cap(rd.line) > respReadBuffer {
		rd.line = nil
	}
	if cap(rd.ends) > 1024 {
		rd.ends, rd.args = nil, nil
	}
	rd.arena, rd.ends = rd.arena[:0], rd.ends[:0]
	clear(rd.args) // drop references to the previous command's bytes
	rd.args = rd.args[:0]
}

// readLine reads up to and including '\n' and returns the line without
// it. A line longer than respMaxInline is the protocol error tooBig, found
// as soon as that many bytes are buffered, however slowly they arrive.
// Each byte is searched at most twice: the search resumes where the last
// one stopped, and a full buffer is moved into rd.line.
func (rd *respReader) readLine(tooBig string) ([]byte, error) {
	rd.line = rd.line[:0]
	scanned := 0 // bytes at the head of br's buffer known to hold no '\n'
	for {
		n := rd.br.Buffered()
		buf, _ := rd.br.Peek(n) // no I/O: n bytes are buffered
		if bytes.IndexByte(buf[scanned:], '\n') >= 0 {
			frag, err := rd.br.ReadSlice('\n') // no I/O either
			if err != nil {
				return nil, err
			}
			line := frag
			if len(rd.line) > 0 {
				rd.line = append(rd.line, frag...)
				line = rd.line
			}
			if len(line)-1 > respMaxInline {
				return nil, protocolError("%s", tooBig)
			}
			if err := rd.spend(len(line)); err != nil {
				return nil, err
			}
			return line[:len(line)-1], nil
		}
		if len(rd.line)+n > respMaxInline {
			return nil, protocolError("%s", tooBig)
		}
		scanned = n
		if n == rd.br.Size() {
			rd.line = append(rd.line, buf...)
			_, _ = rd.br.Discard(n)
			scanned = 0
			continue
		}
		if _, err := rd.br.Peek(n + 1); err != nil { // wait for more
			return nil, err
		}
	}
}

// spend counts n more bytes towards the current command.
func (rd *respReader) spend(n int) error {
	rd.used += n
	if rd.used > rd.max {
		return rd.tooLarge()
	}
	return nil
}

func (rd *respReader) tooLarge() error {
	if rd.unauth {
		return protocolError("unauthenticated command is larger than %d bytes: AUTH first", rd.max)
	}
	return protocolError("command is larger than %d bytes (limits.max_key_bytes + limits.max_value_bytes + %d)", rd.max, bodyMargin)
}

// tooMany is a command with more than maxArgs arguments, which only a
// client that has not authenticated can send (maxArgs is otherwise
// respMaxMultibulk, which the header check refuses past first).
func (rd *respReader) tooMany() error {
	return protocolError("unauthenticated multibulk length: at most %d arguments before AUTH", rd.maxArgs)
}

// multibulk reads "*<count>\r\n" and count bulk strings "$<len>\r\n<data>\r\n".
// ok is false for an empty or null array, which Redis skips.
func (rd *respReader) multibulk() (ok bool, err error) {
	line, err := rd.readLine("too big mbulk count string")
	if err != nil {
		return false, err
	}
	count, valid := parseRESPLength(line[1:])
	if !valid || count > respMaxMultibulk {
		return false, protocolError("invalid multibulk length")
	}
	if count > rd.maxArgs {
		return false, rd.tooMany()
	}
	if count <= 0 {
		return false, nil
	}
	for range count {
		line, err := rd.readLine("too big bulk count string")
		if err != nil {
			return false, err
		}
		if len(line) == 0 || line[0] != '$' {
			got := byte('\n')
			if len(line) > 0 {
				got = line[0]
			}
			return false, protocolError("expected '$', got '%s'", printableByte(got))
		}
		size, valid := parseRESPLength(line[1:])
		if !valid || size < 0 {
			return false, protocolError("invalid bulk length")
		}
		if size > rd.max || rd.used+size+2 > rd.max { // refused before a byte of it is read
			return false, rd.tooLarge()
		}
		if err := rd.readBulk(size); err != nil {
			return false, err
		}
	}
	return true, nil
}

// readBulk appends size bytes and their CRLF to the arena. It grows the
// arena with what actually arrived, so a client that declares a large
// argument and sends nothing costs nothing.
func (rd *respReader) readBulk(size int) error {
	need := size + 2
	for need > 0 {
		if len(rd.arena) == cap(rd.arena) {
			rd.arena = slices.Grow(rd.arena, min(need, max(cap(rd.arena), respReadBuffer)))
		}
		room := rd.arena[len(rd.arena):cap(rd.arena)]
		if len(room) > need {
			room = room[:need]
		}
		n, err := rd.br.Read(room)
		rd.arena = rd.arena[:len(rd.arena)+n]
		need -= n
		if err != nil {
			return err
		}
	}
	if !bytes.HasSuffix(rd.arena, []byte("\r\n")) {
		return protocolError("bulk data not followed by CRLF")
	}
	rd.arena = rd.arena[:len(rd.arena)-2]
	rd.ends = append(rd.ends, len(rd.arena))
	rd.used += size + 2 // checked against max before reading
	return nil
}

// inline reads one line and splits it into arguments as redis-server
// does (sdssplitargs). ok is false for a blank line.
func (rd *respReader) inline() (ok bool, err error) {
	line, err := rd.readLine("too big inline request")
	if err != nil {
		return false, err
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if err := rd.splitArgs(line); err != nil {
		return false, err
	}
	return len(rd.ends) > 0, nil
}

// splitArgs splits an inline line on blanks into the arena. An argument
// may be quoted: "..." understands \xHH, \n, \r, \t, \b, \a and \<any>;
// '...' only \'. A closing quote must be followed by a blank or the end.
// A quote opens even in the middle of an argument, as in redis-server.
func (rd *respReader) splitArgs(p []byte) error { //nolint:gocyclo // one pass over redis-server's quoting rules: each branch is one of its cases
	unbalanced := protocolError("unbalanced quotes in request")
	i := 0
	for {
		for i < len(p) && isRESPSpace(p[i]) {
			i++
		}
		if i >= len(p) {
			return nil
		}
		inDouble, inSingle := false, false
		for done := false; !done; i++ {
			switch {
			case inDouble:
				switch {
				case i == len(p):
					return unbalanced
				case p[i] == '\\' && i+3 < len(p) && p[i+1] == 'x' && isHex(p[i+2]) && isHex(p[i+3]):
					rd.arena = append(rd.arena, unhex(p[i+2])<<4|unhex(p[i+3]))
					i += 3
				case p[i] == '\\' && i+1 < len(p):
					i++
					c := p[i]
					switch c {
					case 'n':
						c = '\n'
					case 'r':
						c = '\r'
					case 't':
						c = '\t'
					case 'b':
						c = '\b'
					case 'a':
						c = '\a'
					}
					rd.arena = append(rd.arena, c)
				case p[i] == '"':
					if i+1 < len(p) && !isRESPSpace(p[i+1]) {
						return unbalanced
					}
					done = true
				default:
					rd.arena = append(rd.arena, p[i])
				}
			case inSingle:
				switch {
				case i == len(p):
					return unbalanced
				case p[i] == '\\' && i+1 < len(p) && p[i+1] == '\'':
					rd.arena = append(rd.arena, '\'')
					i++
				case p[i] == '\'':
					if i+1 < len(p) && !isRESPSpace(p[i+1]) {
						return unbalanced
					}
					done = true
				default:
					rd.arena = append(rd.arena, p[i])
				}
			default:
				switch {
				case i == len(p) || isRESPSpace(p[i]):
					done = true
				case p[i] == '"':
					inDouble = true
				case p[i] == '\'':
					inSingle = true
				default:
					rd.arena = append(rd.arena, p[i])
				}
			}
		}
		rd.ends = append(rd.ends, len(rd.arena))
	}
}

// isRESPSpace is C's isspace, which redis-server splits inline commands on.
func isRESPSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// parseRESPLength parses a header's number, which must end in '\r' (the
// '\n' is already gone): an optional '-' and at most respLengthDigits
// digits, no sign '+', no blanks. Redis's string2ll is as strict.
func parseRESPLength(b []byte) (int, bool) {
	b, ok := bytes.CutSuffix(b, []byte("\r"))
	if !ok {
		return 0, false
	}
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > respLengthDigits {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// printableByte renders c for an error line: as is when printable ASCII,
// else as \xHH, so that no reply carries a raw CR or LF.
func printableByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf("\\x%02x", c)
}
