package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// dialRESPTLS opens a Redis-protocol connection over TLS to s.
func dialRESPTLS(c *securedCluster, s *server) (*respConn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	tc, err := tls.DialWithDialer(d, "tcp", s.addrs["resp"], c.tlsConfig(nil))
	if err != nil {
		return nil, err
	}
	return &respConn{c: tc, r: bufio.NewReader(tc)}, nil
}

// silentClients opens a TCP connection to each TLS port of s and sends
// nothing: each port must hang up once its handshake deadline (5 s) has
// passed, or one host could hold the node's file descriptors for good.
func silentClients(t *testing.T, s *server) {
	var conns []net.Conn
	for _, port := range []string{"http", "resp", "rpc"} {
		conn, err := net.DialTimeout("tcp", s.addrs[port], 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	for i, port := range []string{"http", "resp", "rpc"} {
		// Far past the deadline, for a loaded machine.
		_ = conns[i].SetReadDeadline(time.Now().Add(60 * time.Second))
		_, err := io.Copy(io.Discard, io.LimitReader(conns[i], 1<<20))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s's %s port kept a connection that never began its TLS handshake for 60 s", s.name, port)
		}
	}
}

// ended fails unless the peer closes conn (EOF or reset) before a 10 s
// read deadline: a connection the server kept open after a protocol error
// is what a spinning or stuck reader looks like from outside.
func ended(t *testing.T, what string, conn net.Conn, r io.Reader) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, io.LimitReader(r, 1<<20))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: the server kept the connection open (read %d more bytes)", what, n)
	}
}

// hostileRESP sends s's RESP port the inputs that once panicked or pinned
// a core, with and without TLS, and checks token auth on RESP.
func hostileRESP(t *testing.T, c *securedCluster, s *server, want map[string]string) {
	raw := []struct{ name, in string }{
		{"bulk length overflow", "*1\r\n$9223372036854775807\r\n"},
		{"multibulk count", "*9223372036854775807\r\n"},
		{"negative bulk length", "*1\r\n$-9223372036854775808\r\n"},
	}
	for _, in := range raw {
		// Over TLS: a protocol error, then the connection closes.
		rc, err := dialRESPTLS(c, s)
		if err != nil {
			t.Fatal(err)
		}
		_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(rc.c, in.in); err != nil {
			t.Fatal(err)
		}
		reply, err := rc.reply(0)
		if e, ok := reply.(respError); err != nil || !ok || !strings.HasPrefix(string(e), "ERR Protocol error") {
			t.Errorf("%s over TLS: reply %q %v, want -ERR Protocol error", in.name, reply, err)
		}
		ended(t, in.name+" over TLS", rc.c, rc.r)
		rc.Close()

		// In plaintext against the TLS port: no RESP answer at all.
		pc, err := net.DialTimeout("tcp", s.addrs["resp"], 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = pc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(pc, in.in); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.LimitReader(pc, 4096))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s in plaintext: the TLS port kept the connection open", in.name)
		}
		if len(got) > 0 && strings.ContainsRune("+-:$*", rune(got[0])) {
			t.Errorf("%s in plaintext: the TLS port answered in RESP: %q", in.name, got)
		}
		pc.Close()
	}

	// An inline line over the 64 KiB limit, with no end: refused. The
	// server may close before it read all of it, so a reset is as good
	// as the protocol error; a connection left open is not.
	rc, err := dialRESPTLS(c, s)
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := rc.c.Write(bytes.Repeat([]byte("A"), 70<<10)); err == nil {
		if reply, err := rc.reply(0); err == nil {
			if e, ok := reply.(respError); !ok || !strings.HasPrefix(string(e), "ERR Protocol error") {
				t.Errorf("long inline line: reply %q, want -ERR Protocol error", reply)
			}
		}
	}
	ended(t, "long inline line", rc.c, rc.r)
	rc.Close()

	// Tokens on RESP.
	rc, err = dialRESPTLS(c, s)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	expect := func(wantReply any, args ...string) {
		t.Helper()
		got, err := rc.do(args...)
		if err != nil {
			t.Fatalf("%v: %v", args[0], err)
		}
		match := false
		switch w := wantReply.(type) {
		case respError:
			e, ok := got.(respError)
			match = ok && strings.HasPrefix(string(e), string(w))
		case []byte:
			match = bytes.Equal(asBytes(got), w)
		default:
			match = got == wantReply
		}
		if !match {
			t.Errorf("%q: reply %q, want %q", args, got, wantReply)
		}
	}
	expect(respError("NOAUTH"), "PING")
	expect(respError("NOAUTH"), "GET", "key-0001")
	expect(respError("NOAUTH"), "SET", "resp-noauth", "x")
	expect(respError("WRONGPASS"), "AUTH", "not-a-token")
	expect(respError("WRONGPASS"), "AUTH", "app", c.tokens["admin"]) // a real token under another name
	expect(respError("NOAUTH"), "GET", "key-0001")
	expect("OK", "AUTH", c.tokens["read"])
	expect([]byte(want["key-0002"]), "GET", "key-0002")
	expect(respError("NOPERM"), "SET", "resp-read", "x")
	expect(respError("NOPERM"), "DEL", "key-0002")
	expect(respError("WRONGPASS"), "AUTH", "viewer", "wrong") // leaves the read token in force
	expect([]byte(want["key-0003"]), "GET", "key-0003")
	expect("OK", "AUTH", "app", c.tokens["read-write"])
	expect("OK", "SET", "resp-key", "set over resp")
	want["resp-key"] = "set over resp"
	expect([]byte("set over resp"), "GET", "resp-key")
}
