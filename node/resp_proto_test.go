package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ringkv/ringkv/internal/testkit"
)

// readAllReplies reads what the server sends until it closes the
// connection, and fails if it is still silent and open after d.
func readAllReplies(t *testing.T, c *respClient, d time.Duration) string {
	t.Helper()
	if err := c.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c.rd)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %s; got %q", d, got)
	}
	// A reset is fine (the server closed with our bytes unread): what
	// came before it is what we check.
	return string(got)
}

// TestRESPHostileInput: headers that redcon's reader mishandled (a bulk
// length that overflows when added to an index and panicked the process,
// a multibulk count that spun the connection's goroutine forever, an inline
// line without an end) and other malformed input answer Redis's protocol
// error and close the connection; the server keeps serving.
func TestRESPHostileInput(t *testing.T) {
	s, addr, kv := startRESP(t)
	cases := []struct {
		name, in, want string
	}{
		{"bulk length overflow", "*1\r\n$9223372036854775807\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk length overflow in a later argument", "*2\r\n$3\r\nGET\r\n$9223372036854775806\r\nk\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk length not a number", "*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk length negative", "*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk length beyond int64", "*1\r\n$99999999999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"multibulk count huge", "*9223372036854775807\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"multibulk count over a million", "*1048577\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"multibulk count not a number", "*1x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"multibulk count line without an end", "*" + strings.Repeat("1", 70<<10), "-ERR Protocol error: too big mbulk count string\r\n"},
		{"bulk count line without an end", "*1\r\n$" + strings.Repeat("1", 70<<10), "-ERR Protocol error: too big bulk count string\r\n"},
		{"not a bulk string", "*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"},
		{"bulk data without CRLF", "*1\r\n$4\r\nPINGxx", "-ERR Protocol error: bulk data not followed by CRLF\r\n"},
		{"inline line without an end", strings.Repeat("a", 70<<10), "-ERR Protocol error: too big inline request\r\n"},
		{"unbalanced quotes", "ECHO \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"closing quote not followed by a space", "ECHO 'a'b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"bulk length over the command cap", "*2\r\n$3\r\nSET\r\n$999999999999999999\r\n", "-ERR Protocol error: command is larger than 66576 bytes (limits.max_key_bytes + limits.max_value_bytes + 65536)\r\n"},
		{"arguments together over the command cap", "*3\r\n$4\r\nMGET\r\n$40000\r\n" + strings.Repeat("k", 40000) + "\r\n$40000\r\n", "-ERR Protocol error: command is larger than 66576 bytes (limits.max_key_bytes + limits.max_value_bytes + 65536)\r\n"},
		{"empty header line", "*1\r\n\n", "-ERR Protocol error: expected '$', got '\\x0a'\r\n"},
		{"valid command, then garbage", "PING\r\n*1\r\n$-5\r\n", "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRESP(t, addr)
			go func() { _, _ = io.WriteString(c.conn, tc.in) }()
			if got := readAllReplies(t, c, 10*time.Second); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if n := kv.callCount(); n != 0 {
		t.Fatalf("%d calls reached the backend", n)
	}
	c := dialRESP(t, addr)
	if got := c.do(t, "SET", "k", "v"); got != "OK" {
		t.Fatalf("SET after hostile input = %v", got)
	}
	if diff := cmp.Diff([]byte("v"), c.do(t, "GET", "k")); diff != "" {
		t.Fatal(diff)
	}
	testkit.Eventually(t, 10*time.Second, "every hostile connection to end", func() bool { return s.connCount() == 1 })
}

// TestRESPClientLeavesMidCommand: a client that leaves at any point of a
// command frees its connection and goroutine.
func TestRESPClientLeavesMidCommand(t *testing.T) {
	s, addr, kv := startRESP(t)
	for _, in := range []string{
		"", "*", "*2", "*2\r\n", "*2\r\n$3\r\nGET\r\n$1000", "*2\r\n$3\r\nGET\r\n$1000\r\n" + strings.Repeat("k", 500),
		"GET k", strings.Repeat("a", 30<<10),
	} {
		c := dialRESP(t, addr)
		if _, err := io.WriteString(c.conn, in); err != nil {
			t.Fatal(err)
		}
		_ = c.conn.Close()
	}
	testkit.Eventually(t, 10*time.Second, "every connection to end", func() bool { return s.connCount() == 0 })
	if n := kv.callCount(); n != 0 {
		t.Fatalf("%d calls reached the backend", n)
	}
}

// TestRESPValidEdgeCases: what Redis accepts keeps working: empty and
// null arrays and blank inline lines are skipped, inline commands split on
// blanks with Redis's quoting rules, bulk arguments may hold any byte.
func TestRESPValidEdgeCases(t *testing.T) {
	_, addr, _ := startRESP(t)
	c := dialRESP(t, addr)
	in := "*0\r\n*-1\r\n\r\n  \r\n\n" + // all skipped
		"PING\r\n" +
		"ECHO \"a b\\x41\\n\"\r\n" +
		"ECHO 'it\\'s'\r\n" +
		"  ECHO   x  \n" +
		"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\n\r\n" +
		"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"
	go func() { _, _ = io.WriteString(c.conn, in) }()
	want := []any{"PONG", []byte("a bA\n"), []byte("it's"), []byte("x"), []byte("\r\n\x00\n"), []byte{}}
	for i, w := range want {
		if err := c.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := readReply(c.rd)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Fatalf("reply %d (-want +got):\n%s", i, diff)
		}
	}
}

// TestRESPSlowInlineLine: an inline line fed a little at a time is refused
// once it passes 64 KiB, whatever the command cap, instead of being
// buffered (and rescanned on every read) up to the cap.
func TestRESPSlowInlineLine(t *testing.T) {
	limits := LimitsConfig{MaxKeyBytes: 1 << 10, MaxValueBytes: 1 << 20}
	_, addr := startRESPWith(t, newFakeKV(), limits)
	c := dialRESP(t, addr)
	const total = 1100 << 10
	sent := make(chan int, 1)
	go func() {
		chunk := []byte(strings.Repeat("a", 256))
		n := 0
		for n < total {
			if _, err := c.conn.Write(chunk); err != nil {
				break
			}
			n += len(chunk)
		}
		sent <- n
	}()
	rd := bufio.NewReader(c.conn)
	if err := c.conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, line)
	}
	if line != "-ERR Protocol error: too big inline request\r\n" {
		t.Fatalf("got %q", line)
	}
	if _, err := rd.ReadByte(); err == nil {
		t.Fatal("connection still open after the protocol error")
	}
	_ = c.conn.Close() // unblocks the writer if the kernel still had room
	n := <-sent
	t.Logf("%d bytes accepted by the kernel before the connection ended", n)
}

