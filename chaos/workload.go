package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// contextHeader carries the causal context on requests and answers
// (docs/http-api.md); the package does not import node for one name.
const contextHeader = "X-Ringkv-Context"

// maxKeyBytes is the server's default key limit; keys the workload makes
// stay under it.
const maxKeyBytes = 1024

// WorkloadConfig configures NewWorkload. Zero fields take the documented
// defaults.
type WorkloadConfig struct {
	// Nodes returns the HTTP host:port of the nodes to send requests to
	// now (it changes as nodes die and join); each operation picks one at
	// random. Required. While it returns none, clients wait.
	Nodes func() []string
	// Clients is the number of concurrent clients (default 8).
	Clients int
	// Keys is the number of keys every client reads and writes (default 20).
	Keys int
	// OwnKeys is the number of keys each client alone writes (default 4).
	OwnKeys int
	// R and W are sent as ?r= and ?w=: "one", "quorum", "all" or a number
	// (default "quorum").
	R, W string
	// Mode is "context" (default): each write reuses the context of the
	// client's last answer about the key, as client libraries do, and a
	// share ReadRatio of operations are plain reads; or "read-first":
	// every write is a read followed by a write with the read's context.
	Mode string
	// ReadRatio is the share of operations that are plain reads in
	// context mode, in [0, 1) (default 0.3; zero takes the default).
	ReadRatio float64
	// Timeout bounds each request (default 2s). A write that times out
	// is Unknown.
	Timeout time.Duration
	// Seed seeds the clients' random choices of key, node and operation.
	Seed int64
	// Prefix starts every key; it must be unique to the run (default
	// "chaos-" and random hex).
	Prefix string
	// Client sends the requests (default: a client whose transport keeps
	// an idle connection per client and node).
	Client *http.Client
}

// Workload modes.
const (
	ModeContext   = "context"
	ModeReadFirst = "read-first"
)

// maxClients and maxKeys bound what a configuration may ask for, so that
// a typo cannot start a million goroutines.
const (
	maxClients = 4096
	maxKeys    = 1 << 20
)

// Counts are a workload's live counters.
type Counts struct {
	Ops, OK, Failed, Unknown, Reads, Writes int64
	// BadRequests counts 400 answers: the workload sent something the
	// server refuses, a bug of the workload or of its configuration.
	BadRequests int64
}

// Workload is a set of clients reading and writing unique values with
// causal contexts and recording every operation in a History.
type Workload struct {
	cfg    WorkloadConfig
	h      *History
	client *http.Client
	shared []string
	own    [][]string // own[c] is client c's keys

	ops, ok, failed, unknown, reads, writes, bad atomic.Int64

	errMu sync.Mutex // guards err
	err   error
}

// NewWorkload checks cfg, fills its defaults and returns a workload that
// records into h.
func NewWorkload(cfg WorkloadConfig, h *History) (*Workload, error) {
	if h == nil {
		return nil, errors.New("chaos: workload needs a History")
	}
	if cfg.Nodes == nil {
		return nil, errors.New("chaos: workload needs Nodes")
	}
	if cfg.Clients == 0 {
		cfg.Clients = 8
	}
	if cfg.Keys == 0 {
		cfg.Keys = 20
	}
	if cfg.OwnKeys == 0 {
		cfg.OwnKeys = 4
	}
	if cfg.Clients < 0 || cfg.Clients > maxClients {
		return nil, fmt.Errorf("chaos: workload clients %d: want 1..%d", cfg.Clients, maxClients)
	}
	if cfg.Keys < 0 || cfg.OwnKeys < 0 || cfg.Keys+cfg.Clients*cfg.OwnKeys > maxKeys {
		return nil, fmt.Errorf("chaos: workload keys %d + %d clients x %d own keys: want at most %d in all",
			cfg.Keys, cfg.Clients, cfg.OwnKeys, maxKeys)
	}
	var err error
	if cfg.R, err = checkQuorumParam("R", cfg.R); err != nil {
		return nil, err
	}
	if cfg.W, err = checkQuorumParam("W", cfg.W); err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeContext
	case ModeContext, ModeReadFirst:
	default:
		return nil, fmt.Errorf("chaos: workload mode %q: want %q or %q", cfg.Mode, ModeContext, ModeReadFirst)
	}
	if cfg.ReadRatio == 0 {
		cfg.ReadRatio = 0.3
	}
	if !(cfg.ReadRatio >= 0 && cfg.ReadRatio < 1) {
		return nil, fmt.Errorf("chaos: workload read ratio %v: want [0, 1)", cfg.ReadRatio)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("chaos: workload timeout %v is negative", cfg.Timeout)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("chaos-%016x", rand.Uint64())
	}
	// The longest key is the prefix, "/c", a client number, "/" and a
	// key number: leave 32 bytes for those.
	if len(cfg.Prefix) > maxKeyBytes-32 {
		return nil, fmt.Errorf("chaos: workload prefix is %d bytes: want at most %d", len(cfg.Prefix), maxKeyBytes-32)
	}
	w := &Workload{cfg: cfg, h: h, client: cfg.Client}
	if w.client == nil {
		w.client = &http.Client{Transport: &http.Transport{
			// The default keeps 2 idle connections per host: every
			// client beyond the second would dial anew for each request.
			MaxIdleConns:        cfg.Clients * 16,
			MaxIdleConnsPerHost: cfg.Clients + 2,
			IdleConnTimeout:     time.Minute,
		}}
	}
	for i := range cfg.Keys {
		w.shared = append(w.shared, fmt.Sprintf("%s/s%d", cfg.Prefix, i))
	}
	w.own = make([][]string, cfg.Clients)
	for c := range cfg.Clients {
		for i := range cfg.OwnKeys {
			w.own[c] = append(w.own[c], fmt.Sprintf("%s/c%d/%d", cfg.Prefix, c, i))
		}
	}
	return w, nil
}

