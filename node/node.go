package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-sockaddr"
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
	// gossipRef, coordRef and pullerRef are gossip, the coordinator and
	// the puller for setPlan and wakeLoops, which gossip's goroutine may
	// call before New has assigned them.
	gossipRef atomic.Pointer[gossip.Gossip]
	coordRef  atomic.Pointer[replica.Coordinator]
	pullerRef atomic.Pointer[replica.Puller]
	puller    *replica.Puller
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
}

// New validates cfg, opens the storage engine (refusing a data directory
// that belongs to another node), binds every listener and starts gossip's
// listener. Nothing is served until Run. A busy port is an error that names
// the config key, e.g. "listen.http 127.0.0.1:8001: address already in use".
// A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: logger.With("component", "node", "node", cfg.Node.Name),
		claimWake: make(chan struct{}, 1), cleanWake: make(chan struct{}, 1), left: make(chan struct{})}
	n.rcfg = cfg.RingConfig()
	base, err := ring.New(n.rcfg, nil)
	if err != nil {
		return nil, fmt.Errorf("config cluster: %w", err)
	}
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

	// Everything opened below is closed again if a later step fails.
	ok := false
	var closers []func()
	defer func() {
		if !ok {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	scfg := storage.DefaultConfig()
	scfg.Dir = cfg.DataDir()
	scfg.NodeID = cfg.Node.Name
	scfg.Fsync = storage.FsyncPolicy(cfg.Storage.Fsync)
	scfg.FsyncInterval = cfg.Storage.FsyncInterval
	scfg.SegmentBytes = cfg.Storage.SegmentBytes
	scfg.SnapshotBytes = cfg.Storage.SnapshotBytes
	scfg.TombstoneGC = cfg.Storage.TombstoneGC
	// Validate parsed it already.
	scfg.FileMode, _ = cfg.Storage.fileMode()
	// The limits hold where data enters storage, not only at the front
	// doors: peers' stores, repairs and handoffs go through the engine.
	scfg.MaxKeyBytes = cfg.Limits.MaxKeyBytes
	scfg.MaxValueBytes = max(cfg.Limits.MaxValueBytes, 1)
	scfg.Partitions = cfg.Cluster.Partitions
	scfg.Partitioner = base.Partition
	scfg.Logger = logger // it adds its own component and node attributes
	scfg.OnFsync = n.metrics.onFsync
	scfg.OnSnapshot = n.metrics.onSnapshot
	if n.engine, err = storage.Open(scfg); err != nil {
		return nil, fmt.Errorf("node.data_dir %s: %w", scfg.Dir, err)
	}
	closers = append(closers, func() { _ = n.engine.Close() })
	if err := n.openHints(logger); err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = n.hints.Close() })

	for _, l := range []struct {
		key, addr string
		ln        *net.Listener
	}{
		{"listen.http", cfg.Listen.HTTP, &n.httpLn},
		{"listen.resp", cfg.Listen.RESP, &n.respLn},
		{"listen.rpc", cfg.Listen.RPC, &n.rpcLn},
	} {
		ln, err := listen(l.key, l.addr)
		if err != nil {
			return nil, err
		}
		*l.ln = ln
		closers = append(closers, func() { _ = ln.Close() })
	}
	n.addrs = Addrs{HTTP: n.httpLn.Addr().String(), RESP: n.respLn.Addr().String(), RPC: n.rpcLn.Addr().String()}
	if cfg.Listen.Admin != "" {
		if n.adminLn, err = listen("listen.admin", cfg.Listen.Admin); err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = n.adminLn.Close() })
		n.addrs.Admin = n.adminLn.Addr().String()
	}
	auth, err := newAuthenticator(cfg.Auth)
	if err != nil && !errors.Is(err, errNoTokens) {
		return nil, err
	}

	gcfg := gossip.DefaultConfig()
	if cfg.Gossip.Profile == "local" {
		gcfg = gossip.LocalConfig()
	}
	gcfg.Name = cfg.Node.Name
	gcfg.Zone = cfg.Node.Zone
	gcfg.BindAddr = cfg.Listen.Gossip
	// Meta cannot change once gossip runs, so the host it advertises is
	// chosen here and handed to gossip too: both then name the same host.
	host, pinned, err := advertiseHost(cfg.Listen, sockaddr.GetPrivateIP)
	if err != nil {
		return nil, err
	}
	if pinned {
		gcfg.AdvertiseAddr = host
	}
	gcfg.Seeds = cfg.Seeds
	gcfg.Meta = gossip.Meta{
		RPC:   advertised(n.addrs.RPC, host, cfg.Listen.Advertise != ""),
		HTTP:  advertised(n.addrs.HTTP, host, cfg.Listen.Advertise != ""),
		RESP:  advertised(n.addrs.RESP, host, cfg.Listen.Advertise != ""),
		Proto: int(replica.ProtocolVersion),
	}
	gcfg.Dir = scfg.Dir
	gcfg.Keys = gossipKeys
	gcfg.Logger = logger // it adds its own component and node attributes
	gcfg.OnRingChange = n.onRowsChanged
	gcfg.OnPlanChange = n.setPlan
	gcfg.Bootstrap = n.bootstraps()
	gcfg.OnLiveness = n.onLiveness
	if n.gossip, err = gossip.New(gcfg); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
			return nil, fmt.Errorf("listen.gossip %s: address already in use (%w)", cfg.Listen.Gossip, err)
		}
		return nil, fmt.Errorf("node: gossip: %w", err)
	}
	closers = append(closers, func() { _ = n.gossip.Shutdown() })
	n.metrics.registerGossip(n.gossip.Stats)
	n.gossipRef.Store(n.gossip)
	n.addrs.Gossip = n.gossip.LocalAddr()
	n.setPlan(n.gossip.Plan())
	if n.place.Load() == nil {
		return nil, fmt.Errorf("node: cannot build the placement of plan %+v", n.gossip.Plan())
	}

	tcfg := replica.DefaultTCPConfig()
	tcfg.Self = cfg.Node.Name
	tcfg.Resolve = func(name string) (string, bool) {
		m, ok := n.gossip.Meta(name)
		return m.RPC, ok && m.RPC != ""
	}
	tcfg.Logger = logger // it adds its own component and node attributes
	// Peer connections leave from the RPC listen IP, as gossip's leave
	// from its bind IP: rules that match a node by its address then see
	// its traffic both ways.
	tcfg.SourceIP = sourceIP(cfg.Listen.RPC)
	// A store carries a whole sibling set: leave room for a few maximal values.
	tcfg.MaxFrameBytes = max(tcfg.MaxFrameBytes, 8*cfg.Limits.MaxValueBytes+(1<<20))
	n.secureListeners(&tcfg)
	if n.rpc, err = replica.NewTCPTransport(tcfg); err != nil {
		return nil, fmt.Errorf("node: rpc: %w", err)
	}
	n.metrics.registerRPC(n.rpc)
	closers = append(closers, func() { _ = n.rpc.Close() })

	rq, _ := replica.ParseQuorum(cfg.Quorum.R) // Validate checked the spelling
	wq, _ := replica.ParseQuorum(cfg.Quorum.W)
	ccfg := replica.DefaultConfig()
	ccfg.Self = cfg.Node.Name
	ccfg.N = cfg.Cluster.Replication
	ccfg.Placement = n.placement
	ccfg.Store = limitedStore{n.engine}
	ccfg.Transport = n.rpc
	ccfg.Liveness = n.gossip
	ccfg.Hints = limitedHints{n.hints}
	ccfg.Tree = engineTree{n.engine}
	ccfg.MaxKeyBytes = cfg.Limits.MaxKeyBytes
	ccfg.Sloppy = cfg.Quorum.Sloppy
	ccfg.ReadHedge = cfg.Quorum.ReadHedge
	ccfg.DefaultR, ccfg.DefaultW = rq, wq
	ccfg.Timeout = cfg.Quorum.Timeout
	ccfg.MaxSiblings, ccfg.WarnSiblings = cfg.Limits.MaxSiblings, cfg.Limits.MaxSiblings/4
	ccfg.Logger = logger // it adds its own component and node attributes
	ccfg.Partitions = cfg.Cluster.Partitions
	ccfg.PartitionStats = n.partitionStat
	ccfg.TransferBatchBytes = transferBatchBytes(tcfg.MaxFrameBytes)
	ccfg.Progress = func() (uint64, uint64, []int32) { return n.pullerRef.Load().Progress() }
	if n.coord, err = replica.New(ccfg); err != nil {
		return nil, fmt.Errorf("node: coordinator: %w", err)
	}
	if err := n.newPuller(logger); err != nil {
		return nil, err
	}
	if err := n.newAntiEntropy(logger); err != nil {
		return nil, fmt.Errorf("node: anti-entropy: %w", err)
	}
	n.coordRef.Store(n.coord)

	kv := coordinatorKV{c: n.coord}
	admin := &clusterAdmin{
		self: cfg.Node.Name, gossip: n.gossip, ring: &n.ring, place: &n.place, engine: n.engine,
		puller: n.puller, coord: n.coord, dropped: &n.droppedParts,
		aae: n.aae, hints: n.hints, collected: &n.collected,
		rpc: n.rpc, log: n.log,
	}
	n.admin = admin
	if n.bootstraps() {
		n.ready.Store(true)
	}
	if cfg.Debug.Pprof {
		// Mutex and block profiles are empty unless sampled; these rates
		// cost little next to a request's work.
		runtime.SetMutexProfileFraction(20)
		runtime.SetBlockProfileRate(int(20 * time.Microsecond))
		if n.adminLn != nil {
			n.log.Warn("debug.pprof is on: /debug/pprof/ serves profiles on the admin listener", "admin", n.addrs.Admin)
		} else {
			n.log.Warn("debug.pprof is on: /debug/pprof/ serves profiles on the HTTP listener", "http", n.addrs.HTTP)
		}
	}
	api := &httpAPI{kv: kv, admin: admin, keyring: n, metrics: n.metrics, limits: cfg.Limits, n: cfg.Cluster.Replication, log: n.log, ready: n.ready.Load, pprof: cfg.Debug.Pprof,
		gate: n.newGate(auth, "listen.http", cfg.Listen.HTTP)}
	clientRoutes := routesAll
	if n.adminLn != nil {
		clientRoutes = routesClient
		adminAPI := *api
		adminAPI.gate = n.newGate(auth, "listen.admin", cfg.Listen.Admin)
		n.adminSrv = n.newHTTPServer(adminAPI.handlerFor(routesAdmin))
	}
	n.httpSrv = n.newHTTPServer(api.handlerFor(clientRoutes))
	n.resp = newRESPServer(kv, n.respInfo, n.metrics, cfg.Limits, logger.With("component", "resp", "node", cfg.Node.Name))
	n.resp.gate = n.newGate(auth, "listen.resp", cfg.Listen.RESP)
	n.resp.ready = n.ready.Load
	ok = true
	n.log.Info("node listening", "http", n.addrs.HTTP, "admin", n.addrs.Admin, "resp", n.addrs.RESP, "rpc", n.addrs.RPC,
		"gossip", n.addrs.Gossip, "data_dir", scfg.Dir, "incarnation", n.engine.Incarnation(),
		"serving_clients", n.ready.Load())
	if replica.BrokenBuild {
		n.log.Error("this binary was built with the ringkvbroken tag: it acknowledges writes from other nodes without storing them, and exists only to test the chaos checker")
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
	n.gossip.Start(life)
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