// panicKV is a kvBackend whose reads panic, standing in for a bug.
type panicKV struct{ *fakeKV }

func (panicKV) Get(context.Context, []byte, string) (kvResult, error) { panic("injected bug") }

// recordHandler keeps the records logged at error level.
type recordHandler struct {
	mu   sync.Mutex // guards recs
	recs []slog.Record
}

func (h *recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// messages lists the messages logged with attribute key=value.
func (h *recordHandler) messages(key, value string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key && a.Value.String() == value {
				out = append(out, r.Message)
			}
			return true
		})
	}
	return out
}

// TestRESPRecoversPanic: a command that panics ends its own connection
// with an error reply, is logged at error level and counted; the process
// and every other connection go on.
func TestRESPRecoversPanic(t *testing.T) {
	kv := panicKV{newFakeKV()}
	rec := &recordHandler{}
	m := newMetrics(metricSources{})
	s := newRESPServer(kv, func() respInfo { return respInfo{} }, m, testLimits, slog.New(rec))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.serve(ln) }()
	t.Cleanup(func() {
		_ = s.shutdown(t.Context())
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	other := dialRESP(t, ln.Addr().String())
	if got := other.do(t, "PING"); got != "PONG" {
		t.Fatalf("PING = %v", got)
	}
	c := dialRESP(t, ln.Addr().String())
	// A pipeline: the reply before the panicking command is kept.
	if _, err := io.WriteString(c.conn, "PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := readAllReplies(t, c, 10*time.Second); got != "+PONG\r\n-ERR internal error; closing the connection\r\n" {
		t.Fatalf("reply to a panicking command: %q", got)
	}
	if got := other.do(t, "SET", "k", "v"); got != "OK" {
		t.Fatalf("SET on another connection = %v", got)
	}
	if got := counterValue(t, m, metricPanics, "listener", "resp"); got != 1 {
		t.Fatalf("%s{listener=resp} = %v, want 1", metricPanics, got)
	}
	if diff := cmp.Diff([]string{"panic recovered"}, rec.messages("listener", "resp")); diff != "" {
		t.Fatalf("error logs (-want +got):\n%s", diff)
	}
	// The in-flight count went back to zero: shutdown does not wait.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.shutdown(ctx); err != nil {
		t.Fatalf("shutdown after a panic: %v", err)
	}
}

// BenchmarkRESPReader reads one command of size bytes arriving chunk bytes
// at a time: ns/op divided by size stays flat as size grows (linear), and
// so does B/op (memory follows what arrived).
func BenchmarkRESPReader(b *testing.B) {
	limits := LimitsConfig{MaxKeyBytes: 1 << 10, MaxValueBytes: 1 << 20}
	for _, chunk := range []int{1, 4096} {
		for _, size := range []int{16 << 10, 64 << 10, 1 << 20} {
			in := []byte("*2\r\n$4\r\nECHO\r\n$" + fmt.Sprint(size) + "\r\n" + strings.Repeat("v", size) + "\r\n")
			b.Run(fmt.Sprintf("chunk=%d/size=%d", chunk, size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					rd := newRESPReader(&scriptConn{in: in, chunk: chunk}, respCommandCap(limits))
					if args, err := rd.next(); err != nil || len(args[1]) != size {
						b.Fatal(err)
					}
				}
			})
		}
	}
	// An inline line, which is searched for its end as it arrives.
	for _, size := range []int{16 << 10, 64 << 10} {
		in := []byte("ECHO " + strings.Repeat("v", size-7) + "\r\n")
		b.Run(fmt.Sprintf("inline/chunk=1/size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				rd := newRESPReader(&scriptConn{in: in, chunk: 1}, respCommandCap(limits))
				if _, err := rd.next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
