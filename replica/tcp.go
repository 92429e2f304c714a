package replica

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// TCPConfig configures a TCPTransport.
type TCPConfig struct {
	// Self is this node's name, sent in each connection's hello so the
	// peer's handler knows who calls. Required.
	Self string
	// Resolve maps a node name to its RPC host:port (from gossip metadata).
	// Required.
	Resolve func(node string) (addr string, ok bool)
	// ConnsPerPeer is the number of connections kept to each peer; calls
	// are spread over them round robin and multiplexed on each. Default 2.
	ConnsPerPeer int
	// MaxFrameBytes bounds a frame in either direction. A call whose
	// request is larger fails with ErrFrameTooLarge without being sent; a
	// larger incoming frame closes the connection. Default 64 MiB.
	MaxFrameBytes int
	// SourceIP, when set, is the local address every outgoing connection
	// leaves from (the kernel picks the port). A node listening on one
	// specific IP dials from it too, so that firewall rules written per
	// node address (chaos tests on 127.0.0.x, multi-homed hosts) match its
	// traffic in both directions; without it a loopback connection leaves
	// from 127.0.0.1 whatever the listen address. It must be a specific
	// IP, not 0.0.0.0 or ::, and of the peers' family. Default nil: the
	// kernel picks by route.
	SourceIP net.IP
	// DialTimeout bounds connecting to a peer. Default 1s.
	DialTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed dial before
	// the next attempt; it doubles with each failure. Calls made while
	// waiting fail at once with ErrUnreachable. Defaults 50ms and 5s.
	BackoffMin, BackoffMax time.Duration
	// MaxInFlight bounds the calls one server connection runs at once;
	// beyond it the connection stops reading (backpressure). Default 1024.
	MaxInFlight int
	// MaxBufferedBytes bounds the bytes of request frames that all served
	// connections together hold, from the moment a frame's length is read
	// until its call is answered. A connection whose next frame does not
	// fit stops reading until earlier calls finish (backpressure), so
	// peers announcing large frames cannot make the node hold more.
	// Default 4 × MaxFrameBytes (256 MiB); at least MaxFrameBytes.
	MaxBufferedBytes int64
	// MaxConnBufferedBytes is the same bound for one served connection, so
	// that one peer cannot take the whole MaxBufferedBytes. Default
	// MaxFrameBytes; at least MaxFrameBytes.
	MaxConnBufferedBytes int64
	// IdleTimeout closes a served connection on which no frame started for
	// this long. Clients retire a pooled connection idle for half of it
	// before using it again, so a healthy call never meets a closing
	// connection. Default 2m.
	IdleTimeout time.Duration
	// FrameTimeout bounds how long a served frame may take to arrive once
	// its length was read (64 MiB at about 1 MiB/s). A peer that stalls
	// midway is disconnected and its share of the budget freed.
	// Default 1m.
	FrameTimeout time.Duration
	// Logger receives connection lifecycle lines; nil discards.
	Logger *slog.Logger
	// TLS, when set, runs every connection over TLS (tcp_tls.go).
	// Default nil: plaintext.
	TLS *TCPTLS
}

// DefaultTCPConfig returns a TCPConfig with defaults; the caller fills Self
// and Resolve.
func DefaultTCPConfig() TCPConfig {
	return TCPConfig{
		ConnsPerPeer:  2,
		MaxFrameBytes: 64 << 20,
		DialTimeout:   time.Second,
		BackoffMin:    50 * time.Millisecond,
		BackoffMax:    5 * time.Second,
		MaxInFlight:   1024,
		IdleTimeout:   2 * time.Minute,
		FrameTimeout:  time.Minute,
	}
}

