package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

// respClient is a minimal RESP2 client for tests: it sends commands as
// arrays of bulk strings and parses one reply.
type respClient struct {
	conn net.Conn
	rd   *bufio.Reader
}

func dialRESP(t *testing.T, addr string) *respClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &respClient{conn: c, rd: bufio.NewReader(c)}
}

// respError is an error reply.
type respError string

// nilReply stands for a RESP null bulk string.
type nilReply struct{}

// do sends one command and returns its reply: string (simple string),
// respError, int64, []byte (bulk), nilReply or []any.
func (c *respClient) do(t *testing.T, args ...string) any {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if err := c.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		t.Fatal(err)
	}
	r, err := readReply(c.rd)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return r
}

func readReply(rd *bufio.Reader) (any, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return nil, fmt.Errorf("bad reply line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return respError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nilReply{}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		return buf[:n], nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nilReply{}, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(rd); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", line)
}

// startRESP serves a respServer over fakes on a loopback port.
func startRESP(t *testing.T) (*respServer, string, *fakeKV) {
	t.Helper()
	kv := newFakeKV()
	s, addr := startRESPWith(t, kv, testLimits)
	return s, addr, kv
}

// startRESPWith serves a respServer over kv with the given limits.
func startRESPWith(t *testing.T, kv kvBackend, limits LimitsConfig) (*respServer, string) {
	t.Helper()
	info := func() respInfo { return respInfo{Node: "n1", RingMembers: 3, LiveMembers: 2, Keys: 7} }
	s := newRESPServer(kv, info, newMetrics(metricSources{}), limits, testkit.Logger(t))
	return s, serveRESP(t, s)
}

// serveRESP serves s on a loopback port until the test ends and returns
// its address.
func serveRESP(t *testing.T, s *respServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveRESPOn(t, s, ln)
	return ln.Addr().String()
}

// serveRESPOn serves s on ln until the test ends, then shuts it down and
// checks that serve ended cleanly.
func serveRESPOn(t *testing.T, s *respServer, ln net.Listener) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

