package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// respMaxLine bounds one reply line (status, error or length header).
const respMaxLine = 64 << 10

// respDriver speaks GET and SET (docs/resp.md) over one connection, dialled
// again after any failure.
type respDriver struct {
	addr    string
	timeout time.Duration
	conn    net.Conn
	rd      *bufio.Reader
	wr      *bufio.Writer
	// tls, when set, wraps each connection (certs_client.go).
	tls     *tls.Config
	token   string // sent with AUTH on every new connection when not empty
	scratch []byte // a header being formatted
}

// appendRESPHeader appends a RESP header line: kind ('*' array, '$' bulk
// string), n and CRLF.
func appendRESPHeader(dst []byte, kind byte, n int) []byte {
	dst = append(dst, kind)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

var _ benchDriver = (*respDriver)(nil)

func newRESPDriver(addr string, timeout time.Duration) *respDriver {
	return &respDriver{addr: addr, timeout: timeout}
}

// errRESPNil is a nil bulk reply: GET of a key that has no live value.
var errRESPNil = errors.New("nil reply")

func (d *respDriver) read(ctx context.Context, key string) (bool, error) {
	err := d.do(ctx, []byte("GET"), []byte(key))
	if errors.Is(err, errRESPNil) {
		return false, nil
	}
	return err == nil, err
}

func (d *respDriver) update(ctx context.Context, key string, value []byte) error {
	err := d.do(ctx, []byte("SET"), []byte(key), value)
	if errors.Is(err, errRESPNil) {
		return &benchError{kind: errOther, err: errors.New("SET answered nil")}
	}
	return err
}

// do sends one command and reads its reply: nil for a status or bulk
// string, errRESPNil for a nil bulk string. The connection is dropped after
// anything but a reply (timeout, reset, garbage), since its state is unknown.
func (d *respDriver) do(ctx context.Context, args ...[]byte) error {
	if d.conn == nil {
		if err := d.dial(ctx); err != nil {
			return err
		}
	}
	conn := d.conn
	if err := conn.SetDeadline(time.Now().Add(d.timeout)); err != nil {
		d.close()
		return classifyNetErr(err)
	}
	// Ctrl-C ends a blocked read at once; the answer is then discarded.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// Errors of the buffered writes come back from Flush.
	d.scratch = appendRESPHeader(d.scratch[:0], '*', len(args))
	_, _ = d.wr.Write(d.scratch)
	for _, a := range args {
		d.scratch = appendRESPHeader(d.scratch[:0], '$', len(a))
		_, _ = d.wr.Write(d.scratch)
		_, _ = d.wr.Write(a)
		_, _ = d.wr.WriteString("\r\n")
	}
	if err := d.wr.Flush(); err != nil {
		d.close()
		return classifyNetErr(err)
	}
	isReply, err := d.reply()
	if !isReply {
		d.close()
	}
	return err
}

func (d *respDriver) dial(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", d.addr)
	if err != nil {
		return classifyNetErr(err)
	}
	if conn, err = d.secure(dctx, conn); err != nil {
		return err
	}
	d.conn = conn
	d.rd = bufio.NewReaderSize(conn, respMaxLine)
	d.wr = bufio.NewWriterSize(conn, 64<<10)
	if d.token != "" {
		if err := d.do(ctx, []byte("AUTH"), []byte(d.token)); err != nil {
			d.close()
			return err
		}
	}
	return nil
}

// reply reads one reply; isReply is false when no well-formed reply
// arrived. Error replies are classified: a quorum not met and CLUSTERDOWN
// (not joined yet) are the RESP form of HTTP's 503.
func (d *respDriver) reply() (isReply bool, err error) {
	line, err := d.line()
	if err != nil {
		return false, err
	}
	if len(line) == 0 {
		return false, respProtocolError("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return true, nil
	case '-':
		msg := string(line[1:])
		kind := errOther
		if strings.HasPrefix(msg, "CLUSTERDOWN") || strings.Contains(msg, "quorum not met") {
			kind = errQuorum
		}
		return true, &benchError{kind: kind, err: errors.New(msg)}
	case '$':
		n, err := strconv.ParseInt(string(line[1:]), 10, 64)
		if err != nil || n < -1 || n > benchMaxAnswerBytes {
			return false, respProtocolError(fmt.Sprintf("bad bulk length %.40q", line[1:]))
		}
		if n == -1 {
			return true, errRESPNil
		}
		if _, err := io.CopyN(io.Discard, d.rd, n); err != nil {
			return false, classifyNetErr(err)
		}
		var crlf [2]byte
		if _, err := io.ReadFull(d.rd, crlf[:]); err != nil {
			return false, classifyNetErr(err)
		}
		if crlf != [2]byte{'\r', '\n'} {
			return false, respProtocolError("bulk data not followed by CRLF")
		}
		return true, nil
	}
	return false, respProtocolError(fmt.Sprintf("unexpected reply %.40q", line))
}

// line reads one CRLF-terminated line, at most respMaxLine bytes.
func (d *respDriver) line() ([]byte, error) {
	line, err := d.rd.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, respProtocolError("reply line longer than 64 KiB")
	}
	if err != nil {
		return nil, classifyNetErr(err)
	}
	line, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return nil, respProtocolError("reply line not ended by CRLF")
	}
	return line, nil
}

func respProtocolError(msg string) error {
	return &benchError{kind: errOther, err: errors.New("protocol: " + msg)}
}

func (d *respDriver) close() {
	if d.conn == nil {
		return
	}
	_ = d.conn.Close()
	d.conn, d.rd, d.wr = nil, nil, nil
}