// Validate checks the config after defaults were applied.
func (c TCPConfig) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("replica: tcp config: "+f, a...)) }
	if c.Self == "" {
		bad("Self is required")
	}
	if c.Resolve == nil {
		bad("Resolve is required")
	}
	if c.ConnsPerPeer < 1 || c.ConnsPerPeer > 64 {
		bad("ConnsPerPeer must be in 1..64, got %d", c.ConnsPerPeer)
	}
	if c.MaxFrameBytes < 1024 {
		bad("MaxFrameBytes must be at least 1024, got %d", c.MaxFrameBytes)
	}
	if c.DialTimeout <= 0 || c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		bad("DialTimeout and BackoffMin must be positive and BackoffMax >= BackoffMin")
	}
	if c.MaxInFlight < 1 {
		bad("MaxInFlight must be >= 1, got %d", c.MaxInFlight)
	}
	if c.MaxBufferedBytes < int64(c.MaxFrameBytes) || c.MaxConnBufferedBytes < int64(c.MaxFrameBytes) {
		bad("MaxBufferedBytes (%d) and MaxConnBufferedBytes (%d) must be at least MaxFrameBytes (%d)", c.MaxBufferedBytes, c.MaxConnBufferedBytes, c.MaxFrameBytes)
	}
	if c.IdleTimeout <= 0 || c.FrameTimeout <= 0 {
		bad("IdleTimeout and FrameTimeout must be positive")
	}
	if len(c.Self) > maxNameBytes {
		bad("Self must be at most %d bytes", maxNameBytes)
	}
	if len(c.SourceIP) > 0 && (c.SourceIP.To16() == nil || c.SourceIP.IsUnspecified()) {
		bad("SourceIP must be a specific IP address, got %v", c.SourceIP)
	}
	return errors.Join(append(errs, c.TLS.validate())...)
}

// TCPTransport is the internal RPC over TCP: the client side (Call) and
// the server side (Serve) share one instance per node. It is safe for
// concurrent use.
type TCPTransport struct {
	cfg TCPConfig
	log *slog.Logger
	// srv is the context of every served call; Close cancels it.
	srv    context.Context
	cancel context.CancelFunc
	// budget holds the bytes of every served frame not yet answered.
	budget *byteBudget
	// wrongPeer counts connections refused because the other end's hello
	// named a node other than the one expected (either side).
	wrongPeer atomic.Uint64
	// panics counts panics recovered in the transport's goroutines.
	panics atomic.Uint64
	mu     sync.Mutex // guards closed, peers, lns, served
	closed bool
	peers  map[string]*peer
	lns    map[net.Listener]struct{}
	served map[net.Conn]struct{}
	wg     sync.WaitGroup // read loops and served connections
}

var _ Transport = (*TCPTransport)(nil)

// NewTCPTransport returns a transport. Zero numeric fields get defaults.
// Connections are dialed lazily on the first call to each peer.
func NewTCPTransport(cfg TCPConfig) (*TCPTransport, error) {
	d := DefaultTCPConfig()
	if cfg.ConnsPerPeer == 0 {
		cfg.ConnsPerPeer = d.ConnsPerPeer
	}
	if cfg.MaxFrameBytes == 0 {
		cfg.MaxFrameBytes = d.MaxFrameBytes
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = d.DialTimeout
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = d.BackoffMin
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = max(d.BackoffMax, cfg.BackoffMin)
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = d.MaxInFlight
	}
	if cfg.MaxBufferedBytes == 0 {
		cfg.MaxBufferedBytes = 4 * int64(cfg.MaxFrameBytes)
	}
	if cfg.MaxConnBufferedBytes == 0 {
		cfg.MaxConnBufferedBytes = int64(cfg.MaxFrameBytes)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = d.IdleTimeout
	}
	if cfg.FrameTimeout == 0 {
		cfg.FrameTimeout = d.FrameTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.SourceIP = slices.Clone(cfg.SourceIP) // the caller keeps its slice
	srv, cancel := context.WithCancel(context.Background())
	return &TCPTransport{
		cfg: cfg, log: cfg.Logger.With("component", "rpc", "node", cfg.Self),
		srv: srv, cancel: cancel, budget: newByteBudget(cfg.MaxBufferedBytes),
		peers: map[string]*peer{}, lns: map[net.Listener]struct{}{}, served: map[net.Conn]struct{}{},
	}, nil
}

// Call sends req to node to and waits for its answer (see Transport).
func (t *TCPTransport) Call(ctx context.Context, to string, req Request) (Response, error) {
	ch := make(chan callResult, 1)
	c, id, err := t.start(ctx, to, req, waiter{ch: ch})
	if err != nil {
		return Response{}, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return Response{}, r.err
		}
		return UnmarshalReply(to, r.body)
	case <-ctx.Done():
		c.unregister(id)
		return Response{}, fmt.Errorf("replica: %v to %s: %w", req.Kind, to, ctx.Err())
	}
}

