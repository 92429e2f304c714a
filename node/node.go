package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/ring"
	"github.com/ringkv/ringkv/storage"
)

// ErrRunning is returned by Run when the node is already running or ran.
var ErrRunning = errors.New("node: Run called more than once")

// shutdownTimeout bounds a graceful stop as a whole: in-flight requests,
// background replica sends, gossip leave and the final WAL flush.
const shutdownTimeout = 10 * time.Second

// Addrs are the addresses a node actually bound (port 0 resolved).
type Addrs struct {
	HTTP, RESP, RPC, Gossip string
	// Admin is the admin listener's address; empty without listen.admin.
	Admin string
}

// Node is one ringkv process: storage, gossip, ring, coordinator and the
// HTTP, RESP and internal RPC servers. Build it with New, then Run it.
type Node struct {
	cfg   Config
	log   *slog.Logger
	addrs Addrs
	rcfg  ring.Config
	// place is the current placement, built from gossip's plan (plan.go);
	// ring is its serving ring, for inspection.
	place  atomic.Pointer[ring.Transition]
	ring   atomic.Pointer[ring.Ring]
	planMu sync.Mutex // serialises setPlan
	// zoneWarned is the plan zone (zoneWarned.zone, "" included) last
	// logged as differing from node.zone, so that the error is logged once
	// per mismatch rather than on every plan; guarded by planMu.
	zoneWarned struct {
		zone string
		set  bool
	}
	puller *replica.Puller
	// claimWake and cleanWake wake the claimant and cleanup loops.
	claimWake, cleanWake chan struct{}
	// droppedParts and droppedKeys count what cleanup dropped.
	droppedParts, droppedKeys atomic.Int64
	// left is closed once this node has handed everything off and left
	// the ring: Run returns.
	left     chan struct{}
	leftOnce sync.Once
	engine   *storage.Engine
	gossip   *gossip.Gossip
	rpc      *replica.TCPTransport
	coord    *replica.Coordinator
	hints    *hints.Queue
	// admin answers the operator routes, and peers' KindNodeStats.
	admin *clusterAdmin
	// aae is the anti-entropy driver; nil when aae.interval is 0.
	aae       *replica.AntiEntropy
	collected collected
	// hintsRing wakes the loop that re-routes hints of removed nodes,
	// hintsStop ends it and hintsDone is closed when it has stopped.
	hintsRing chan struct{}
	hintsStop context.CancelFunc
	hintsDone chan struct{}
	metrics   *metrics
	httpSrv   *http.Server
	adminSrv  *http.Server // nil without listen.admin
	resp      *respServer
	httpLn    net.Listener
	adminLn   net.Listener // nil without listen.admin
	respLn    net.Listener
	rpcLn     net.Listener
	// tls is the node's certificate and CA; nil without TLS (tls.go).
	tls *nodeTLS
	ran atomic.Bool
	// seedJoined is set once gossip reached a seed; ready once the node
	// serves clients (ready.go). Neither is ever cleared.
	seedJoined atomic.Bool
	ready      atomic.Bool
	// waitLogged is set once the wait for the plan was logged.
	waitLogged atomic.Bool
	// keysMu serialises ReloadGossipKeys; appliedKeys are the
	// fingerprints of the configuration's gossip keys last applied (at
	// start or by a reload), primary first.
	keysMu      sync.Mutex
	appliedKeys []string
	// auth holds the client tokens (nil: authentication off, for the
	// node's life); authMu serialises ReloadTokens.
	auth   *authenticator
	authMu sync.Mutex
}

// New validates cfg, opens the storage engine (refusing a data directory
// that belongs to another node), binds every listener and gossip's
// transport. Nothing is served until Run. A busy port is an error that
// names the config key, e.g. "listen.http 127.0.0.1:8001: address already
// in use". A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Node, error) {
	return NewWith(cfg, logger, Deps{})
}

// NewWith is New with some of the node's pieces given (see Deps).
func NewWith(cfg Config, logger *slog.Logger, deps Deps) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n, err := newNode(cfg, logger)
	if err != nil {
		return nil, err
	}
	b := &builder{n: n, deps: deps, logger: logger}
	for _, step := range []func() error{b.loadAuth, b.openStorage, b.bindListeners, b.openGossip, b.openReplica, b.buildFrontEnds} {
		if err := step(); err != nil {
			b.onFailure()
			return nil, err
		}
	}
	n.log.Info("node listening", "http", n.addrs.HTTP, "admin", n.addrs.Admin, "resp", n.addrs.RESP, "rpc", n.addrs.RPC,
		"gossip", n.addrs.Gossip, "data_dir", cfg.DataDir(), "incarnation", n.engine.Incarnation(),
		"serving_clients", n.ready.Load())
	if replica.BrokenBuild {
		n.log.Error("this binary was built with the ringkvbroken tag: it acknowledges writes from other nodes without storing them, and exists only to test the chaos checker")
	}
	return n, nil
}