func TestRESPCommands(t *testing.T) {
	_, addr, kv := startRESP(t)
	c := dialRESP(t, addr)
	long := strings.Repeat("k", testLimits.MaxKeyBytes+1)
	steps := []struct {
		args []string
		want any
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"ping", "hi"}, []byte("hi")},
		{[]string{"ECHO", "e"}, []byte("e")},
		{[]string{"SELECT", "0"}, "OK"},
		{[]string{"SELECT", "1"}, respError("ERR DB index is out of range (ringkv has only database 0)")},
		{[]string{"GET", "a"}, nilReply{}},
		{[]string{"SET", "a", "1"}, "OK"},
		{[]string{"SET", "a", "2"}, "OK"},
		{[]string{"GET", "a"}, []byte("2")},
		{[]string{"SET", "b", ""}, "OK"},
		{[]string{"GET", "b"}, []byte{}},
		{[]string{"EXISTS", "a", "b", "c", "a"}, int64(3)},
		{[]string{"MGET", "a", "c", "b"}, []any{[]byte("2"), nilReply{}, []byte{}}},
		{[]string{"DEL", "a", "c"}, int64(1)},
		{[]string{"GET", "a"}, nilReply{}},
		{[]string{"DEL", "a"}, int64(0)},
		{[]string{"SET", "a", "1", "EX", "10"}, respError("ERR syntax error: SET options (EX ...) are not supported by ringkv")},
		{[]string{"SET", long, "1"}, respError(fmt.Sprintf("ERR key is %d bytes, more than limits.max_key_bytes (16)", len(long)))},
		{[]string{"SET", "", "1"}, respError("ERR key must not be empty")},
		{[]string{"SET", "big", strings.Repeat("v", testLimits.MaxValueBytes+1)}, respError("ERR value is 1025 bytes, more than limits.max_value_bytes (1024)")},
		{[]string{"GET"}, respError("ERR wrong number of arguments for 'get' command")},
		{[]string{"FLUSHALL"}, respError("ERR unknown command 'FLUSHALL'")},
		{[]string{"CONFIG", "GET", "save"}, []any{[]byte("save"), []byte("")}},
		{[]string{"CONFIG", "GET", "appendonly"}, []any{[]byte("appendonly"), []byte("no")}},
		{[]string{"CONFIG", "GET", "nosuch"}, []any{}},
		{[]string{"CONFIG", "SET", "save", ""}, respError("ERR CONFIG SET is not supported by ringkv (only CONFIG GET)")},
		{[]string{"COMMAND"}, []any{}},
		{[]string{"COMMAND", "DOCS"}, []any{}},
		{[]string{"CLIENT", "SETNAME", "x"}, "OK"},
	}
	for _, st := range steps {
		got := c.do(t, st.args...)
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Fatalf("%q (-want +got):\n%s", st.args, diff)
		}
	}
	if _, ok := kv.data["big"]; ok {
		t.Fatal("an oversized SET was stored")
	}
	info, ok := c.do(t, "INFO").([]byte)
	if !ok {
		t.Fatal("INFO is not a bulk string")
	}
	for _, want := range []string{"node:n1", "ring_members:3", "live_members:2", "db0:keys=7", "ringkv_version:" + Version} {
		if !strings.Contains(string(info), want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	if got := c.do(t, "QUIT"); got != "OK" {
		t.Fatalf("QUIT = %v", got)
	}
	if _, err := readReply(c.rd); !errors.Is(err, io.EOF) {
		t.Fatalf("after QUIT read = %v, want EOF", err)
	}
}

func TestRESPLastWriterWins(t *testing.T) {
	_, addr, kv := startRESP(t)
	// Two concurrent live siblings and an older delete: GET answers the one
	// with the later wall time, whatever the dot order.
	kv.inject("k", vclock.Siblings{
		{Dot: vclock.Dot{Actor: "a", Counter: 1}, Value: []byte("late"), WallTime: 20},
		{Dot: vclock.Dot{Actor: "b", Counter: 1}, Value: []byte("early"), WallTime: 10},
		{Dot: vclock.Dot{Actor: "c", Counter: 1}, Tombstone: true, WallTime: 5},
	})
	c := dialRESP(t, addr)
	if diff := cmp.Diff([]byte("late"), c.do(t, "GET", "k")); diff != "" {
		t.Fatal(diff)
	}
	// SET is blind: it supersedes every sibling, so none pile up.
	c.do(t, "SET", "k", "new")
	if n := len(kv.data["k"]); n != 1 {
		t.Fatalf("after SET %d versions remain, want 1", n)
	}
	// Only tombstones: not found.
	kv.inject("t", vclock.Siblings{{Dot: vclock.Dot{Actor: "a", Counter: 1}, Tombstone: true}})
	if got := c.do(t, "GET", "t"); got != (nilReply{}) {
		t.Fatalf("GET tombstone = %v", got)
	}
}

// TestRESPGetNewestTombstone: a delete newer than every live sibling wins
// last-writer-wins like any other write, so GET, MGET and EXISTS all see
// the key as absent; an older live value must not resurface.
func TestRESPGetNewestTombstone(t *testing.T) {
	_, addr, kv := startRESP(t)
	kv.inject("del", vclock.Siblings{
		{Dot: vclock.Dot{Actor: "a", Counter: 1}, Value: []byte("old"), WallTime: 10},
		{Dot: vclock.Dot{Actor: "b", Counter: 1}, Tombstone: true, WallTime: 20},
	})
	// Same wall time: the higher dot wins, here the tombstone.
	kv.inject("tie", vclock.Siblings{
		{Dot: vclock.Dot{Actor: "a", Counter: 1}, Value: []byte("old"), WallTime: 10},
		{Dot: vclock.Dot{Actor: "b", Counter: 1}, Tombstone: true, WallTime: 10},
	})
	// And the reverse: the value is newer than the delete.
	kv.inject("live", vclock.Siblings{
		{Dot: vclock.Dot{Actor: "a", Counter: 1}, Tombstone: true, WallTime: 10},
		{Dot: vclock.Dot{Actor: "b", Counter: 1}, Value: []byte("new"), WallTime: 20},
	})
	c := dialRESP(t, addr)
	steps := []struct {
		args []string
		want any
	}{
		{[]string{"GET", "del"}, nilReply{}},
		{[]string{"GET", "tie"}, nilReply{}},
		{[]string{"GET", "live"}, []byte("new")},
		{[]string{"MGET", "del", "tie", "live"}, []any{nilReply{}, nilReply{}, []byte("new")}},
		{[]string{"EXISTS", "del", "tie", "live"}, int64(1)},
	}
	for _, st := range steps {
		if diff := cmp.Diff(st.want, c.do(t, st.args...)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", st.args, diff)
		}
	}
}

func TestRESPErrors(t *testing.T) {
	_, addr, kv := startRESP(t)
	c := dialRESP(t, addr)
	kv.setFail(&quorumFailure{Op: "get", Need: 2, Got: 1, Failures: map[string]string{"n2": "timeout\r\nx"}})
	if got := c.do(t, "GET", "k"); got != respError("ERR get quorum not met: need 2, got 1; n2: timeout  x") {
		t.Fatalf("GET = %v", got)
	}
	kv.setFail(errors.New("boom"))
	if got := c.do(t, "SET", "k", "v"); got != respError("ERR boom") {
		t.Fatalf("SET = %v", got)
	}
	// The connection still works after errors.
	kv.setFail(nil)
	if got := c.do(t, "PING"); got != "PONG" {
		t.Fatalf("PING = %v", got)
	}
}

func TestRESPShutdownWaitsForInFlight(t *testing.T) {
	s, addr, _ := startRESP(t)
	c := dialRESP(t, addr)
	c.do(t, "PING")
	// With a command registered as running, shutdown blocks until it ends.
	if !s.begin() {
		t.Fatal("begin refused before shutdown")
	}
	done := make(chan error, 1)
	go func() { done <- s.shutdown(context.Background()) }()
	testkit.Eventually(t, time.Minute, "draining", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.draining
	})
	select {
	case err := <-done:
		t.Fatalf("shutdown returned %v with a command in flight", err)
	default:
	}
	if got := c.do(t, "PING"); got != respError("ERR server is shutting down") {
		t.Fatalf("PING while draining = %v", got)
	}
	s.end()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A bounded shutdown gives up when its context ends.
	s2, _, _ := startRESP(t)
	s2.begin()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s2.shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("bounded shutdown = %v", err)
	}
	s2.end()
}