var _ AsyncCaller = (*TCPTransport)(nil)

// Go is Call without waiting (see AsyncCaller): the connection's response
// reader decodes the answer and calls done; when ctx ends first, done is
// called with the ctx error from ctx's AfterFunc goroutine, and a late
// answer is dropped.
func (t *TCPTransport) Go(ctx context.Context, to string, req Request, done func(Response, error)) {
	w := waiter{done: done, to: to}
	c, id, err := t.start(ctx, to, req, w)
	if err != nil {
		done(Response{}, err)
		return
	}
	if ctx.Done() == nil {
		return // no deadline, no cancel: the answer or the connection's failure ends the call
	}
	stop := context.AfterFunc(ctx, func() {
		if w, ok := c.take(id); ok {
			w.finish(nil, fmt.Errorf("replica: %v to %s: %w", req.Kind, to, ctx.Err()))
		}
	})
	if !c.setStop(id, stop) {
		stop() // answered already: the AfterFunc is not needed
	}
}

// start encodes req, registers w for its answer on a connection to node to
// and sends the frame. On error nothing waits and w is not called.
func (t *TCPTransport) start(ctx context.Context, to string, req Request, w waiter) (*clientConn, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("replica: %v to %s: %w", req.Kind, to, err)
	}
	body, err := MarshalRequest(req)
	if err != nil {
		return nil, 0, err
	}
	f := frame{typ: frameRequest, body: body}
	if n := f.encodedLen(); n > t.cfg.MaxFrameBytes {
		return nil, 0, fmt.Errorf("%w: %v to %s is %d bytes, limit %d", ErrFrameTooLarge, req.Kind, to, n, t.cfg.MaxFrameBytes)
	}
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		f.budget = int64(time.Until(deadline))
		if f.budget <= 0 {
			return nil, 0, fmt.Errorf("replica: %v to %s: %w", req.Kind, to, context.DeadlineExceeded)
		}
	}
	var c *clientConn
	// A pooled connection can die between being picked and the call being
	// registered (the peer restarted); nothing was sent yet, so one retry
	// on a fresh connection is safe even for calls that are not idempotent.
	for attempt := 0; ; attempt++ {
		if c, err = t.conn(ctx, to); err != nil {
			return nil, 0, err
		}
		if f.id, err = c.register(w); err == nil {
			break
		}
		if attempt == 1 {
			return nil, 0, err
		}
	}
	if err := c.send(&f, deadline); err != nil {
		if _, ok := c.take(f.id); !ok {
			// The connection's failure already answered the call: its
			// waiter must not be answered twice, and a Go caller has had
			// done called.
			if w.done != nil {
				return c, f.id, nil
			}
		}
		return nil, 0, err
	}
	return c, f.id, nil
}

// TCPStats is a snapshot of a transport's counters.
type TCPStats struct {
	// WrongPeer counts connections refused because the other end named
	// itself, or its expected peer, as a node other than the one expected:
	// as server, a hello meant for another node; as client, a dialed
	// address answered by another node.
	WrongPeer uint64
	// BufferedBytes is the bytes of served request frames being read or
	// run right now (bounded by MaxBufferedBytes).
	BufferedBytes int64
	// WaitingFrames is the served connections waiting for room in
	// MaxBufferedBytes before reading their next frame.
	WaitingFrames int
	// RecoveredPanics counts panics recovered in the transport's
	// goroutines (a served connection, a served call, a client's response
	// reader, a connection's frame writer). Each is a bug, logged at error level; only the call or the
	// connection it happened on failed.
	RecoveredPanics uint64
}