// checkQuorumParam accepts what the server does for ?r= and ?w=, with the
// server's own parser (replica.ParseQuorum): one, quorum, all in any case,
// or a positive number (at most 255 here: no cluster is larger); empty is
// "quorum". It returns the canonical spelling.
func checkQuorumParam(name, v string) (string, error) {
	q, err := replica.ParseQuorum(v)
	switch {
	case err != nil || q > 255:
		return "", fmt.Errorf("chaos: workload %s %q: want one, quorum, all or a number", name, v)
	case q == replica.QuorumDefault:
		return replica.QuorumMajority.String(), nil
	}
	return q.String(), nil
}

// Keys returns every key the run may touch: the shared keys, then each
// client's own.
func (w *Workload) Keys() []string {
	out := append([]string(nil), w.shared...)
	for _, ks := range w.own {
		out = append(out, ks...)
	}
	return out
}

// Counts returns the counters so far.
func (w *Workload) Counts() Counts {
	return Counts{
		Ops: w.ops.Load(), OK: w.ok.Load(), Failed: w.failed.Load(), Unknown: w.unknown.Load(),
		Reads: w.reads.Load(), Writes: w.writes.Load(), BadRequests: w.bad.Load(),
	}
}

// Err returns the first sign of a workload bug: a 400 answer, or an
// acknowledged answer the workload could not use (an unreadable sibling
// list or context). The operation is recorded either way; a run with
// such an error tests less than it claims.
func (w *Workload) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

func (w *Workload) noteBug(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.errMu.Unlock()
}

// Run seeds every key, then runs the clients until ctx is done.
//
// Seeding is the only place a write goes without a context: a blind write
// supersedes whatever its coordinator holds, which no history can
// describe, so each key gets one (recorded with Client -1 and Blind) before
// any client starts. Clients then always write with a context; a client
// without one for a key reads the key instead.
func (w *Workload) Run(ctx context.Context) {
	w.seed(ctx)
	var wg sync.WaitGroup
	for c := range w.cfg.Clients {
		wg.Go(func() { w.runClient(ctx, c) })
	}
	wg.Wait()
}

// keyState is what a client knows of a key: the context of its last
// usable answer and the values that context covers as far as it knows.
type keyState struct {
	ctx   string
	known []string
}

// client is one workload client's state, used by its goroutine alone.
type client struct {
	id    int
	tag   string // names the client in its values: c<id>, or seed<n> for a seeder
	rng   *rand.Rand
	seq   int
	state map[string]*keyState
}

// maxSeedTries bounds the attempts to seed one key. A key still without a
// context after them is only read (and written once a read finds a
// context), never written blind later: a client may be using it by then.
const maxSeedTries = 20

func (w *Workload) seed(ctx context.Context) {
	keys := make(chan string)
	var wg sync.WaitGroup
	for c := range w.cfg.Clients {
		cl := &client{id: -1, tag: fmt.Sprintf("seed%d", c), rng: rand.New(rand.NewPCG(uint64(w.cfg.Seed), uint64(c)^0x5eed)), state: map[string]*keyState{}}
		wg.Go(func() {
			for key := range keys {
				w.seedKey(ctx, cl, key)
			}
		})
	}
	for _, key := range w.Keys() {
		select {
		case keys <- key:
		case <-ctx.Done():
		}
	}
	close(keys)
	wg.Wait()
}

