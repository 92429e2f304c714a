package e2e

import (
	"bytes"
	bin "encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
