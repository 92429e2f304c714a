package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// process is one run of "ringkv server" for a node.
type process struct {
	cmd   *exec.Cmd
	out   *lineWriter
	ready chan struct{} // closed on the node's ready line
	done  chan struct{} // closed once the process has exited and its output is read
	err   error         // Wait's result, valid after done
}

// exitCode is the process's exit code after done, -1 when it was killed
// by a signal or could not be waited for.
func (p *process) exitCode() int {
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProcess runs binary with args; its output goes line by line to out,
// and onExit is called once it has exited, before done is closed. The
// child is in its own process group (signals reach the node and nothing
// else) and, on Linux, is killed if the harness dies.
func startProcess(binary string, args []string, out *lineWriter, onExit func(*process)) (*process, error) {
	p := &process{out: out, ready: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	// The harness's own environment must not configure the nodes.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RINGKV_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.SysProcAttr = childSysProcAttr()
	// One writer for both streams: os/exec then uses a single pipe and a
	// single copying goroutine, so lines from the two never interleave
	// mid-line.
	p.cmd.Stdout, p.cmd.Stderr = out, out
	var once sync.Once
	out.setReady(func() { once.Do(func() { close(p.ready) }) })
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: start %s: %w", binary, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		out.flush()
		onExit(p)
		close(p.done)
	}()
	return p, nil
}

// maxLine bounds one output line held in memory; a longer line is cut
// into pieces of this size.
const maxLine = 64 << 10

// tailLines is how many of a node's last output lines LogTail can show.
const tailLines = 2000

// nodeOutput keeps one node's output across its restarts: the log file,
// the optional shared writer, and the last lines for failure reports.
type nodeOutput struct {
	name string
	file *os.File

	shared   io.Writer   // optional; lines prefixed with the node name
	sharedMu *sync.Mutex // guards shared, which every node writes to

	mu   sync.Mutex // guards file (closed by Stop), tail and next
	tail []string   // ring of the last tailLines lines
	next int        // index in tail of the next line once the ring is full
}

// add records one complete line.
func (o *nodeOutput) add(line string) {
	if o.shared != nil {
		o.sharedMu.Lock()
		_, _ = io.WriteString(o.shared, o.name+"| "+line+"\n")
		o.sharedMu.Unlock()
	}
	o.mu.Lock()
	if o.file != nil {
		_, _ = o.file.WriteString(line + "\n")
	}
	if len(o.tail) < tailLines {
		o.tail = append(o.tail, line)
	} else {
		o.tail[o.next] = line
		o.next = (o.next + 1) % tailLines
	}
	o.mu.Unlock()
}

// last returns up to n of the last lines, oldest first.
func (o *nodeOutput) last(n int) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	all := append(append([]string(nil), o.tail[o.next:]...), o.tail[:o.next]...)
	if n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}

// lineWriter cuts one process's output into lines for its node's output
// and watches for the ready line and for a bind failure.
type lineWriter struct {
	out *nodeOutput

	mu       sync.Mutex // guards the fields below
	partial  []byte
	onReady  func()
	addrs    map[string]string // the ready line's fields, once seen
	bindFail bool              // "address already in use" was printed
}

func newLineWriter(out *nodeOutput) *lineWriter { return &lineWriter{out: out} }

func (w *lineWriter) setReady(f func()) {
	w.mu.Lock()
	w.onReady = f
	w.mu.Unlock()
}

// Write implements io.Writer for os/exec's copying goroutine.
func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		room := maxLine - len(w.partial)
		if i < 0 || i > room {
			// No line end within the room left: keep what fits, and
			// cut the line when it is full.
			if len(b) < room {
				w.partial = append(w.partial, b...)
				break
			}
			w.partial = append(w.partial, b[:room]...)
			b = b[room:]
			w.lineLocked()
			continue
		}
		w.partial = append(w.partial, b[:i]...)
		b = b[i+1:]
		w.lineLocked()
	}
	return n, nil
}

// flush emits an unterminated last line.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.lineLocked()
	}
}

func (w *lineWriter) lineLocked() {
	line := string(w.partial)
	w.partial = w.partial[:0]
	w.out.add(line)
	if strings.Contains(line, "address already in use") {
		w.bindFail = true
	}
	if w.addrs == nil {
		if fields, ok := parseReady(line); ok {
			w.addrs = fields
			if w.onReady != nil {
				w.onReady()
			}
		}
	}
}

// readyAddrs returns the ready line's fields, nil before it.
func (w *lineWriter) readyAddrs() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addrs
}

func (w *lineWriter) sawBindFailure() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bindFail
}

// parseReady parses "ringkv ready name=.. http=.. resp=.. rpc=.. gossip=..",
// which a node prints once every listener is bound.
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
