package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	bin "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// rpcFrame encodes one internal RPC frame: length, type, id, then for a
// request the budget, then the body.
func rpcFrame(typ byte, id uint64, body []byte) []byte {
	var b []byte
	n := 1 + 8 + len(body)
	if typ == 2 {
		n += 8
	}
	b = bin.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, typ)
	b = bin.BigEndian.AppendUint64(b, id)
	if typ == 2 {
		b = bin.BigEndian.AppendUint64(b, 0)
	}
	return append(b, body...)
}

// rpcHello is the hello a caller sends: protocol version 2, its name, the
// name of the node it means to reach.
func rpcHello(self, peer string) []byte {
	body := []byte{2}
	body = bin.BigEndian.AppendUint16(body, uint16(len(self)))
	body = append(body, self...)
	body = bin.BigEndian.AppendUint16(body, uint16(len(peer)))
	return rpcFrame(1, 0, append(body, peer...))
}

// hostileRPC sends s's RPC port a hello claiming to be n1 followed by a
// deeply nested msgpack request and by the header of a 60 MiB - 1 frame,
// three ways: TLS without a client certificate, TLS with the CLI's
// certificate, and no TLS. The port must refuse each before answering a
// hello.
func hostileRPC(t *testing.T, c *securedCluster, s *server, want map[string]string, deadline time.Time) {
	nested := append([]byte{2}, bytes.Repeat([]byte{0x91}, 8<<20)...)
	deep := append(rpcHello("n1", s.name), rpcFrame(2, 1, nested)...)
	big := rpcHello("n1", s.name)
	big = bin.BigEndian.AppendUint32(big, 60<<20-1)
	big = append(big, 2)

	cli, err := tls.LoadX509KeyPair(filepath.Join(c.certs, "client.crt"), filepath.Join(c.certs, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	// A node certificate of the same name from another CA, as anyone can
	// make with the same tool.
	otherCA := filepath.Join(c.dir, "other-ca")
	if out, err := exec.Command(binary, "certs", "--dir", otherCA, "n1").CombinedOutput(); err != nil {
		t.Fatalf("ringkv certs for another CA: %v\n%s", err, out)
	}
	foreign, err := tls.LoadX509KeyPair(filepath.Join(otherCA, "n1.crt"), filepath.Join(otherCA, "n1.key"))
	if err != nil {
		t.Fatal(err)
	}
	dialers := []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"TLS without a certificate", func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.addrs["rpc"], c.tlsConfig(nil))
		}},
		{"TLS with the CLI's certificate", func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.addrs["rpc"], c.tlsConfig(&cli))
		}},
		{"TLS with n1's name from another CA", func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.addrs["rpc"], c.tlsConfig(&foreign))
		}},
		{"plaintext", func() (net.Conn, error) { return net.DialTimeout("tcp", s.addrs["rpc"], 10*time.Second) }},
	}
	for _, d := range dialers {
		for _, payload := range []struct {
			name string
			b    []byte
			tail int // bytes of the declared body sent after b
		}{{"nested msgpack", deep, 0}, {"60 MiB - 1 frame", big, 60<<20 - 2}} {
			what := payload.name + " over " + d.name
			conn, err := d.dial()
			if err != nil {
				// A TLS 1.2 peer would learn of the refusal here; with
				// 1.3 it comes with the first read.
				t.Logf("%s: refused at the handshake: %v", what, err)
				continue
			}
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			werr := writeAll(conn, payload.b, payload.tail)
			got, rerr := io.ReadAll(io.LimitReader(conn, 4096))
			conn.Close()
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				t.Errorf("%s: the RPC port kept the connection open (write: %v)", what, werr)
			}
			if len(got) >= 5 && got[4] == 1 {
				t.Errorf("%s: the RPC port answered with a hello: %q", what, got[:min(len(got), 64)])
			}
			t.Logf("%s: write %v, read %d bytes, %v", what, werr, len(got), rerr)
		}
	}
	stolenNodeKey(t, c, s, nested)
	// Peers still replicate through the port that refused all of that.
	eventually(t, deadline, "a write at w=all after the RPC attacks", func() error {
		code, _, body, err := c.do(http.MethodPut, s, "/v1/kv/after-rpc?w=all", c.tokens["read-write"], nil, []byte("x"))
		if err == nil && code != http.StatusNoContent {
			err = fmt.Errorf("PUT: %d %s", code, body)
		}
		return err
	})
	want["after-rpc"] = "x"
}

