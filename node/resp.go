package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/redcon"

	"github.com/ringkv/ringkv/vclock"
)

// The Redis-protocol front end (docs/resp.md). It speaks just enough RESP2
// for drop-in clients, redis-cli and redis-benchmark: GET, SET, DEL, EXISTS,
// MGET, PING, ECHO, INFO, QUIT, SELECT 0, CONFIG GET, COMMAND, AUTH and
// HELLO 2. RESP has
// no room for siblings or contexts, so SET is a blind write and GET resolves
// siblings by last writer wins (vclock.Siblings.Latest, tombstones included).

// respInfo is what INFO reports; it is gathered per call.
type respInfo struct {
	Node        string
	RingMembers int
	LiveMembers int
	Keys        int64
	Bytes       int64
}

// respServer serves RESP connections on top of a kvBackend.
type respServer struct {
	kv      kvBackend
	info    func() respInfo
	metrics *metrics
	limits  LimitsConfig
	log     *slog.Logger
	cmds    map[string]*respCommand // read-only after construction
	unknown *respCommand            // counts the commands cmds lacks
	ready   func() bool             // nil: always; see respCommand.data
	// gate admits connections and commands (resp_auth.go); nil admits all.
	gate       *gate
	sessionIDs atomic.Int64 // numbers connections for HELLO
	// overLimitLog logs refused connections, at most once a minute;
	// logoutLog the sessions a reload of the tokens logged out, at most
	// once a minute per token (a revocation may end thousands at once).
	overLimitLog, logoutLog *RateLog

	// mu guards ln, conns, refusals, connsClosed, active, draining and
	// idle: the in-flight command count that a graceful shutdown waits for
	// before closing connections.
	mu          sync.Mutex
	ln          net.Listener
	conns       map[*respConn]struct{} // connections being served
	refusals    map[net.Conn]struct{}  // connections being refused (refuse)
	connsClosed bool                   // serve closed conns; close new ones at once
	active      int
	draining    bool
	idle        chan struct{} // closed once draining and active == 0
}

// newRESPServer builds the server and registers its connection gauge with
// m; serve starts it on a listener.
func newRESPServer(kv kvBackend, info func() respInfo, m *metrics, limits LimitsConfig, log *slog.Logger) *respServer {
	s := &respServer{
		kv: kv, info: info, metrics: m, limits: limits, log: log, cmds: respCommands(),
		unknown: &respCommand{name: "unknown"},
		idle:    make(chan struct{}), conns: map[*respConn]struct{}{}, refusals: map[net.Conn]struct{}{},
		overLimitLog: NewRateLog(log, slog.LevelWarn, "resp connection refused: limits.resp_max_clients reached", time.Minute, nil),
		logoutLog:    NewRateLog(log, slog.LevelInfo, "resp session logged out: its token was removed or replaced", time.Minute, nil),
	}
	m.registerRESPConnections(s.connCount)
	return s
}

// shutdown stops taking commands, waits for in-flight ones (until ctx is
// done) and then closes the listener and every connection.
func (s *respServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.draining { // shutdown may be called again; idle closes once
		s.draining = true
		if s.active == 0 {
			close(s.idle)
		}
	}
	s.mu.Unlock()
	var err error
	select {
	case <-s.idle:
	case <-ctx.Done():
		err = fmt.Errorf("node: resp commands still running at shutdown: %w", ctx.Err())
	}
	// Closing the listener makes serve return and drop the connections.
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		if cerr := ln.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	return err
}

// begin registers an in-flight command; false once draining.
func (s *respServer) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.active++
	return true
}

func (s *respServer) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.draining && s.active == 0 {
		close(s.idle)
	}
}

// respCommand is one entry of the command table: its handler and arity
// (a positive arity is exact, command name included, a negative one a
// minimum, as in Redis's COMMAND table). data marks the commands refused
// until the node joined; the others (PING, INFO, ...) describe the
// connection or the node.
type respCommand struct {
	arity int
	run   func(s *respServer, c redcon.Conn, args [][]byte) error
	data  bool
	name  string // the lower-case name, the op label of its metrics
	// series caches the command's metric series by outcome (respFailed,
	// respOK): looking them up by label values costs more than the rest
	// of a GET's front end. Filled on first use, so that only commands
	// that ran are exported, as before.
	series [2]atomic.Pointer[respSeries]
}