// newNode returns the node's shell: its logger, ring parameters, gossip
// keys, metrics and TLS files, with nothing opened yet.
func newNode(cfg Config, logger *slog.Logger) (*Node, error) {
	n := &Node{cfg: cfg, log: logger.With("component", "node", "node", cfg.Node.Name),
		claimWake: make(chan struct{}, 1), cleanWake: make(chan struct{}, 1), left: make(chan struct{})}
	n.rcfg = cfg.RingConfig()
	gossipKeys, err := cfg.Gossip.keys()
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", cfg.Gossip.keysName(), err)
	}
	n.appliedKeys = keyFingerprints(gossipKeys)
	n.metrics = newMetrics(metricSources{
		Keys:        func() int64 { return n.engine.Stats().Keys },
		Bytes:       func() int64 { return n.engine.Stats().Bytes },
		LiveMembers: n.liveMembers,
		RingMembers: func() int { return n.ring.Load().Len() },
		ReadRepairs: func() int64 { return int64(n.coord.Stats().ReadRepairs) },
		ReadHedges:  func() int64 { return int64(n.coord.Stats().ReadHedges) },
	})
	if cfg.TLS.Enabled() {
		if n.tls, err = newNodeTLS(cfg.TLS, cfg.Node.Name, n.log); err != nil {
			return nil, err
		}
		n.tls.register(n.metrics.reg)
	}
	return n, nil
}

// newHTTPServer returns the server of an HTTP listener serving h.
func (n *Node) newHTTPServer(h http.Handler) *http.Server {
	cfg := n.cfg
	return &http.Server{
		Handler:           recoverHTTP(h, n.metrics, n.log),
		ReadHeaderTimeout: 5 * time.Second,
		// A maximal value at a slow but honest 100 KiB/s, plus headers.
		ReadTimeout:    10*time.Second + time.Duration(cfg.Limits.MaxValueBytes/(100<<10))*time.Second,
		WriteTimeout:   2*cfg.Quorum.Timeout + 30*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 256 << 10, // room for a maximal causal context
		ErrorLog:       slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
}

// newGate returns the gate of the listener key bound at addr, and warns
// when protected mode is on there: clients elsewhere will be refused.
func (n *Node) newGate(auth *authenticator, key, addr string) *gate {
	g := newGate(auth, n.cfg.Security.ProtectedMode, addr, n.metrics, n.log)
	if g.protected {
		n.log.Warn("protected mode: no auth.tokens are configured and this listener is not on loopback, so only loopback clients are served; configure auth.tokens or set security.protected_mode: false",
			"listener", key, "addr", addr)
	}
	return g
}

// listen binds addr, naming the config key and the plain cause on failure.
func listen(key, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		cause := err
		var se *os.SyscallError
		if errors.As(err, &se) {
			cause = se.Err
		}
		return nil, fmt.Errorf("%s %s: %w", key, addr, cause)
	}
	return ln, nil
}

// sourceIP returns the IP outgoing connections leave from for a listener
// on addr: its host when that is one specific IP, nil (the kernel picks by
// route) for a wildcard or a host name.
func sourceIP(addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return nil
	}
	return ip
}

