package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	bin "encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSecuredClusterSurvivesHostileInput starts three nodes with TLS,
// tokens and a gossip key, writes keys, then sends each port of a live
// node every kind of input that once crashed, stalled or fooled a node,
// plus unauthenticated and under-privileged attempts. Afterwards every
// node must still serve, membership must be exactly n1..n3, every key
// must read back from every replica, the refusal counters must have
// risen and the data files must be private.
func TestSecuredClusterSurvivesHostileInput(t *testing.T) {
	deadline := testDeadline(t, 5*time.Minute)
	sw := newStopwatch(t)
	c := startSecuredCluster(t, deadline)
	sw.lap("three secured nodes serve")
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	rw := c.tokens["read-write"]

	before := map[string]map[string]float64{}
	for _, s := range c.nodes {
		m, err := c.metrics(s)
		if err != nil {
			t.Fatal(err)
		}
		before[s.name] = m
	}

	// want is every key the test had acknowledged and its value.
	want := map[string]string{}
	put := func(s *server, key, value string, hdr http.Header) {
		t.Helper()
		code, _, body, err := c.retry(t, http.MethodPut, s, "/v1/kv/"+url.PathEscape(key)+"?w=all", rw, hdr, []byte(value))
		if err != nil || code != http.StatusNoContent {
			t.Fatalf("PUT %.40q through %s: %d %s %v", key, s.name, code, body, err)
		}
		want[key] = value
	}
	const keys = 300
	eventually(t, deadline, "a first write at w=all over mutual TLS", func() error {
		code, _, body, err := c.do(http.MethodPut, n1, "/v1/kv/first?w=all", rw, nil, []byte("v"))
		if err == nil && code != http.StatusNoContent {
			err = fmt.Errorf("PUT: %d %s", code, body)
		}
		return err
	})
	want["first"] = "v"
	for i := range keys {
		put(c.nodes[i%3], fmt.Sprintf("key-%04d", i), fmt.Sprintf("value-%04d-%s", i, strings.Repeat("x", i%97)), nil)
	}

	sw.lap(fmt.Sprintf("%d keys written at w=all", len(want)))
	t.Run("resp", func(t *testing.T) { hostileRESP(t, c, n1, want) })
	t.Run("rpc", func(t *testing.T) { hostileRPC(t, c, n2, want, deadline) })
	t.Run("http", func(t *testing.T) { hostileHTTP(t, c, n3, want) })
	t.Run("auth", func(t *testing.T) { unauthorised(t, c, n3, n1) })
	t.Run("gossip", func(t *testing.T) { hostileGossip(t, c, before, deadline) })
	t.Run("rogue", func(t *testing.T) { rogueServer(t, c, n1, deadline) })
	if t.Failed() {
		t.FailNow()
	}
	sw.lap("hostile inputs sent")

	// Every node still runs, serves, and takes a write.
	for _, s := range c.nodes {
		if err := c.serving(s); err != nil {
			t.Fatal(err)
		}
		put(s, "after-"+s.name, "still serving", nil)
	}
	// Membership is still exactly the three nodes, alive and joined, and
	// the plan serves them alone.
	for _, s := range c.nodes {
		eventually(t, deadline, s.name+" lists exactly n1..n3 alive and joined", func() error { return exactMembers(c, s) })
	}
	// Each node holds every key itself (N=3 on three nodes): its own key
	// count, read before any read below could repair a replica.
	for _, s := range c.nodes {
		eventually(t, deadline, s.name+" holds every acknowledged key", func() error {
			var st struct {
				Keys int64 `json:"keys"`
				Plan struct {
					Members []string `json:"members"`
					Target  []string `json:"target"`
				} `json:"plan"`
			}
			code, _, body, err := c.do(http.MethodGet, s, "/v1/stats", c.tokens["read"], nil, nil)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("stats: %d %s", code, body)
			}
			if err := json.Unmarshal(body, &st); err != nil {
				return err
			}
			if !slices.Equal(st.Plan.Members, []string{"n1", "n2", "n3"}) || st.Plan.Target != nil {
				t.Fatalf("%s's plan changed: %+v", s.name, st.Plan)
			}
			if st.Keys != int64(len(want)) {
				return fmt.Errorf("%s holds %d keys, %d acknowledged", s.name, st.Keys, len(want))
			}
			return nil
		})
	}
	sw.lap("every node holds every key")
	// And every value reads back through every node from all replicas.
	for _, s := range c.nodes {
		bad := 0
		for key, value := range want {
			code, _, body, err := c.retry(t, http.MethodGet, s, "/v1/kv/"+url.PathEscape(key)+"?r=all", c.tokens["read"], nil, nil)
			if err != nil || code != http.StatusOK || string(body) != value {
				if bad++; bad <= 5 {
					t.Errorf("GET %.40q ?r=all through %s: %d %.80q %v, want %.80q", key, s.name, code, body, err, value)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d keys did not read back", s.name, bad, len(want))
		}
	}
	sw.lap("every key read back through every node")
	// The refusals were counted.
	after := map[string]map[string]float64{}
	for _, s := range c.nodes {
		m, err := c.metrics(s)
		if err != nil {
			t.Fatal(err)
		}
		after[s.name] = m
	}
	rose := func(s *server, name string, labels ...string) {
		t.Helper()
		b, a := sumOf(before[s.name], name, labels...), sumOf(after[s.name], name, labels...)
		t.Logf("%s %s%v: %v -> %v", s.name, name, labels, b, a)
		if a <= b {
			t.Errorf("%s: %s%v did not rise (%v -> %v)", s.name, name, labels, b, a)
		}
	}
	for _, reason := range []string{"no_cert", "invalid_cert", "handshake", "name", "unknown_ca"} {
		rose(n2, "ringkv_rpc_refused_total", `reason="`+reason+`"`)
	}
	rose(n1, "ringkv_auth_refused_total", `api="resp"`, `reason="no_token"`)
	rose(n1, "ringkv_auth_refused_total", `api="resp"`, `reason="unknown_token"`)
	rose(n1, "ringkv_auth_refused_total", `api="resp"`, `reason="forbidden"`)
	rose(n3, "ringkv_auth_refused_total", `api="http"`, `reason="no_token"`)
	rose(n3, "ringkv_auth_refused_total", `api="http"`, `reason="forbidden"`)
	rose(n3, "ringkv_auth_refused_total", `api="http"`, `reason="unknown_token"`)
	rose(n3, "ringkv_auth_refused_total", `api="http"`, `reason="malformed"`)
	for _, s := range c.nodes {
		rose(s, "ringkv_gossip_warnings_total")
		if p := sumOf(after[s.name], "ringkv_recovered_panics_total"); p != 0 {
			t.Errorf("%s recovered %v panics", s.name, p)
		}
	}
	for _, s := range c.nodes {
		checkFileModes(t, c.dataDirs[s.name])
	}
	for _, s := range c.nodes {
		if code := s.stop(t, 30*time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", s.name, code)
		}
	}
	// Files written at shutdown are private too.
	for _, s := range c.nodes {
		checkFileModes(t, c.dataDirs[s.name])
	}
}

// exactMembers is nil when s lists n1, n2 and n3, alive and joined, and
// nobody else.
func exactMembers(c *securedCluster, s *server) error {
	code, _, body, err := c.do(http.MethodGet, s, "/v1/members", c.tokens["read"], nil, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("members: %d %s", code, body)
	}
	var ms []member
	if err := json.Unmarshal(body, &ms); err != nil {
		return err
	}
	var names []string
	for _, m := range ms {
		if m.Liveness != "alive" || m.Status != "joined" {
			return fmt.Errorf("members %+v", ms)
		}
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"n1", "n2", "n3"}) {
		return fmt.Errorf("members %+v", ms)
	}
	return nil
}