// Stats returns the transport's counters.
func (t *TCPTransport) Stats() TCPStats {
	used, waiting := t.budget.inUse()
	return TCPStats{WrongPeer: t.wrongPeer.Load(), BufferedBytes: used, WaitingFrames: waiting, RecoveredPanics: t.panics.Load()}
}

// Close closes every connection and listener, cancels served calls and
// waits for the transport's goroutines. Later calls fail with ErrClosed.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	var toClose []interface{ Close() error }
	for ln := range t.lns {
		toClose = append(toClose, ln)
	}
	for nc := range t.served {
		toClose = append(toClose, nc)
	}
	peers := t.peers
	t.mu.Unlock()
	for _, c := range toClose {
		_ = c.Close() // shutting down: a close error changes nothing
	}
	for _, p := range peers {
		p.closeAll()
	}
	t.cancel()
	t.wg.Wait()
	return nil
}

// peer is the connection pool to one node.
type peer struct {
	name    string
	mu      sync.Mutex // guards conns, next, fails, retryAt, lastErr
	conns   []*clientConn
	next    int
	fails   int // consecutive dial failures
	retryAt time.Time
	lastErr error
}

// conn returns a connection to node to, dialing a pool slot that is empty.
func (t *TCPTransport) conn(ctx context.Context, to string) (*clientConn, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	p := t.peers[to]
	if p == nil {
		p = &peer{name: to, conns: make([]*clientConn, t.cfg.ConnsPerPeer)}
		t.peers[to] = p
	}
	t.mu.Unlock()

	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.next % len(p.conns)
	p.next++
	if c := p.conns[i]; c != nil {
		// The server closes a connection idle for IdleTimeout; retire it
		// well before, rather than race a call against that close.
		if !c.retireIfIdle(t.cfg.IdleTimeout / 2) {
			return c, nil
		}
		p.conns[i] = nil
	}
	if now := time.Now(); now.Before(p.retryAt) {
		for _, c := range p.conns {
			if c != nil {
				return c, nil // a healthy sibling connection is better than failing
			}
		}
		return nil, fmt.Errorf("%w: %s: retrying in %v after: %w", ErrUnreachable, to, p.retryAt.Sub(now).Round(time.Millisecond), p.lastErr)
	}
	addr, ok := t.cfg.Resolve(to)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPeer, to)
	}
	nc, br, err := t.dial(ctx, to, addr)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about the peer.
			return nil, fmt.Errorf("replica: dial %s: %w", to, ctx.Err())
		}
		p.fails++
		wait := min(t.cfg.BackoffMin<<min(p.fails-1, 20), t.cfg.BackoffMax)
		p.retryAt, p.lastErr = time.Now().Add(wait), err
		t.log.Debug("dial failed", "peer", to, "addr", addr, "retry_in", wait, "err", err)
		return nil, fmt.Errorf("%w: %s at %s: %w", ErrUnreachable, to, addr, err)
	}
	p.fails, p.lastErr = 0, nil
	c := &clientConn{t: t, p: p, nc: nc, br: br, pending: map[uint64]waiter{}}
	c.fw = newFrameWriter(nc, c.fail)
	c.lastSend.Store(time.Now().UnixNano())
	c.fw.unsent, c.fw.panicked = c.failUnsent, t.writerPanicked(to)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = nc.Close() // lost the race with Close
		return nil, ErrClosed
	}
	t.wg.Add(1)
	t.mu.Unlock()
	p.conns[i] = c
	go c.readLoop()
	return c, nil
}