// respSeries are one command's request counter and latency histogram for
// one outcome.
type respSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// Indexes of respCommand.series.
const (
	respFailed = 0
	respOK     = 1
)

// respCommands returns a new command table, keyed by lower-case name.
func respCommands() map[string]*respCommand {
	t := map[string]*respCommand{
		"ping":    {arity: -1, run: (*respServer).ping},
		"echo":    {arity: 2, run: func(_ *respServer, c redcon.Conn, a [][]byte) error { c.WriteBulk(a[1]); return nil }},
		"quit":    {arity: 1, run: func(_ *respServer, c redcon.Conn, _ [][]byte) error { c.WriteString("OK"); return c.Close() }},
		"select":  {arity: 2, run: (*respServer).selectDB},
		"get":     {arity: 2, run: (*respServer).get, data: true},
		"set":     {arity: -3, run: (*respServer).set, data: true},
		"del":     {arity: -2, run: (*respServer).del, data: true},
		"exists":  {arity: -2, run: (*respServer).exists, data: true},
		"mget":    {arity: -2, run: (*respServer).mget, data: true},
		"info":    {arity: -1, run: (*respServer).infoCmd},
		"config":  {arity: -2, run: (*respServer).config},
		"command": {arity: -1, run: (*respServer).command},
		"client":  {arity: -2, run: (*respServer).client},
		"auth":    {arity: -2, run: (*respServer).auth},
		"hello":   {arity: -1, run: (*respServer).hello},
	}
	for name, rc := range t {
		rc.name = name
	}
	return t
}