// dialRESPTLS opens a Redis-protocol connection over TLS to s.
func dialRESPTLS(c *securedCluster, s *server) (*respConn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	tc, err := tls.DialWithDialer(d, "tcp", s.addrs["resp"], c.tlsConfig(nil))
	if err != nil {
		return nil, err
	}
	return &respConn{c: tc, r: bufio.NewReader(tc)}, nil
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
	typ, id, body, err := readRPCFrame(br)
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

// msgpackStr encodes a string of fewer than 256 bytes.
func msgpackStr(s string) []byte {
	if len(s) < 32 {
		return append([]byte{0xa0 | byte(len(s))}, s...)
	}
	return append([]byte{0xd9, byte(len(s))}, s...)
}

// contextActor returns the actor of a context's first entry (a context is
// base64url msgpack [[actor, counter], ...]).
func contextActor(ctx string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(ctx)
	if err != nil {
		return "", err
	}
	if len(b) < 3 || b[0]&0xf0 != 0x90 || b[0] == 0x90 || b[1] != 0x92 {
		return "", fmt.Errorf("context %x is not [[actor, counter], ...]", b)
	}
	switch s := b[2:]; {
	case s[0]&0xe0 == 0xa0 && len(s) > int(s[0]&0x1f):
		return string(s[1 : 1+s[0]&0x1f]), nil
	case s[0] == 0xd9 && len(s) > 1 && len(s) > 1+int(s[1]):
		return string(s[2 : 2+int(s[1])]), nil
	}
	return "", fmt.Errorf("context %x: actor is not a short string", b)
}

// hostileHTTP sends s the HTTP inputs that were once accepted: empty
// contexts, keys and values over the limits, bad quorum parameters and
// forged contexts, all with a valid read-write token.
func hostileHTTP(t *testing.T, c *securedCluster, s *server, want map[string]string) {
	rw := c.tokens["read-write"]
	do := func(method, path string, hdr http.Header, body []byte) (int, http.Header, []byte) {
		t.Helper()
		code, h, b, err := c.retry(t, method, s, path, rw, hdr, body)
		if err != nil {
			t.Fatalf("%s %.60s: %v", method, path, err)
		}
		return code, h, b
	}
	absent := func(key string) {
		t.Helper()
		if code, _, b := do(http.MethodGet, "/v1/kv/"+url.PathEscape(key)+"?r=all", nil, nil); code != http.StatusNotFound {
			t.Errorf("GET %.40q after a refused write: %d %.80s, want 404", key, code, b)
		}
	}

	// An empty or blank context header is a blind write, not a sibling.
	for i, ctx := range []string{"", "", "   ", "", "\t", ""} {
		v := fmt.Sprintf("empty-context-%d", i)
		code, _, b := do(http.MethodPut, "/v1/kv/empty-ctx?w=all", http.Header{"X-Ringkv-Context": {ctx}}, []byte(v))
		if code != http.StatusNoContent {
			t.Fatalf("PUT with context %q: %d %s, want 204", ctx, code, b)
		}
		want["empty-ctx"] = v
	}
	if code, _, b := do(http.MethodGet, "/v1/kv/empty-ctx?r=all", nil, nil); code != http.StatusOK || string(b) != want["empty-ctx"] {
		t.Errorf("GET after empty-context writes: %d %.200s, want 200 %q", code, b, want["empty-ctx"])
	}

	// Writes that all reuse one stale context pile up siblings until the
	// cap (limits.max_siblings, 100) refuses the next with 409; a write
	// with a read's context still resolves the key.
	code, h, b := do(http.MethodPut, "/v1/kv/siblings?w=all", nil, []byte("s0"))
	if code != http.StatusNoContent {
		t.Fatalf("PUT siblings: %d %s", code, b)
	}
	stale := h.Get("X-Ringkv-Context")
	refused := 0
	for i := 1; i <= 120 && refused == 0; i++ {
		code, _, b := do(http.MethodPut, "/v1/kv/siblings?w=all", http.Header{"X-Ringkv-Context": {stale}}, []byte(fmt.Sprintf("s%d", i)))
		switch {
		case code == http.StatusConflict:
			refused = i
		case i == 1 && code == http.StatusNoContent, i > 1 && code == http.StatusMultipleChoices:
		default:
			t.Fatalf("sibling write %d: %d %.200s", i, code, b)
		}
	}
	if refused != 101 {
		t.Errorf("the write adding sibling 101 was not refused: the first 409 came at write %d", refused)
	}
	code, h, b = do(http.MethodGet, "/v1/kv/siblings?r=all", nil, nil)
	var sib struct {
		Siblings []json.RawMessage `json:"siblings"`
	}
	if err := json.Unmarshal(b, &sib); code != http.StatusMultipleChoices || err != nil || len(sib.Siblings) != 100 {
		t.Fatalf("GET siblings: %d, %d siblings, %v", code, len(sib.Siblings), err)
	}
	if code, _, b := do(http.MethodPut, "/v1/kv/siblings?w=all", http.Header{"X-Ringkv-Context": {h.Get("X-Ringkv-Context")}}, []byte("resolved")); code != http.StatusNoContent {
		t.Fatalf("PUT resolving 100 siblings: %d %.200s", code, b)
	}
	want["siblings"] = "resolved"

	// Keys and values over the limits: refused, nothing written.
	key := strings.Repeat("k", 1024)
	if code, _, b := do(http.MethodPut, "/v1/kv/"+key+"?w=all", nil, []byte("max key")); code != http.StatusNoContent {
		t.Errorf("PUT of a 1024-byte key: %d %s, want 204", code, b)
	} else {
		want[key] = "max key"
	}
	for _, n := range []int{1025, 64 << 10} {
		if code, _, b := do(http.MethodPut, "/v1/kv/"+strings.Repeat("k", n)+"?w=all", nil, []byte("x")); code != http.StatusBadRequest {
			t.Errorf("PUT of a %d-byte key: %d %.200s, want 400", n, code, b)
		}
	}
	if code, _, b := do(http.MethodGet, "/v1/kv/"+strings.Repeat("k", 1025), nil, nil); code != http.StatusBadRequest {
		t.Errorf("GET of a 1025-byte key: %d %.200s, want 400", code, b)
	}
	for _, n := range []int{1<<20 + 1, 3 << 20} {
		if code, _, b := do(http.MethodPut, "/v1/kv/big-value?w=all", nil, make([]byte, n)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("PUT of a %d-byte value: %d %.200s, want 413", n, code, b)
		}
	}
	absent("big-value")

	// Quorum parameters that are not 1..N, one/quorum/all, once.
	for i, q := range []string{"w=4", "w=0", "w=-1", "w=abc", "w=99999999999999999999", "W=all", "w=all&w=one", "r=all", "w=all&x=1", "w=%00"} {
		k := fmt.Sprintf("bad-quorum-%d", i)
		if code, _, b := do(http.MethodPut, "/v1/kv/"+k+"?"+q, nil, []byte("x")); code != http.StatusBadRequest {
			t.Errorf("PUT ?%s: %d %.200s, want 400", q, code, b)
		}
		absent(k)
	}
	for _, q := range []string{"r=4", "r=0", "R=all", "r=one&r=all", "w=all"} {
		if code, _, b := do(http.MethodGet, "/v1/kv/key-0001?"+q, nil, nil); code != http.StatusBadRequest {
			t.Errorf("GET ?%s: %d %.200s, want 400", q, code, b)
		}
	}

	// Forged contexts: a real actor's counter at 2^64-1, one past what
	// any node stores, one nested far too deep, and the header twice.
	code, h, b = do(http.MethodGet, "/v1/kv/key-0007?r=all", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET key-0007: %d %s", code, b)
	}
	realCtx := h.Get("X-Ringkv-Context")
	actor, err := contextActor(realCtx)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(actor string, counter uint64) string {
		b := append([]byte{0x91, 0x92}, msgpackStr(actor)...)
		b = append(b, 0xcf)
		b = bin.BigEndian.AppendUint64(b, counter)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	deepCtx := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x91}, 40<<10))
	for _, hv := range [][]string{
		{forge(actor, 1<<64-1)},
		{forge("n1", 1<<64-1)},
		{forge(actor, 1<<62+1)},
		{deepCtx},
		{"!!!not base64"},
		{realCtx, realCtx},
	} {
		code, _, b := do(http.MethodPut, "/v1/kv/key-0007?w=all", http.Header{"X-Ringkv-Context": hv}, []byte("forged"))
		if code != http.StatusBadRequest {
			t.Errorf("PUT with context %.60q: %d %.200s, want 400", hv, code, b)
		}
	}
	// The key stays writable with its real context.
	if code, _, b := do(http.MethodPut, "/v1/kv/key-0007?w=all", http.Header{"X-Ringkv-Context": {realCtx}}, []byte("rewritten")); code != http.StatusNoContent {
		t.Errorf("PUT with the real context after forged ones: %d %s, want 204", code, b)
	} else {
		want["key-0007"] = "rewritten"
	}
}

