package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is one running "ringkv server" process.
type server struct {
	name  string
	args  []string
	cmd   *exec.Cmd
	addrs map[string]string // from the ready line: http, resp, rpc, gossip
	out   *logBuffer        // stdout and stderr, shown when a test fails
	ready chan struct{}     // closed on the ready line
	done  chan struct{}     // closed when the process has exited
	err   error             // Wait's result, valid after done
}

// logBuffer collects a process's output lines for failure reports.
type logBuffer struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (l *logBuffer) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 4<<20 {
		l.b.WriteString(line + "\n")
	}
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs the binary with args and returns once it has started;
// call waitReady for its ready line. The process is killed at test end if
// the test has not stopped it, and its output is logged if the test failed.
func startServer(t *testing.T, name string, args ...string) *server {
	t.Helper()
	s := &server{name: name, args: args, out: &logBuffer{}, ready: make(chan struct{}), done: make(chan struct{})}
	s.cmd = exec.Command(binary, args...)
	// The tests' own environment must not configure the servers.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RINGKV_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		var once sync.Once
		s.scan(stdout, "out", func(line string) {
			if fields, ok := parseReady(line); ok {
				once.Do(func() { s.addrs = fields; close(s.ready) })
			}
		})
	}()
	go func() {
		defer readers.Done()
		s.scan(stderr, "err", nil)
	}()
	go func() {
		// Wait must follow the pipe readers' end (os/exec's contract).
		readers.Wait()
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", s.name, s.out)
		}
	})
	return s
}

func (s *server) scan(r io.Reader, stream string, onLine func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s.out.add(stream + "| " + sc.Text())
		if onLine != nil {
			onLine(sc.Text())
		}
	}
}

// parseReady parses "ringkv ready name=.. http=.. resp=.. rpc=.. gossip=..".
func parseReady(line string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(line, "ringkv ready ")
	if !ok {
		return nil, false
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	for _, k := range []string{"name", "http", "resp", "rpc", "gossip"} {
		if fields[k] == "" {
			return nil, false
		}
	}
	return fields, true
}

// waitReady waits for the ready line (listeners bound), then for GET
// /readyz to answer 200 (the node has joined its cluster and serves
// clients), failing the test if the process exits first or the deadline
// passes.
func (s *server) waitReady(t *testing.T, deadline time.Time) {
	t.Helper()
	select {
	case <-s.ready:
	case <-s.done:
		t.Fatalf("%s exited before it was ready: %v\n%s", s.name, s.err, s.out)
	case <-time.After(time.Until(deadline)):
		t.Fatalf("%s not ready by the deadline\n%s", s.name, s.out)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get("http://" + s.addrs["http"] + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("%s exited before it served clients: %v\n%s", s.name, s.err, s.out)
		case <-time.After(min(100*time.Millisecond, time.Until(deadline))):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not serve clients (GET /readyz) by the deadline\n%s", s.name, s.out)
		}
	}
}

// stop sends SIGTERM and returns the exit code, failing the test if the
// process does not exit within limit.
func (s *server) stop(t *testing.T, limit time.Duration) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", s.name, err)
	}
	return s.wait(t, limit)
}

// kill sends SIGKILL, a crash, and waits for the process to be gone.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL %s: %v", s.name, err)
	}
	<-s.done
}

// wait returns the exit code once the process has exited.
func (s *server) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(limit):
		t.Fatalf("%s still running after %s\n%s", s.name, limit, s.out)
	}
	var ee *exec.ExitError
	switch {
	case s.err == nil:
		return 0
	case errors.As(s.err, &ee):
		return ee.ExitCode()
	default:
		t.Fatalf("%s: %v", s.name, s.err)
		return -1
	}
}

// devConfigFor rewrites configs/dev-node<i>.yaml for a cluster on the given
// ports: every 127.0.0.1:<dev port> becomes the matching free port, so the
// file under test is the real example config, only moved.
func devConfigFor(t *testing.T, i int, mapping *strings.Replacer, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "configs", fmt.Sprintf("dev-node%d.yaml", i)))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("n%d.yaml", i))
	if err := os.WriteFile(path, []byte(mapping.Replace(string(data))), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startCluster starts the 3-node layout of configs/dev-node*.yaml on free
// ports with fresh data directories and waits for every ready line.
func startCluster(t *testing.T, deadline time.Time) []*server {
	t.Helper()
	const n = 3
	ports := freePorts(t, 4*n)
	var pairs []string
	bases := []int{8001, 6380, 7001, 9001} // http, resp, rpc, gossip of dev node 1
	for i := range n {
		for k, base := range bases {
			pairs = append(pairs, "127.0.0.1:"+strconv.Itoa(base+i), "127.0.0.1:"+strconv.Itoa(ports[4*i+k]))
		}
	}
	mapping := strings.NewReplacer(pairs...)
	dir := t.TempDir()
	servers := make([]*server, n)
	for i := range n {
		cfg := devConfigFor(t, i+1, mapping, dir)
		name := fmt.Sprintf("n%d", i+1)
		servers[i] = startServer(t, name, "server", "--config", cfg, "--data-dir", filepath.Join(dir, name))
	}
	for i, s := range servers {
		s.waitReady(t, deadline)
		wantHTTP := "127.0.0.1:" + strconv.Itoa(ports[4*i])
		if s.addrs["http"] != wantHTTP || s.addrs["name"] != s.name {
			t.Fatalf("%s ready line %v, want name %s http %s", s.name, s.addrs, s.name, wantHTTP)
		}
	}
	return servers
}