// stolenNodeKey attacks s's RPC port as a holder of n1's key would: a
// hello naming another node is refused; as n1 itself the hello is
// answered (which shows the frames this test builds are well formed), a
// deeply nested request is refused without taking the node down, and a
// frame of 60 MiB - 1 bytes sent but for its last byte is abandoned.
func stolenNodeKey(t *testing.T, c *securedCluster, s *server, nested []byte) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.certs, "n1.crt"), filepath.Join(c.certs, "n1.key"))
	if err != nil {
		t.Fatal(err)
	}
	dial := func() net.Conn {
		t.Helper()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.addrs["rpc"], c.tlsConfig(&cert))
		if err != nil {
			t.Fatalf("TLS with n1's certificate: %v", err)
		}
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		return conn
	}

	conn := dial()
	werr := writeAll(conn, rpcHello("n3", s.name), 0)
	got, rerr := io.ReadAll(io.LimitReader(conn, 4096))
	conn.Close()
	var ne net.Error
	if errors.As(rerr, &ne) && ne.Timeout() {
		t.Errorf("n1's certificate claiming n3: the RPC port kept the connection open (write: %v)", werr)
	}
	if len(got) >= 5 && got[4] == 1 {
		t.Errorf("n1's certificate claiming n3: answered with a hello %q", got[:min(len(got), 64)])
	}

	conn = dial()
	defer conn.Close()
	br := bufio.NewReader(conn)
	if err := writeAll(conn, rpcHello("n1", s.name), 0); err != nil {
		t.Fatal(err)
	}
	typ, _, body, err := readRPCFrame(br)
	var id uint64
	if err != nil || typ != 1 || !bytes.Contains(body, []byte(s.name)) {
		t.Fatalf("hello as n1: frame type %d body %q %v, want %s's hello", typ, body, err, s.name)
	}
	if err := writeAll(conn, rpcFrame(2, 1, nested), 0); err != nil {
		t.Fatalf("nested request as n1: %v", err)
	}
	typ, id, body, err = readRPCFrame(br)
	switch {
	case err == nil && (typ != 3 || id != 1):
		t.Errorf("nested request as n1: answered with frame type %d id %d, want the response to 1", typ, id)
	case err == nil:
		t.Logf("nested request as n1: answered %q", body[:min(len(body), 120)])
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("nested request as n1: neither answered nor closed: %v", err)
	default:
		t.Logf("nested request as n1: connection closed: %v", err)
	}

	conn2 := dial()
	defer conn2.Close()
	big := rpcHello("n1", s.name)
	big = bin.BigEndian.AppendUint32(big, 60<<20-1)
	big = append(big, 2)
	if err := writeAll(conn2, big, 60<<20-3); err != nil {
		t.Logf("60 MiB - 1 frame as n1: %v", err)
	}
}

// readRPCFrame reads one frame of at most 1 MiB: its type, its id and
// what follows the id.
func readRPCFrame(br *bufio.Reader) (typ byte, id uint64, body []byte, err error) {
	var hdr [13]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := int(bin.BigEndian.Uint32(hdr[:4]))
	if n < 9 || n > 1<<20 {
		return 0, 0, nil, fmt.Errorf("frame length %d", n)
	}
	body = make([]byte, n-9)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, 0, nil, err
	}
	return hdr[4], bin.BigEndian.Uint64(hdr[5:]), body, nil
}

// writeAll writes b and then tail zero bytes in 1 MiB chunks, stopping at
// the first error (the server hanging up is the expected end).
func writeAll(conn net.Conn, b []byte, tail int) error {
	if _, err := conn.Write(b); err != nil {
		return err
	}
	chunk := make([]byte, 1<<20)
	for tail > 0 {
		n := min(tail, len(chunk))
		if _, err := conn.Write(chunk[:n]); err != nil {
			return err
		}
		tail -= n
	}
	return nil
}