// dial connects to node to at addr and exchanges hellos: ours names this
// node and to, the server's must name to and this node. A server that is
// another node (the address is stale or points at the wrong host) fails
// the dial with ErrWrongPeer, before any call is sent.
func (t *TCPTransport) dial(ctx context.Context, to, addr string) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	if len(t.cfg.SourceIP) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: t.cfg.SourceIP}
	}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	// The TLS handshake and the hello exchange are bounded by
	// DialTimeout and by ctx.
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()
	fail := func(err error) (net.Conn, *bufio.Reader, error) {
		_ = raw.Close() // the dial failed; err says why
		return nil, nil, err
	}
	_ = raw.SetDeadline(time.Now().Add(t.cfg.DialTimeout))
	nc, err := t.secureDialed(ctx, raw, to)
	if err != nil {
		return fail(err)
	}
	bw := bufio.NewWriter(nc)
	err = writeFrame(bw, &frame{typ: frameHello, body: helloBody(hello{self: t.cfg.Self, peer: to})})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(nc, rpcBufferBytes)
	h, err := readHello(br)
	if err != nil {
		return fail(fmt.Errorf("reading the server's hello: %w", err))
	}
	if h.self != to || h.peer != t.cfg.Self {
		t.wrongPeer.Add(1)
		t.log.Warn("rpc peer is another node", "peer", to, "addr", addr, "answered_by", h.self, "addressed_to", h.peer)
		return fail(fmt.Errorf("%w: dialed %s at %s, answered by %q (which was told it is called by %q)", ErrWrongPeer, to, addr, h.self, h.peer))
	}
	if !stop() {
		return fail(ctx.Err()) // ctx ended as the hello arrived
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, br, nil
}

// readHello reads a hello frame.
func readHello(br *bufio.Reader) (hello, error) {
	f, err := readFrame(br, maxHelloBytes)
	if err == nil && f.typ != frameHello {
		err = fmt.Errorf("%w: first frame has type %d, want hello", ErrProtocol, f.typ)
	}
	if err != nil {
		return hello{}, err
	}
	return parseHello(f.body)
}

// closeAll closes every pooled connection (transport shutdown).
func (p *peer) closeAll() {
	p.mu.Lock()
	conns := append([]*clientConn(nil), p.conns...)
	p.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			c.fail(ErrClosed)
		}
	}
}

// remove empties c's pool slot so the next call there redials.
func (p *peer) remove(c *clientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.conns {
		if p.conns[i] == c {
			p.conns[i] = nil
		}
	}
}

// callResult is a response body or the error that ended the call.
type callResult struct {
	body []byte
	err  error
}

// waiter is who waits for a call's answer: a Call's channel, or a Go's
// callback, the peer's name (for decoding the answer) and the stop of the
// AfterFunc that fails the call when its ctx ends.
type waiter struct {
	ch   chan callResult
	done func(Response, error)
	to   string
	stop func() bool
}

// finish delivers a call's answer: body, or err when the call failed. A
// Go's AfterFunc is stopped first, so that it does not run once ctx ends.
func (w waiter) finish(body []byte, err error) {
	if w.ch != nil {
		w.ch <- callResult{body: body, err: err} // buffered, never blocks
		return
	}
	if w.stop != nil {
		w.stop()
	}
	if err != nil {
		w.done(Response{}, err)
		return
	}
	w.done(UnmarshalReply(w.to, body))
}

// clientConn is one multiplexed connection to a peer.
type clientConn struct {
	t   *TCPTransport
	p   *peer
	nc  net.Conn
	br  *bufio.Reader // read by readLoop only
	ids atomic.Uint64
	// lastSend is when the last frame was sent, Unix nanoseconds.
	lastSend atomic.Int64
	fw       *frameWriter
	mu       sync.Mutex // guards pending and err
	// pending maps request IDs to the waiting caller; a caller that gives
	// up removes its entry and a late response is dropped.
	pending map[uint64]waiter
	err     error // why the connection failed; set once
}

// errIdle retires a pooled connection that sat idle (see retireIfIdle,
// called by TCPTransport.conn). retireIfIdle sets it as c.err itself, so
// fail never logs it: the read loop's error that follows the close finds
// c.err set and returns early.
var errIdle = errors.New("replica: idle connection retired")

