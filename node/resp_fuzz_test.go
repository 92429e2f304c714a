package node

import (
	"bufio"
	"bytes"
	"net"
	"testing"

	"github.com/tidwall/redcon"
)

// recConn is a redcon.Conn that records replies in memory, so the command
// handler can be driven without sockets.
type recConn struct {
	*redcon.Writer
	buf    *bytes.Buffer
	closed bool
}

var _ redcon.Conn = (*recConn)(nil)

func newRecConn() *recConn {
	b := &bytes.Buffer{}
	return &recConn{Writer: redcon.NewWriter(b), buf: b}
}

func (c *recConn) RemoteAddr() string             { return "test" }
func (c *recConn) Close() error                   { c.closed = true; return nil }
func (c *recConn) Context() any                   { return nil }
func (c *recConn) SetContext(any)                 {}
func (c *recConn) SetReadBuffer(int)              {}
func (c *recConn) Detach() redcon.DetachedConn    { panic("not supported") }
func (c *recConn) ReadPipeline() []redcon.Command { return nil }
func (c *recConn) PeekPipeline() []redcon.Command { return nil }
func (c *recConn) NetConn() net.Conn              { return nil }

// FuzzRESPCommand feeds arbitrary commands (arguments separated by NUL) to
// the handler: it must never panic, must answer every command with exactly
// one well-formed reply, and must store nothing over the limits.
func FuzzRESPCommand(f *testing.F) {
	for _, seed := range []string{
		"PING", "PING\x00x", "ECHO\x00e", "SET\x00k\x00v", "GET\x00k", "DEL\x00k\x00k2",
		"EXISTS\x00k", "MGET\x00a\x00b", "INFO", "CONFIG\x00GET\x00*", "COMMAND\x00COUNT",
		"CLIENT\x00SETNAME\x00x", "SELECT\x000", "SET\x00k\x00v\x00EX\x0010", "QUIT", "nope\x00\r\n",
		"SET\x00\x00v", "CONFIG\x00GET\x00[", "get",
	} {
		f.Add([]byte(seed))
	}
	kv := newFakeKV()
	s := newRESPServer(kv, func() respInfo { return respInfo{Node: "n1"} }, newMetrics(metricSources{}), testLimits, testLogger(f))
	f.Fuzz(func(t *testing.T, in []byte) {
		args := bytes.Split(in, []byte{0})
		if len(args[0]) == 0 {
			return // redcon never hands over a command without a name
		}
		c := newRecConn()
		s.handle(c, redcon.Command{Args: args})
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(c.buf)
		if _, err := readReply(rd); err != nil {
			t.Fatalf("%q: reply %q: %v", args, c.buf.Bytes(), err)
		}
		if rd.Buffered() != 0 {
			t.Fatalf("%q: more than one reply", args)
		}
		kv.mu.Lock()
		defer kv.mu.Unlock()
		for k, sib := range kv.data {
			if len(k) == 0 || len(k) > testLimits.MaxKeyBytes {
				t.Fatalf("stored a key of %d bytes", len(k))
			}
			for _, v := range sib {
				if len(v.Value) > testLimits.MaxValueBytes {
					t.Fatalf("stored a value of %d bytes", len(v.Value))
				}
			}
		}
	})
}