// isWildcard reports whether a listen host means every interface: empty,
// 0.0.0.0 or ::. Such an address dialled by a peer reaches the peer itself.
func isWildcard(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// advertiseHost returns the host other nodes reach this node at:
// listen.advertise when set, else the gossip listen host, else (gossip on a
// wildcard) a private interface IP, the one memberlist itself would pick.
// pinned reports that gossip must be told to advertise host explicitly
// (memberlist would otherwise pick on its own, or advertise "::" as is).
// privateIP is sockaddr.GetPrivateIP, injected for tests.
func advertiseHost(l ListenConfig, privateIP func() (string, error)) (host string, pinned bool, err error) {
	if l.Advertise != "" {
		return l.Advertise, true, nil
	}
	ghost, _, err := net.SplitHostPort(l.Gossip)
	if err != nil {
		return "", false, fmt.Errorf("config listen.gossip: must be host:port, got %q", l.Gossip)
	}
	if !isWildcard(ghost) {
		return ghost, false, nil
	}
	ip, err := privateIP()
	if err == nil && ip == "" {
		err = errors.New("no private IP address found")
	}
	if err != nil {
		return "", false, fmt.Errorf("config listen.gossip: %q listens on every interface and this node has no address to advertise (%w): set listen.advertise", l.Gossip, err)
	}
	return ip, true, nil
}

// advertised is the address peers and clients are told for a listener
// bound at bound (port 0 already resolved): its port with host in place of
// a wildcard host, or of any host when override (listen.advertise is set).
func advertised(bound, host string, override bool) string {
	bhost, port, err := net.SplitHostPort(bound)
	if err != nil || (!override && !isWildcard(bhost)) {
		return bound
	}
	return net.JoinHostPort(host, port)
}

func (n *Node) liveMembers() int {
	c := 0
	for _, m := range n.gossip.Members() {
		if m.Liveness == gossip.Alive {
			c++
		}
	}
	return c
}

func (n *Node) respInfo() respInfo {
	st := n.engine.Stats()
	return respInfo{
		Node: n.cfg.Node.Name, RingMembers: n.ring.Load().Len(),
		LiveMembers: n.liveMembers(), Keys: st.Keys, Bytes: st.Bytes,
	}
}

// Addrs returns the addresses the node bound.
func (n *Node) Addrs() Addrs { return n.addrs }

// Run serves HTTP, RESP and the internal RPC and joins the cluster, until
// ctx is done or a server fails. It then shuts down gracefully: stop
// accepting, finish in-flight requests (bounded), let background replica
// sends finish, leave gossip (not the ring), close the RPC and flush and
// close storage. It returns nil after a clean stop on ctx.
func (n *Node) Run(ctx context.Context) error {
	if !n.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	errc := make(chan error, 4)
	go func() {
		if err := n.httpSrv.Serve(n.httpLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("node: http server: %w", err)
		}
	}()
	if n.adminSrv != nil {
		go func() {
			if err := n.adminSrv.Serve(n.adminLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("node: admin http server: %w", err)
			}
		}()
	}
	go func() {
		if err := n.resp.serve(n.respLn); err != nil {
			errc <- fmt.Errorf("node: resp server: %w", err)
		}
	}()
	go func() {
		if err := n.rpc.Serve(n.rpcLn, n.rpcHandler()); err != nil && !errors.Is(err, replica.ErrClosed) && !errors.Is(err, net.ErrClosed) {
			errc <- fmt.Errorf("node: rpc server: %w", err)
		}
	}()
	life, stopGossip := context.WithCancel(context.Background())
	defer stopGossip()
	if err := n.gossip.Start(life); err != nil {
		stopGossip()
		return errors.Join(fmt.Errorf("node: gossip: %w", err), n.shutdown())
	}
	joinCtx, stopJoin := context.WithCancel(life)
	joinDone := make(chan struct{})
	go func() { defer close(joinDone); n.awaitJoin(joinCtx) }()
	defer func() { stopJoin(); <-joinDone }()
	if err := n.startHints(life); err != nil {
		stopGossip()
		return errors.Join(fmt.Errorf("node: hints: %w", err), n.shutdown())
	}
	loops := n.startLoops(life)
	defer loops()
	defer n.watchTLS(life)()
	if n.ready.Load() {
		n.log.Info("node serving", "bootstrap", true)
	} else {
		n.log.Info("node serving internal calls; clients get 503 until it has joined through a seed", "seeds", strings.Join(n.cfg.Seeds, ","))
	}

	var runErr error
	select {
	case <-ctx.Done():
		n.log.Info("node stopping")
	case runErr = <-errc:
		n.log.Error("node stopping after a server failed", "err", runErr)
	case <-n.left:
		n.log.Info("node stopping: it left the ring")
	}
	loops()
	return errors.Join(runErr, n.shutdown())
}

// shutdown stops everything in dependency order, within shutdownTimeout.
func (n *Node) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := n.httpSrv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("node: http shutdown: %w", err))
	}
	if n.adminSrv != nil {
		if err := n.adminSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("node: admin http shutdown: %w", err))
		}
	}
	if err := n.resp.shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	// Sends to replicas that had not acknowledged yet, and read repairs.
	if err := n.coord.Drain(ctx); err != nil {
		n.log.Warn("background replica work still running at shutdown", "err", err)
	}
	// Peers stop routing to us once memberlist sees us leave; the RPC
	// keeps serving until then.
	if err := n.gossip.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("node: gossip shutdown: %w", err))
	}
	if err := n.coord.Close(); err != nil {
		errs = append(errs, fmt.Errorf("node: coordinator close: %w", err))
	}
	if err := n.stopHints(); err != nil {
		errs = append(errs, fmt.Errorf("node: hints close: %w", err))
	}
	if err := n.rpc.Close(); err != nil {
		errs = append(errs, fmt.Errorf("node: rpc close: %w", err))
	}
	if err := n.engine.Close(); err != nil {
		errs = append(errs, fmt.Errorf("node: storage close: %w", err))
	}
	if len(errs) == 0 {
		n.log.Info("node stopped")
	}
	return errors.Join(errs...)
}