func (w *Workload) seedKey(ctx context.Context, cl *client, key string) {
	for try := range maxSeedTries {
		if ctx.Err() != nil {
			return
		}
		if w.write(ctx, cl, key, true) == OK {
			return
		}
		// A failed seed may still have landed somewhere: if a read finds
		// a context, clients can use it, and another blind write could
		// only add a sibling beside the first.
		if w.read(ctx, cl, key) == OK && cl.state[key] != nil && cl.state[key].ctx != "" {
			return
		}
		if !pause(ctx, time.Duration(try+1)*50*time.Millisecond) {
			return
		}
	}
}

// pause waits d or until ctx is done; it reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *Workload) runClient(ctx context.Context, id int) {
	cl := &client{id: id, tag: fmt.Sprintf("c%d", id), rng: rand.New(rand.NewPCG(uint64(w.cfg.Seed), uint64(id))), state: map[string]*keyState{}}
	for ctx.Err() == nil {
		key := w.pickKey(cl)
		st := cl.state[key]
		hasCtx := st != nil && st.ctx != ""
		switch {
		case w.cfg.Mode == ModeReadFirst:
			if w.read(ctx, cl, key) == OK && cl.state[key] != nil && cl.state[key].ctx != "" {
				w.write(ctx, cl, key, false)
			}
		case !hasCtx || cl.rng.Float64() < w.cfg.ReadRatio:
			w.read(ctx, cl, key)
		default:
			w.write(ctx, cl, key, false)
		}
	}
}

// pickKey takes a shared key seven times in ten when the client has own
// keys: shared keys make siblings, own keys make lost writes and stale
// reads easy to see.
func (w *Workload) pickKey(cl *client) string {
	own := w.own[cl.id]
	if len(own) > 0 && (len(w.shared) == 0 || cl.rng.IntN(10) >= 7) {
		return own[cl.rng.IntN(len(own))]
	}
	return w.shared[cl.rng.IntN(len(w.shared))]
}

// pickNode returns a node to send to, waiting while there is none; ""
// once ctx is done.
func (w *Workload) pickNode(ctx context.Context, cl *client) string {
	for {
		if nodes := w.cfg.Nodes(); len(nodes) > 0 {
			return nodes[cl.rng.IntN(len(nodes))]
		}
		if !pause(ctx, 20*time.Millisecond) {
			return ""
		}
	}
}

func (w *Workload) keyURL(node, key, param, q string) string {
	return "http://" + node + "/v1/kv/" + url.PathEscape(key) + "?" + param + "=" + url.QueryEscape(q)
}

// read GETs key and, when the answer is usable, makes its context and
// values the client's state of the key.
func (w *Workload) read(ctx context.Context, cl *client, key string) Outcome {
	node := w.pickNode(ctx, cl)
	if node == "" {
		return Unknown
	}
	op := Op{Client: cl.id, Kind: Read, Key: key, Node: node, Start: time.Now()}
	ans := w.do(ctx, http.MethodGet, w.keyURL(node, key, "r", w.cfg.R), nil, "")
	op.End = time.Now()
	op.Outcome, op.Err = w.classify(ans, true)
	if op.Outcome == OK {
		vals, err := answerValues(ans)
		if err != nil {
			w.noteBug(fmt.Errorf("chaos: GET %s via %s: %w", key, node, err))
			// The read did answer; what it returned is unknown, so it
			// counts as a read that failed to say.
			op.Outcome, op.Err = Unknown, err.Error()
		} else {
			op.Values = vals
			w.adopt(cl, key, ans, vals, node)
		}
	}
	w.record(op)
	return op.Outcome
}

// write PUTs a new unique value of key with the client's context (none
// when blind) and, when acknowledged, adopts the answer's context.
func (w *Workload) write(ctx context.Context, cl *client, key string, blind bool) Outcome {
	node := w.pickNode(ctx, cl)
	if node == "" {
		return Unknown
	}
	var sendCtx string
	var known []string
	if st := cl.state[key]; st != nil && !blind {
		sendCtx, known = st.ctx, append([]string(nil), st.known...)
	}
	if sendCtx == "" && !blind {
		// Only seeding writes blind (see Run); callers read first.
		panic("chaos: client write without a context")
	}
	cl.seq++
	value := fmt.Sprintf("%s/%s/%d", w.cfg.Prefix, cl.tag, cl.seq)
	op := Op{Client: cl.id, Kind: Write, Key: key, Value: value, Known: known, Node: node, Blind: blind}
	op.Start = time.Now()
	ans := w.do(ctx, http.MethodPut, w.keyURL(node, key, "w", w.cfg.W), []byte(value), sendCtx)
	op.End = time.Now()
	op.Outcome, op.Err = w.classify(ans, false)
	if op.Outcome == OK {
		vals := []string{value} // a 204 shows the write alone
		if ans.status == http.StatusMultipleChoices {
			var err error
			if vals, err = answerValues(ans); err != nil {
				vals = nil
				w.noteBug(fmt.Errorf("chaos: PUT %s via %s: %w", key, node, err))
			}
		}
		if vals != nil {
			w.adopt(cl, key, ans, vals, node)
		}
	}
	w.record(op)
	return op.Outcome
}