// retireIfIdle closes c if nothing was sent on it for longer than d and
// no call waits on it, and reports whether it did. A caller that picked c
// earlier then fails to register on it and retries on a fresh connection.
func (c *clientConn) retireIfIdle(d time.Duration) bool {
	if time.Since(time.Unix(0, c.lastSend.Load())) <= d {
		return false
	}
	c.mu.Lock()
	if c.err != nil || len(c.pending) > 0 {
		c.mu.Unlock()
		return false
	}
	c.err, c.pending = errIdle, nil
	c.mu.Unlock()
	_ = c.nc.Close() // idle: nothing in flight to report to
	return true
}

func (c *clientConn) register(w waiter) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, fmt.Errorf("%w: %w: %s: %w", ErrConnLost, ErrNotSent, c.p.name, c.err)
	}
	id := c.ids.Add(1)
	c.pending[id] = w
	return id, nil
}

// setStop records the stop of a Go call's AfterFunc, and reports false
// when the call was answered already (the caller then stops it).
func (c *clientConn) setStop(id uint64, stop func() bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.pending[id]
	if ok {
		w.stop = stop
		c.pending[id] = w
	}
	return ok
}

func (c *clientConn) unregister(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// send writes one frame, giving up at deadline (zero: none); a write
// error fails the whole connection. The deadline matters when the peer
// stops reading (hung, or its socket buffers full): without it the write,
// and every call queued behind it, would block past the callers' deadlines.
// A frame cut off midway leaves the stream unusable, hence the failure.
//
// Frames ready together leave in one write (frameWriter). A queued frame
// fails its call later: with ErrNotSent when it was never written (its
// deadline passed in the queue, or writing failed before it), with the
// connection (ErrConnLost) when its batch's write failed.
func (c *clientConn) send(f *frame, deadline time.Time) error {
	err := c.fw.write(f, deadline)
	c.lastSend.Store(time.Now().UnixNano())
	if err != nil {
		return c.notSent(err)
	}
	return nil
}

// notSent is the error of a call whose frame was not sent, for why.
func (c *clientConn) notSent(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %w: %s: sending at the call's deadline: %w", ErrConnLost, ErrNotSent, c.p.name, context.DeadlineExceeded)
	}
	return fmt.Errorf("%w: %w: %s: %w", ErrConnLost, ErrNotSent, c.p.name, err)
}

// failUnsent is the frame writer's unsent hook: the calls of frames it
// never wrote fail with ErrNotSent, so that a forward may try another
// replica. Called before fail when writing failed, it answers those calls
// first.
func (c *clientConn) failUnsent(ids []uint64, err error) {
	for _, id := range ids {
		if w, ok := c.take(id); ok {
			w.finish(nil, c.notSent(err)) // never blocks
		}
	}
}

// readLoop delivers responses to their callers until the connection fails.
func (c *clientConn) readLoop() {
	defer c.t.wg.Done()
	// A panic fails this connection's calls (ErrConnLost wrapping
	// ErrInternal) and frees its pool slot, after it is logged and counted.
	defer recoverPanic(c.t.log, &c.t.panics, "rpc response reader", func() {
		c.fail(fmt.Errorf("%w: reading responses failed", ErrInternal))
	}, "listener", "rpc", "peer", c.p.name)
	for {
		f, err := readFrame(c.br, c.t.cfg.MaxFrameBytes)
		if err == nil && f.typ != frameResponse {
			err = fmt.Errorf("%w: server sent frame type %d", ErrProtocol, f.typ)
		}
		if err != nil {
			c.fail(err)
			return
		}
		if w, ok := c.take(f.id); ok {
			w.finish(f.body, nil)
		}
	}
}

// take removes and returns the caller waiting for response id (false if
// it gave up or was answered).
func (c *clientConn) take(id uint64) (waiter, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.pending[id]
	delete(c.pending, id)
	return w, ok
}

// fail closes the connection once, fails every pending call with err and
// frees the pool slot.
func (c *clientConn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	_ = rawConn(c.nc).Close() // already failing; the cause is err
	c.p.remove(c)
	for _, w := range pending {
		w.finish(nil, fmt.Errorf("%w: %s: %w", ErrConnLost, c.p.name, err))
	}
	if !errors.Is(err, ErrClosed) {
		c.t.log.Debug("connection lost", "peer", c.p.name, "err", err)
	}
}
