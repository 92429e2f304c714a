package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeKV is a node's key-value HTTP API in memory, with faults chosen by
// record number: keys userN answer 503 when fail503(N), lose their
// connection when closeConn(N), and never answer when hang(N).
type fakeKV struct {
	fail503, closeConn, hang func(n int) bool

	mu       sync.Mutex // guards everything below
	data     map[string][]byte
	puts     map[string]int // PUTs stored per key
	gets     int            // GETs answered 200 or 404
	n503     int
	nClosed  int
	nHung    int
	requests int
	queries  map[string]bool // "GET r=all", "PUT w=2" as seen
	seen     chan struct{}   // closed once requests reaches seenAfter
	seenAt   int
}

func newFakeKV(t *testing.T) (*fakeKV, string) {
	t.Helper()
	no := func(int) bool { return false }
	f := &fakeKV{fail503: no, closeConn: no, hang: no, data: map[string][]byte{}, puts: map[string]int{}, queries: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv.Listener.Addr().String()
}

// notifyAfter returns a channel closed once n requests have arrived.
func (f *fakeKV) notifyAfter(n int) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen, f.seenAt = make(chan struct{}), n
	return f.seen
}

func (f *fakeKV) serve(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, "/v1/kv/")
	num, err := strconv.Atoi(strings.TrimPrefix(key, "user"))
	if !ok || err != nil {
		http.Error(w, "bad key", http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	f.mu.Lock()
	f.requests++
	if f.seen != nil && f.requests == f.seenAt {
		close(f.seen)
	}
	f.queries[r.Method+" "+r.URL.RawQuery] = true
	switch {
	case f.hang(num):
		f.nHung++
		f.mu.Unlock()
		<-r.Context().Done() // the client gave up
		return
	case f.closeConn(num):
		f.nClosed++
		f.mu.Unlock()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	case f.fail503(num):
		f.n503++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":"quorum not met: need 2, got 1","need":2,"got":1}`)
		return
	}
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		f.data[key] = body
		f.puts[key]++
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		f.gets++
		v, ok := f.data[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"not found"}`)
			return
		}
		_, _ = w.Write(v)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// runBench runs ringkv bench --json with args and decodes the report.
func runBench(t *testing.T, ctx context.Context, args ...string) (int, benchReport, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"bench", "--json", "--seed", "7"}, args...), strings.NewReader(""), &out, &errb)
	var rep benchReport
	if code != 2 {
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("bench %v: exit %d, --json output does not parse: %v\n%s\nstderr: %s", args, code, err, out.String(), errb.String())
		}
	}
	return code, rep, errb.String()
}

// checkSums checks that every count adds up: ok + errors = count, and
// not found and latencies only among answered operations.
func checkSums(t *testing.T, name string, s *benchOpSummary) {
	t.Helper()
	if s == nil {
		return
	}
	e := s.Errors
	if e.Timeout+e.Conn+e.Quorum+e.Other != e.Total || s.OK+e.Total != s.Count || s.NotFound > s.OK {
		t.Errorf("%s: counts do not add up: %+v", name, *s)
	}
	if s.OK > 0 && (s.LatencyUs.P50 < 1 || s.LatencyUs.P50 > s.LatencyUs.P99 || s.LatencyUs.P99 > s.LatencyUs.Max) {
		t.Errorf("%s: latencies out of order: %+v", name, s.LatencyUs)
	}
}

func TestBenchWorkloadsHTTP(t *testing.T) {
	const ops = 2000
	tests := []struct {
		workload         string
		minRead, maxRead int64
	}{
		{"a", 800, 1200}, // 50% +- 10%
		{"b", 1800, 1990},
		{"c", ops, ops},
		{"write", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.workload, func(t *testing.T) {
			f, addr := newFakeKV(t)
			code, rep, stderr := runBench(t, t.Context(), "--workload", tc.workload, "--ops", strconv.Itoa(ops),
				"--clients", "8", "--records", "500", "--nodes", addr)
			if code != 0 {
				t.Fatalf("exit %d; stderr: %s", code, stderr)
			}
			checkSums(t, "read", rep.Read)
			checkSums(t, "update", rep.Update)
			if rep.Read.Count+rep.Update.Count != ops || rep.Run.Count != ops {
				t.Errorf("read %d + update %d, run %d: want %d", rep.Read.Count, rep.Update.Count, rep.Run.Count, ops)
			}
			if rep.Read.Count < tc.minRead || rep.Read.Count > tc.maxRead {
				t.Errorf("workload %s: %d reads of %d, want %d..%d", tc.workload, rep.Read.Count, ops, tc.minRead, tc.maxRead)
			}
			if rep.Read.Errors.Total+rep.Update.Errors.Total != 0 || rep.Interrupted || rep.Load != nil {
				t.Errorf("errors, interrupted or load in %+v", rep)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			puts := 0
			for _, n := range f.puts {
				puts += n
			}
			if int64(puts) != rep.Update.Count || int64(f.gets) != rep.Read.Count {
				t.Errorf("fake saw %d PUTs and %d GETs; report says %d updates, %d reads", puts, f.gets, rep.Update.Count, rep.Read.Count)
			}
			// Without --load, the first read of a record finds nothing.
			if tc.workload == "c" && rep.Read.NotFound != ops {
				t.Errorf("workload c without load: %d not found, want all %d", rep.Read.NotFound, ops)
			}
		})
	}
}

func TestBenchLoadWritesEveryRecordOnce(t *testing.T) {
	f, addr := newFakeKV(t)
	code, rep, stderr := runBench(t, t.Context(), "--load", "--records", "700", "--workload", "c", "--ops", "300",
		"--clients", "16", "--distribution", "uniform", "--value-size", "33", "--nodes", addr)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	checkSums(t, "load", rep.Load)
	if rep.Load == nil || rep.Load.Count != 700 || rep.Load.OK != 700 {
		t.Fatalf("load summary %+v, want 700 writes", rep.Load)
	}
	if rep.Read.Count != 300 || rep.Read.NotFound != 0 || rep.Update.Count != 0 {
		t.Errorf("after the load, reads %+v updates %+v: want 300 found, no updates", *rep.Read, *rep.Update)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.puts) != 700 {
		t.Errorf("%d records written, want 700", len(f.puts))
	}
	for i := range 700 {
		k := benchKey(uint64(i))
		if f.puts[k] != 1 || len(f.data[k]) != 33 {
			t.Errorf("%s written %d times with %d bytes, want once with 33", k, f.puts[k], len(f.data[k]))
		}
	}
}

func TestBenchErrorsByKindHTTP(t *testing.T) {
	f, addr := newFakeKV(t)
	f.fail503 = func(n int) bool { return n%10 == 3 }
	f.closeConn = func(n int) bool { return n%10 == 7 }
	code, rep, stderr := runBench(t, t.Context(), "--ops", "2000", "--clients", "8", "--records", "100",
		"--distribution", "uniform", "--nodes", addr, "--r", "all", "--w", "2")
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	checkSums(t, "read", rep.Read)
	checkSums(t, "update", rep.Update)
	f.mu.Lock()
	defer f.mu.Unlock()
	quorum := rep.Read.Errors.Quorum + rep.Update.Errors.Quorum
	conn := rep.Read.Errors.Conn + rep.Update.Errors.Conn
	if quorum != int64(f.n503) || quorum == 0 {
		t.Errorf("%d quorum errors counted, the fake answered 503 %d times", quorum, f.n503)
	}
	// A GET on a reused connection that closes is retried once by
	// net/http, so one failed read may be two closes.
	if conn == 0 || conn > int64(f.nClosed) {
		t.Errorf("%d connection errors counted, the fake closed %d connections", conn, f.nClosed)
	}
	if o := rep.Read.Errors.Other + rep.Update.Errors.Other + rep.Read.Errors.Timeout + rep.Update.Errors.Timeout; o != 0 {
		t.Errorf("%d other/timeout errors, want 0; last: %q %q", o, rep.Read.LastError, rep.Update.LastError)
	}
	if !f.queries["GET r=all"] || !f.queries["PUT w=2"] || len(f.queries) != 2 {
		t.Errorf("queries seen %v, want GET r=all and PUT w=2", f.queries)
	}
}

func TestBenchTimeouts(t *testing.T) {
	f, addr := newFakeKV(t)
	f.hang = func(n int) bool { return n == 3 }
	code, rep, stderr := runBench(t, t.Context(), "--ops", "100", "--clients", "4", "--records", "10",
		"--distribution", "uniform", "--timeout", "300ms", "--nodes", addr)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Slow answers on a loaded machine may time out too, so only a lower bound.
	timeouts := rep.Read.Errors.Timeout + rep.Update.Errors.Timeout
	if f.nHung == 0 || timeouts < int64(f.nHung) {
		t.Errorf("%d timeouts counted, %d requests hung", timeouts, f.nHung)
	}
}

func TestBenchRoundRobinNodes(t *testing.T) {
	f1, addr1 := newFakeKV(t)
	f2, addr2 := newFakeKV(t)
	code, rep, stderr := runBench(t, t.Context(), "--ops", "400", "--clients", "4", "--nodes", addr1+", http://"+addr2)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	f1.mu.Lock()
	n1 := f1.requests
	f1.mu.Unlock()
	f2.mu.Lock()
	n2 := f2.requests
	f2.mu.Unlock()
	if n1 == 0 || n2 == 0 || int64(n1+n2) != rep.Run.Count {
		t.Errorf("node 1 got %d requests, node 2 %d; %d ops", n1, n2, rep.Run.Count)
	}
	if len(rep.Config.Nodes) != 2 {
		t.Errorf("config nodes %v", rep.Config.Nodes)
	}
}

func TestBenchInterrupted(t *testing.T) {
	f, addr := newFakeKV(t)
	seen := f.notifyAfter(200)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		<-seen // Ctrl-C once the run is under way
		cancel()
	}()
	code, rep, stderr := runBench(t, ctx, "--duration", "1h", "--clients", "4", "--nodes", addr)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	if !rep.Interrupted || rep.Run == nil || rep.Run.Count < 190 {
		t.Errorf("interrupted %v, run %+v: want interrupted after about 200 ops", rep.Interrupted, rep.Run)
	}
	checkSums(t, "read", rep.Read)
	checkSums(t, "update", rep.Update)
}

func TestBenchNothingReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nobody listens there now
	for _, proto := range []string{"http", "resp"} {
		code, rep, stderr := runBench(t, t.Context(), "--protocol", proto, "--ops", "20", "--clients", "2", "--nodes", addr)
		if code != 1 || !rep.Failed || rep.Run.Errors != 20 || rep.Read.Errors.Conn+rep.Update.Errors.Conn != 20 {
			t.Errorf("%s: exit %d, report %+v: want exit 1 and 20 connection errors", proto, code, rep.Run)
		}
		if !strings.Contains(stderr, "every operation failed") {
			t.Errorf("%s: stderr %q", proto, stderr)
		}
	}
}

func TestBenchTextOutput(t *testing.T) {
	_, addr := newFakeKV(t)
	code, out, stderr := runCLI(t, "", "bench", "--load", "--records", "50", "--ops", "100", "--clients", "2", "--nodes", addr)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	for _, want := range []string{"workload a (50% read, 50% update)", "p99.9 ms", "load  ", "read  ", "update  ", "load: 50 records", "run: 100 ops"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(stderr, "bench: workload a") {
		t.Errorf("stderr: %q", stderr)
	}
}

func TestBenchBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--workload", "d"}, "--workload"},
		{[]string{"--records", "0"}, "--records"},
		{[]string{"--records", "100000001"}, "--records"},
		{[]string{"--clients", "0"}, "--clients"},
		{[]string{"--clients", "1025"}, "--clients"},
		{[]string{"--value-size", "0"}, "--value-size"},
		{[]string{"--value-size", "1048577"}, "--value-size"},
		{[]string{"--distribution", "latest"}, "--distribution"},
		{[]string{"--duration", "10s", "--ops", "5"}, "exactly one bound"},
		{[]string{"--ops", "0"}, "--ops"},
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--duration", "25h"}, "--duration"},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--protocol", "grpc"}, "--protocol"},
		{[]string{"--protocol", "resp", "--r", "one"}, "RESP has no per-request R or W"},
		{[]string{"--protocol", "resp", "--w", "all"}, "RESP has no per-request R or W"},
		{[]string{"--r", "most"}, "--r"},
		{[]string{"--w", "0"}, "--w"},
		{[]string{"--nodes", "127.0.0.1"}, "not host:port"},
		{[]string{"--nodes", "127.0.0.1:8001,"}, "not host:port"},
		{[]string{"--nodes", "127.0.0.1:99999"}, "not host:port"},
		{[]string{"--nodes", "ftp://127.0.0.1:1"}, "not host:port"},
		{[]string{"--protocol", "resp", "--nodes", "http://127.0.0.1:6380"}, "not host:port"},
		{[]string{"--nodes", strings.Repeat("127.0.0.1:1,", 1025) + "127.0.0.1:1"}, "at most 1024"},
		{[]string{"--clients", "x"}, "invalid argument"},
		{[]string{"extra"}, "no arguments"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " ")[:min(40, len(strings.Join(tc.args, " ")))], func(t *testing.T) {
			code, out, stderr := runCLI(t, "", append([]string{"bench"}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want exit 2 naming %q", code, out, stderr, tc.want)
			}
		})
	}
}

// fakeRESP is a node's RESP front end reduced to GET and SET, with faults
// by record number as fakeKV's.
type fakeRESP struct {
	failQuorum, closeConn func(n int) bool

	mu      sync.Mutex // guards everything below
	data    map[string][]byte
	sets    map[string]int
	gets    int
	nQuorum int
	nClosed int
}

func newFakeRESP(t *testing.T) (*fakeRESP, string) {
	t.Helper()
	no := func(int) bool { return false }
	f := &fakeRESP{failQuorum: no, closeConn: no, data: map[string][]byte{}, sets: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var connsMu sync.Mutex // guards conns
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		_ = ln.Close()
		connsMu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns[c] = true
			connsMu.Unlock()
			wg.Go(func() {
				defer c.Close()
				f.serve(c)
			})
		}
	})
	return f, ln.Addr().String()
}

// readCommand reads one RESP array of bulk strings, bounded.
func readCommand(rd *bufio.Reader) ([][]byte, error) {
	header := func(prefix byte) (int, error) {
		line, err := rd.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if len(line) < 3 || line[0] != prefix || !strings.HasSuffix(line, "\r\n") {
			return 0, fmt.Errorf("bad header %q", line)
		}
		n, err := strconv.Atoi(line[1 : len(line)-2])
		if err != nil || n < 0 || n > 2<<20 {
			return 0, fmt.Errorf("bad length %q", line)
		}
		return n, nil
	}
	n, err := header('*')
	if err != nil || n > 3 {
		return nil, errors.Join(err, errors.New("bad command"))
	}
	args := make([][]byte, n)
	for i := range args {
		l, err := header('$')
		if err != nil {
			return nil, err
		}
		args[i] = make([]byte, l+2)
		if _, err := io.ReadFull(rd, args[i]); err != nil {
			return nil, err
		}
		args[i] = args[i][:l]
	}
	return args, nil
}

func (f *fakeRESP) serve(c net.Conn) {
	rd := bufio.NewReader(c)
	for {
		args, err := readCommand(rd)
		if err != nil || len(args) < 2 {
			return
		}
		key := string(args[1])
		num, _ := strconv.Atoi(strings.TrimPrefix(key, "user"))
		f.mu.Lock()
		var reply string
		switch cmd := strings.ToUpper(string(args[0])); {
		case f.closeConn(num):
			f.nClosed++
			f.mu.Unlock()
			return
		case f.failQuorum(num):
			f.nQuorum++
			reply = "-ERR put quorum not met: need 2, got 1\r\n"
		case cmd == "SET" && len(args) == 3:
			f.data[key] = args[2]
			f.sets[key]++
			reply = "+OK\r\n"
		case cmd == "GET" && len(args) == 2:
			f.gets++
			if v, ok := f.data[key]; ok {
				reply = fmt.Sprintf("$%d\r\n%s\r\n", len(v), v)
			} else {
				reply = "$-1\r\n"
			}
		default:
			reply = "-ERR unknown command\r\n"
		}
		f.mu.Unlock()
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

func TestBenchRESP(t *testing.T) {
	f, addr := newFakeRESP(t)
	code, rep, stderr := runBench(t, t.Context(), "--protocol", "resp", "--load", "--records", "300", "--ops", "2000",
		"--clients", "8", "--nodes", addr)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	for name, s := range map[string]*benchOpSummary{"load": rep.Load, "read": rep.Read, "update": rep.Update} {
		checkSums(t, name, s)
		if s.Errors.Total != 0 {
			t.Errorf("%s: errors %+v (%s)", name, s.Errors, s.LastError)
		}
	}
	if rep.Load.Count != 300 || rep.Read.Count+rep.Update.Count != 2000 || rep.Read.Count < 800 || rep.Read.Count > 1200 {
		t.Errorf("load %d, read %d, update %d", rep.Load.Count, rep.Read.Count, rep.Update.Count)
	}
	if rep.Read.NotFound != 0 {
		t.Errorf("%d reads not found after the load", rep.Read.NotFound)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sets := 0
	for _, n := range f.sets {
		sets += n
	}
	if len(f.sets) != 300 || int64(sets) != rep.Load.Count+rep.Update.Count || int64(f.gets) != rep.Read.Count {
		t.Errorf("fake: %d keys, %d SETs, %d GETs", len(f.sets), sets, f.gets)
	}
}

func TestBenchRESPNotFoundAndErrors(t *testing.T) {
	f, addr := newFakeRESP(t)
	f.failQuorum = func(n int) bool { return n%10 == 3 }
	f.closeConn = func(n int) bool { return n%10 == 7 }
	code, rep, stderr := runBench(t, t.Context(), "--protocol", "resp", "--records", "100", "--distribution", "uniform",
		"--ops", "2000", "--clients", "8", "--nodes", addr)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	checkSums(t, "read", rep.Read)
	checkSums(t, "update", rep.Update)
	f.mu.Lock()
	defer f.mu.Unlock()
	quorum := rep.Read.Errors.Quorum + rep.Update.Errors.Quorum
	conn := rep.Read.Errors.Conn + rep.Update.Errors.Conn
	if quorum == 0 || quorum != int64(f.nQuorum) || conn == 0 || conn != int64(f.nClosed) {
		t.Errorf("quorum %d (fake %d), conn %d (fake %d)", quorum, f.nQuorum, conn, f.nClosed)
	}
	if rep.Read.NotFound == 0 {
		t.Errorf("no read was not found, yet nothing was loaded")
	}
	if o := rep.Read.Errors.Other + rep.Update.Errors.Other; o != 0 {
		t.Errorf("%d other errors: %q %q", o, rep.Read.LastError, rep.Update.LastError)
	}
}

// TestRESPDriverHostileReplies feeds the driver malformed replies: each is
// an error of kind other, the connection is dropped, nothing panics or
// allocates what the reply declares.
func TestRESPDriverHostileReplies(t *testing.T) {
	for _, reply := range []string{
		"$99999999999\r\n",
		"$-5\r\n",
		"$3\r\nabcXY",
		"*1\r\n$1\r\na\r\n",
		"\r\n",
		"+OK\n",
		strings.Repeat("+", 70<<10) + "\r\n",
	} {
		t.Run(fmt.Sprintf("%.20q", reply), func(t *testing.T) {
			server, client := net.Pipe()
			defer server.Close()
			go func() {
				rd := bufio.NewReader(server)
				if _, err := readCommand(rd); err == nil {
					_, _ = io.WriteString(server, reply)
				}
			}()
			d := newRESPDriver("pipe", 5e9)
			d.conn, d.rd, d.wr = client, bufio.NewReaderSize(client, respMaxLine), bufio.NewWriter(client)
			_, err := d.read(t.Context(), "user1")
			var be *benchError
			if !errors.As(err, &be) || be.kind != errOther {
				t.Errorf("reply %.40q: error %v, want kind other", reply, err)
			}
			if d.conn != nil {
				t.Errorf("connection kept after a malformed reply")
			}
		})
	}
}