// findCommand finds the command named by arg, in any case. A name of up
// to 16 bytes (every command's) is lowered on the stack; the map index
// with a converted []byte does not copy it either.
func (s *respServer) findCommand(arg []byte) (*respCommand, bool) {
	var buf [16]byte
	if len(arg) > len(buf) {
		rc, ok := s.cmds[strings.ToLower(string(arg))]
		return rc, ok
	}
	lower := buf[:len(arg)]
	for i, c := range arg {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	rc, ok := s.cmds[string(lower)]
	return rc, ok
}

// observe counts one run of rc with its outcome and latency.
func (s *respServer) observe(rc *respCommand, outcome int, d time.Duration) {
	sr := rc.series[outcome].Load()
	if sr == nil {
		// Two connections may get here at once: both find the same
		// series, so either pointer is right.
		status := [...]string{respFailed: "error", respOK: "ok"}[outcome]
		sr = &respSeries{
			requests: s.metrics.requests.WithLabelValues("resp", rc.name, status),
			latency:  s.metrics.latency.WithLabelValues("resp", rc.name, status),
		}
		rc.series[outcome].Store(sr)
	}
	sr.requests.Inc()
	sr.latency.Observe(d.Seconds())
}

// errRESP is an error whose text is sent to the client as is.
type errRESP string

func (e errRESP) Error() string { return string(e) }

// handle runs one command; it runs on the connection's goroutine, so a
// slow command delays only its own client.
func (s *respServer) handle(c redcon.Conn, cmd redcon.Command) {
	start := time.Now()
	peerOK := s.gate == nil || s.admitPeer(c)
	rc, known := s.findCommand(cmd.Args[0])
	if !known {
		rc = s.unknown
	}
	outcome := respFailed // until the command succeeded, also if it panics
	defer func() { s.observe(rc, outcome, time.Since(start)) }()
	if !peerOK {
		return
	}
	if !known {
		c.WriteError(fmt.Sprintf("ERR unknown command '%s'", truncate(cmd.Args[0], 64)))
		return
	}
	if (rc.arity > 0 && len(cmd.Args) != rc.arity) || (rc.arity < 0 && len(cmd.Args) < -rc.arity) {
		c.WriteError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", rc.name))
		return
	}
	if s.gate != nil && !s.admit(c, rc.name) {
		return
	}
	if s.ready != nil && rc.data && !s.ready() {
		c.WriteError(respNotJoined)
		return
	}
	if !s.begin() {
		c.WriteError("ERR server is shutting down")
		return
	}
	defer s.end()
	if err := rc.run(s, c, cmd.Args); err != nil {
		c.WriteError(s.errorText(rc.name, err))
		return
	}
	outcome = respOK
}

// errorText renders an error as a RESP error line (no newlines allowed).
func (s *respServer) errorText(op string, err error) string {
	var qf *quorumFailure
	var re errRESP
	switch {
	case errors.As(err, &re):
		return string(re)
	case errors.As(err, &qf):
		s.metrics.quorumFailed(op)
	case errors.Is(err, errBadQuorum):
	default:
		s.log.Error("resp command failed", "op", op, "err", err)
	}
	return "ERR " + strings.NewReplacer("\r", " ", "\n", " ").Replace(err.Error())
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.NewReplacer("\r", " ", "\n", " ", "'", "").Replace(string(b))
}

// key copies a key argument out of the connection's read buffer, which is reused
// after the handler returns, and checks it.
func (s *respServer) key(b []byte) ([]byte, error) {
	if err := checkKey(b, s.limits); err != nil {
		return nil, errRESP("ERR " + err.Error())
	}
	return bytes.Clone(b), nil
}

func (s *respServer) ping(c redcon.Conn, a [][]byte) error {
	switch len(a) {
	case 1:
		c.WriteString("PONG")
	case 2:
		c.WriteBulk(a[1])
	default:
		return errRESP("ERR wrong number of arguments for 'ping' command")
	}
	return nil
}

func (s *respServer) selectDB(c redcon.Conn, a [][]byte) error {
	if string(a[1]) != "0" {
		return errRESP("ERR DB index is out of range (ringkv has only database 0)")
	}
	c.WriteString("OK")
	return nil
}

// read checks raw, copies it and reads the key at the default R.
func (s *respServer) read(raw []byte) ([]byte, kvResult, error) {
	key, err := s.key(raw)
	if err != nil {
		return nil, kvResult{}, err
	}
	res, err := s.kv.Get(context.Background(), key, "")
	if err != nil {
		return nil, kvResult{}, err
	}
	return key, res, nil
}

// newest resolves a read's siblings by last writer wins. A delete is a
// write like any other: when the newest sibling is a tombstone the key is
// absent, even if older live siblings remain.
func newest(res kvResult) (value []byte, found bool) {
	v, ok := res.Siblings.Latest()
	if !ok || v.Tombstone {
		return nil, false
	}
	return v.Value, true
}

// lookup reads key and resolves its siblings as newest does.
func (s *respServer) lookup(raw []byte) (value []byte, found bool, err error) {
	_, res, err := s.read(raw)
	if err != nil {
		return nil, false, err
	}
	value, found = newest(res)
	return value, found, nil
}

func (s *respServer) get(c redcon.Conn, a [][]byte) error {
	v, ok, err := s.lookup(a[1])
	if err != nil {
		return err
	}
	if !ok {
		c.WriteNull()
		return nil
	}
	c.WriteBulk(v)
	return nil
}

func (s *respServer) set(c redcon.Conn, a [][]byte) error {
	if len(a) > 3 {
		return errRESP(fmt.Sprintf("ERR syntax error: SET options (%s ...) are not supported by ringkv", truncate(a[3], 16)))
	}
	key, err := s.key(a[1])
	if err != nil {
		return err
	}
	if len(a[2]) > s.limits.MaxValueBytes {
		return errRESP(fmt.Sprintf("ERR value is %d bytes, more than limits.max_value_bytes (%d)", len(a[2]), s.limits.MaxValueBytes))
	}
	if _, err := s.kv.Put(context.Background(), key, bytes.Clone(a[2]), "", nil, false); err != nil {
		return err
	}
	c.WriteString("OK")
	return nil
}

// del deletes the keys that hold a live value and counts those GET would
// have shown, as Redis does; keys that are absent get no tombstone. Each
// key is read at the default R and its tombstone carries that read's
// context, so it removes every value the read returned, not only what the
// coordinator holds.
func (s *respServer) del(c redcon.Conn, a [][]byte) error {
	n := 0
	for _, raw := range a[1:] {
		key, res, err := s.read(raw)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(res.Siblings, func(v vclock.Version) bool { return !v.Tombstone }) {
			continue
		}
		if _, err := s.kv.Delete(context.Background(), key, "", res.Context(), true); err != nil {
			return err
		}
		if _, ok := newest(res); ok {
			n++
		}
	}
	c.WriteInt(n)
	return nil
}

func (s *respServer) exists(c redcon.Conn, a [][]byte) error {
	n := 0
	for _, raw := range a[1:] {
		_, ok, err := s.lookup(raw)
		if err != nil {
			return err
		}
		if ok {
			n++
		}
	}
	c.WriteInt(n)
	return nil
}

// mget answers every key or fails as a whole: a partial array would hide
// which keys missed their quorum.
func (s *respServer) mget(c redcon.Conn, a [][]byte) error {
	vals := make([][]byte, len(a)-1)
	found := make([]bool, len(a)-1)
	for i, raw := range a[1:] {
		v, ok, err := s.lookup(raw)
		if err != nil {
			return err
		}
		vals[i], found[i] = v, ok
	}
	c.WriteArray(len(vals))
	for i, v := range vals {
		if found[i] {
			c.WriteBulk(v)
		} else {
			c.WriteNull()
		}
	}
	return nil
}

func (s *respServer) infoCmd(c redcon.Conn, _ [][]byte) error {
	in := s.info()
	var b strings.Builder
	fmt.Fprintf(&b, "# Server\r\nredis_version:7.0.0\r\nringkv_version:%s\r\nredis_mode:standalone\r\nnode:%s\r\n", Version, in.Node)
	fmt.Fprintf(&b, "\r\n# Clients\r\nconnected_clients:%d\r\nmaxclients:%d\r\n", s.connCount(), s.limits.RESPMaxClients)
	fmt.Fprintf(&b, "\r\n# Cluster\r\ncluster_enabled:0\r\nring_members:%d\r\nlive_members:%d\r\n", in.RingMembers, in.LiveMembers)
	fmt.Fprintf(&b, "\r\n# Keyspace\r\ndb0:keys=%d,expires=0,avg_ttl=0\r\nlocal_bytes:%d\r\n", in.Keys, in.Bytes)
	c.WriteBulkString(b.String())
	return nil
}

// respConfig are the CONFIG GET answers: plausible values for the settings
// redis-benchmark and redis-cli ask about (ringkv has no Redis settings),
// and the two RESP limits Redis also has, as Redis spells them (timeout
// in whole seconds).
func (s *respServer) respConfig() [][2]string {
	return [][2]string{
		{"appendonly", "no"},
		{"databases", "1"},
		{"maxclients", strconv.Itoa(s.limits.RESPMaxClients)},
		{"maxmemory", "0"},
		{"save", ""},
		{"timeout", strconv.FormatInt(int64(s.limits.RESPIdleTimeout/time.Second), 10)},
	}
}

func (s *respServer) config(c redcon.Conn, a [][]byte) error {
	if strings.ToLower(string(a[1])) != "get" {
		return errRESP(fmt.Sprintf("ERR CONFIG %s is not supported by ringkv (only CONFIG GET)", truncate(a[1], 32)))
	}
	if len(a) < 3 {
		return errRESP("ERR wrong number of arguments for 'config|get' command")
	}
	var out []string
	for _, kv := range s.respConfig() {
		for _, pat := range a[2:] {
			if ok, _ := path.Match(strings.ToLower(string(pat)), kv[0]); ok {
				out = append(out, kv[0], kv[1])
				break
			}
		}
	}
	c.WriteArray(len(out))
	for _, v := range out {
		c.WriteBulkString(v)
	}
	return nil
}

// command answers COMMAND minimally: redis-cli only needs a well-formed
// reply to start, and an empty table makes it skip its hints.
func (s *respServer) command(c redcon.Conn, a [][]byte) error {
	if len(a) > 1 && strings.EqualFold(string(a[1]), "count") {
		c.WriteInt(len(s.cmds))
		return nil
	}
	c.WriteArray(0)
	return nil
}

// client accepts the CLIENT subcommands client libraries send on connect.
func (s *respServer) client(c redcon.Conn, a [][]byte) error {
	switch strings.ToLower(string(a[1])) {
	case "setname", "setinfo":
		c.WriteString("OK")
	case "getname":
		c.WriteNull()
	default:
		return errRESP(fmt.Sprintf("ERR CLIENT %s is not supported by ringkv", truncate(a[1], 32)))
	}
	return nil
}

// respCommandCap is the most a client may send towards one command, on
// the wire: a maximal key and value plus the same margin HTTP allows a
// body. The reader refuses a command that would pass it before reading on.
func respCommandCap(l LimitsConfig) int {
	return l.MaxKeyBytes + l.MaxValueBytes + bodyMargin
}