// TestRESPFindCommand: command names match in any case, and only whole
// names of the table match.
func TestRESPFindCommand(t *testing.T) {
	s := newRESPServer(newFakeKV(), nil, newMetrics(metricSources{}), testLimits, testkit.Logger(t))
	for _, tc := range []struct {
		arg, want string // want "": unknown
	}{
		{"get", "get"}, {"GET", "get"}, {"gEt", "get"}, {"COMMAND", "command"}, {"Client", "client"},
		{"ge", ""}, {"gett", ""}, {"", ""}, {"get\x00", ""}, {"GET ", ""},
		{"commandcommandcommand", ""}, {"\xffget", ""},
	} {
		rc, ok := s.findCommand([]byte(tc.arg))
		switch {
		case tc.want == "" && ok:
			t.Errorf("%q found %q, want unknown", tc.arg, rc.name)
		case tc.want != "" && !ok:
			t.Errorf("%q unknown, want %q", tc.arg, tc.want)
		case ok && rc.name != tc.want:
			t.Errorf("%q found %q, want %q", tc.arg, rc.name, tc.want)
		}
	}
	for name := range s.cmds {
		if rc, ok := s.findCommand([]byte(strings.ToUpper(name))); !ok || rc.name != name {
			t.Errorf("%q not found in upper case", name)
		}
	}
}