// adopt makes an answer's context and values the client's state of key.
// An answer without a usable context leaves the state as it was: the old
// context still matches the old values.
func (w *Workload) adopt(cl *client, key string, ans answer, vals []string, node string) {
	c := strings.TrimSpace(ans.header.Get(contextHeader))
	if c == "" {
		return
	}
	if _, err := vclock.DecodeContextString(c); err != nil {
		w.noteBug(fmt.Errorf("chaos: answer about %s via %s: %w", key, node, err))
		return
	}
	cl.state[key] = &keyState{ctx: c, known: vals}
}

func (w *Workload) record(op Op) {
	w.ops.Add(1)
	switch op.Kind {
	case Read:
		w.reads.Add(1)
	case Write:
		w.writes.Add(1)
	}
	switch op.Outcome {
	case OK:
		w.ok.Add(1)
	case Failed:
		w.failed.Add(1)
	default:
		w.unknown.Add(1)
	}
	w.h.Add(op)
}

// answer is what came back for one request.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (w *Workload) do(ctx context.Context, method, u string, body []byte, causal string) answer {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	return doRequest(ctx, w.client, method, u, body, causal)
}

func doRequest(ctx context.Context, hc *http.Client, method, u string, body []byte, causal string) answer {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return answer{err: err}
	}
	if causal != "" {
		req.Header.Set(contextHeader, causal)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err == nil && len(data) > maxAnswerBytes {
		err = fmt.Errorf("answer body is more than %d bytes", maxAnswerBytes)
	}
	if err != nil {
		// The status may say OK, but an answer cut short is one the
		// client did not get.
		return answer{status: resp.StatusCode, err: fmt.Errorf("reading answer: %w", err)}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

// errorBody is the part of the server's error answer the workload reads.
type errorBody struct {
	Error       string `json:"error"`
	Unavailable bool   `json:"unavailable"`
}

// classify applies the outcome rules of Outcome: 2xx and 300 are OK (and
// 404 for a read); other 4xx, and a 503 saying nothing was sent, are
// Failed; everything else, errors and timeouts included, is Unknown.
func (w *Workload) classify(ans answer, read bool) (Outcome, string) {
	if ans.err != nil {
		return Unknown, ans.err.Error()
	}
	s := ans.status
	switch {
	case s >= 200 && s < 300, s == http.StatusMultipleChoices, read && s == http.StatusNotFound:
		return OK, ""
	}
	var eb errorBody
	msg := strings.TrimSpace(string(ans.body))
	if json.Unmarshal(ans.body, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	why := fmt.Sprintf("%d %s", s, msg)
	switch {
	case s == http.StatusBadRequest:
		w.bad.Add(1)
		w.noteBug(fmt.Errorf("chaos: request refused as bad (a workload bug): %s", why))
		return Failed, why
	case s >= 400 && s < 500:
		return Failed, why
	case s == http.StatusServiceUnavailable && eb.Unavailable:
		return Failed, why
	}
	return Unknown, why
}

// siblingsJSON is the part of a 300 answer the workload reads.
type siblingsJSON struct {
	Siblings []struct {
		Value []byte `json:"value"`
	} `json:"siblings"`
}

// answerValues returns the live values of an OK answer: none for 404,
// the body for 200, the sibling list for 300.
func answerValues(ans answer) ([]string, error) {
	switch ans.status {
	case http.StatusNotFound, http.StatusNoContent:
		return nil, nil
	case http.StatusMultipleChoices:
		var sb siblingsJSON
		if err := json.Unmarshal(ans.body, &sb); err != nil {
			return nil, fmt.Errorf("sibling list: %w", err)
		}
		if len(sb.Siblings) == 0 {
			return nil, errors.New("sibling list is empty")
		}
		vals := make([]string, len(sb.Siblings))
		for i, s := range sb.Siblings {
			vals[i] = string(s.Value)
		}
		return vals, nil
	}
	return []string{string(ans.body)}, nil
}