// unauthorised tries the admin routes without a token, with a bad one and
// with too small a role, and a write with the read token; s is attacked,
// victim is the node named in remove.
func unauthorised(t *testing.T, c *securedCluster, s, victim *server) {
	newKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	keysBody := []byte(`{"keys": ["` + newKey + `"]}`)
	admin := []struct {
		method, path string
		body         []byte
	}{
		{http.MethodPost, "/v1/leave", nil},
		{http.MethodPost, "/v1/remove/" + victim.name, nil},
		{http.MethodPut, "/v1/transfer/rate?mb=0", nil},
		{http.MethodPut, "/v1/gossip/keys", keysBody},
		{http.MethodGet, "/v1/gossip/keys", nil},
	}
	for _, r := range admin {
		for _, a := range []struct {
			name  string
			hdr   http.Header
			token string
			want  int
		}{
			{"no token", nil, "", http.StatusUnauthorized},
			{"an unknown token", nil, randomHex(t, 32), http.StatusUnauthorized},
			{"Basic credentials", http.Header{"Authorization": {"Basic YWRtaW46YWRtaW4="}}, "", http.StatusUnauthorized},
			{"a 600-byte token", http.Header{"Authorization": {"Bearer " + strings.Repeat("a", 600)}}, "", http.StatusUnauthorized},
			{"the read token", nil, c.tokens["read"], http.StatusForbidden},
			{"the read-write token", nil, c.tokens["read-write"], http.StatusForbidden},
		} {
			code, h, b, err := c.do(r.method, s, r.path, a.token, a.hdr, r.body)
			if err != nil || code != a.want {
				t.Errorf("%s %s with %s: %d %.200s %v, want %d", r.method, r.path, a.name, code, b, err, a.want)
			}
			if a.want == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %s: WWW-Authenticate %q", r.method, r.path, a.name, h.Get("WWW-Authenticate"))
			}
		}
	}
	// A read token cannot write or delete.
	for _, m := range []string{http.MethodPut, http.MethodDelete} {
		code, _, b, err := c.do(m, s, "/v1/kv/key-0009?w=all", c.tokens["read"], nil, []byte("from a reader"))
		if err != nil || code != http.StatusForbidden {
			t.Errorf("%s with the read token: %d %.200s %v, want 403", m, code, b, err)
		}
	}
	if code, _, b, err := c.do(http.MethodPut, s, "/v1/kv/key-0009?w=all", "", nil, []byte("anonymous")); err != nil || code != http.StatusUnauthorized {
		t.Errorf("PUT without a token: %d %.200s %v, want 401", code, b, err)
	}
	// The keyring is still the one key, as the admin token sees it.
	sum := sha256.Sum256(mustBase64(t, c.gossipKey))
	fp := hex.EncodeToString(sum[:8])
	for _, n := range c.nodes {
		var kr struct {
			Encrypted bool     `json:"encrypted"`
			Primary   string   `json:"primary"`
			Keys      []string `json:"keys"`
		}
		code, _, b, err := c.do(http.MethodGet, n, "/v1/gossip/keys", c.tokens["admin"], nil, nil)
		if err == nil && code == http.StatusOK {
			err = json.Unmarshal(b, &kr)
		}
		if err != nil || code != http.StatusOK || !kr.Encrypted || kr.Primary != fp || !slices.Equal(kr.Keys, []string{fp}) {
			t.Errorf("%s keyring: %d %s %v, want only %s", n.name, code, b, err, fp)
		}
	}
}

func mustBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostileGossip sends every node's gossip port, unencrypted, a datagram
// that removes n3 and adds a fake member at version 2^64-1, and a 3-byte
// junk datagram. With a gossip key both must be dropped (and counted).
func hostileGossip(t *testing.T, c *securedCluster, before map[string]map[string]float64, deadline time.Time) {
	row := func(name, status, addr string) []byte {
		b := append([]byte{0x94}, msgpackStr(name)...)
		b = append(b, msgpackStr(status)...)
		b = append(b, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		return append(b, msgpackStr(addr)...)
	}
	// memberlist's user message (8), ringkv's rows message (1), then
	// format 1: [1, [rows]].
	rows := []byte{8, 1, 0x92, 0x01, 0x92}
	rows = append(rows, row("n3", "removed", c.gossip["n3"])...)
	rows = append(rows, row("fake", "joined", "127.0.0.1:1")...)
	junk := []byte{0x00, 0xff, 0x13}
	for _, s := range c.nodes {
		conn, err := net.Dial("udp", s.addrs["gossip"])
		if err != nil {
			t.Fatal(err)
		}
		// Datagrams can be dropped even on loopback, so they are sent
		// again until the node has counted what it dropped.
		eventually(t, deadline, s.name+" counts the refused datagrams", func() error {
			for _, d := range [][]byte{rows, junk} {
				if _, err := conn.Write(d); err != nil {
					return err
				}
			}
			m, err := c.metrics(s)
			if err != nil {
				return err
			}
			if b, a := sumOf(before[s.name], "ringkv_gossip_warnings_total"), sumOf(m, "ringkv_gossip_warnings_total"); a <= b {
				return fmt.Errorf("ringkv_gossip_warnings_total %v -> %v", b, a)
			}
			// Peers with the key never cause this line; the datagrams do.
			if !strings.Contains(s.out.String(), "Decrypt packet failed") {
				return errors.New("no line about a packet that could not be decrypted")
			}
			return nil
		})
		conn.Close()
	}
	for _, s := range c.nodes {
		eventually(t, deadline, s.name+" lists exactly n1..n3 alive and joined after the datagrams", func() error { return exactMembers(c, s) })
	}
	hostileGossipStreams(t, c, c.nodes[0], deadline)
}

// hostileGossipStreams opens TCP streams to s's gossip port that declare
// an encrypted payload of 19 MiB (memberlist takes up to 20 MiB): one
// that sends 3 MiB of it, past the 2 MiB stream cap, and batches of 40
// that send nothing more, past the bound of 16 streams open at once. Both
// must be cut and counted, and membership must recover.
func hostileGossipStreams(t *testing.T, c *securedCluster, s *server, deadline time.Time) {
	header := []byte{10} // memberlist's encryptMsg
	header = bin.BigEndian.AppendUint32(header, 19<<20)
	refused := func(reason string) float64 {
		m, err := c.metrics(s)
		if err != nil {
			t.Fatal(err)
		}
		return sumOf(m, "ringkv_gossip_refused_streams_total", `reason="`+reason+`"`)
	}
	dial := func() (net.Conn, error) {
		conn, err := net.DialTimeout("tcp", s.addrs["gossip"], 10*time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			_, err = conn.Write(header)
		}
		return conn, err
	}

	// Plaintext where encryption is required: dropped unread.
	if conn, err := net.DialTimeout("tcp", s.addrs["gossip"], 10*time.Second); err == nil {
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		_, _ = conn.Write(append([]byte{6}, bytes.Repeat([]byte{0x91}, 1<<10)...)) // pushPullMsg
		ended(t, "an unencrypted push-pull", conn, conn)
		conn.Close()
	}

	before := refused("too_long")
	eventually(t, deadline, s.name+" cuts a gossip stream at the size cap", func() error {
		conn, err := dial()
		if err != nil {
			return err
		}
		defer conn.Close()
		werr := writeAll(conn, nil, 3<<20)
		if a := refused("too_long"); a <= before {
			return fmt.Errorf("too_long %v -> %v (write: %v)", before, a, werr)
		}
		return nil
	})

	before = refused("too_many")
	eventually(t, deadline, s.name+" closes gossip streams beyond the bound", func() error {
		var conns []net.Conn
		defer func() {
			for _, conn := range conns {
				conn.Close()
			}
		}()
		for range 40 {
			conn, err := dial()
			if conn != nil {
				conns = append(conns, conn)
			}
			if err != nil {
				break // refused streams may be closed before the header is written
			}
		}
		if a := refused("too_many"); a <= before {
			return fmt.Errorf("too_many %v -> %v", before, a)
		}
		return nil
	})
	for _, n := range c.nodes {
		eventually(t, deadline, n.name+" lists n1..n3 alive after the gossip streams", func() error { return exactMembers(c, n) })
	}
}

// rogueServer starts a ringkv server that knows only n1's gossip address:
// no gossip key, no certificates, no tokens. It must never join: its join
// attempts fail and no node lists it.
func rogueServer(t *testing.T, c *securedCluster, seed *server, deadline time.Time) {
	ports := freePorts(t, 4)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	rogue := startServer(t, "rogue", "server", "--name", "rogue", "--data-dir", filepath.Join(c.dir, "data-rogue"),
		"--http", addr(0), "--resp", addr(1), "--rpc", addr(2), "--gossip", addr(3), "--seeds", seed.addrs["gossip"])
	// Its failed attempts are the event: three of them, each logged.
	eventually(t, deadline, "the rogue retries its join", func() error {
		select {
		case <-rogue.done:
			t.Fatalf("the rogue exited: %v\n%s", rogue.err, rogue.out)
		default:
		}
		for _, s := range c.nodes {
			code, _, body, err := c.do(http.MethodGet, s, "/v1/members", c.tokens["read"], nil, nil)
			if err == nil && code == http.StatusOK && bytes.Contains(body, []byte(`"rogue"`)) {
				t.Fatalf("%s lists the rogue: %s", s.name, body)
			}
		}
		if n := strings.Count(rogue.out.String(), "could not join any seed"); n < 3 {
			return fmt.Errorf("%d failed joins logged", n)
		}
		return nil
	})
	for _, s := range c.nodes {
		eventually(t, deadline, s.name+" lists exactly n1..n3 alive and joined with the rogue running", func() error { return exactMembers(c, s) })
	}
	if code, _, err := httpDo(http.MethodGet, "http://"+addr(0)+"/readyz", nil); err != nil || code == http.StatusOK {
		t.Errorf("the rogue is ready (%d %v): it joined", code, err)
	}
	if code := rogue.stop(t, 30*time.Second); code != 0 {
		t.Errorf("the rogue exited %d", code)
	}
	for _, s := range c.nodes {
		eventually(t, deadline, s.name+" lists exactly n1..n3 alive and joined after the rogue", func() error { return exactMembers(c, s) })
	}
}
