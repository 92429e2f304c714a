package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/ring"
	"github.com/ringkv/ringkv/storage"
)

// Deps are pieces New would otherwise make itself, so that whole nodes can
// run in one process on fakes. The zero value is what New uses.
type Deps struct {
	// GossipTransport carries gossip (gossiptest.Network hands out
	// in-memory ones); nil binds listen.gossip over UDP and TCP.
	GossipTransport memberlist.NodeAwareTransport
	// FS is the filesystem of everything the node keeps in its data
	// directory: the storage engine, the hint logs, gossip's
	// ring-membership file and the transfers file, so that a whole node
	// runs on vfstest.CrashFS. A DirFS because the hint logs keep a
	// directory per target. nil is the operating system's.
	FS vfs.DirFS
	// Now is the wall clock of storage, gossip and the coordinator; nil is
	// time.Now.
	Now func() time.Time
}

// builder opens a node's parts one step at a time, and closes what it
// opened if a later step fails.
type builder struct {
	n       *Node
	deps    Deps
	logger  *slog.Logger // the caller's: each part adds its own attributes
	closers []func()
}

// loadAuth reads auth.tokens and auth.tokens_file. It is the first step:
// a bad tokens file is the operator's mistake to report at once, before
// anything is opened that a failure would have to close.
func (b *builder) loadAuth() error {
	auth, err := newAuthenticator(b.n.cfg.Auth)
	if err != nil && !errors.Is(err, errNoTokens) {
		return err
	}
	b.n.auth = auth
	return nil
}

// onFailure closes, newest first, everything opened so far.
func (b *builder) onFailure() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// openStorage opens the engine, refusing a data directory that belongs to
// another node.
func (b *builder) openStorage() error {
	n := b.n
	n.warnStorageTuning()
	base, err := ring.New(n.rcfg, nil)
	if err != nil {
		return fmt.Errorf("config cluster: %w", err)
	}
	scfg := n.cfg.storageConfig()
	scfg.Partitioner = base.Partition
	scfg.Logger = b.logger
	scfg.OnFsync = n.metrics.onFsync
	scfg.OnSnapshot = n.metrics.onSnapshot
	scfg.FS = b.deps.FS
	scfg.Now = b.deps.Now
	if n.engine, err = storage.Open(scfg); err != nil {
		return fmt.Errorf("node.data_dir %s: %w", scfg.Dir, err)
	}
	b.closers = append(b.closers, func() { _ = n.engine.Close() })
	if err := n.openHints(b.logger, b.deps.FS); err != nil {
		return err
	}
	b.closers = append(b.closers, func() { _ = n.hints.Close() })
	return nil
}

// smallSegmentBytes is the WAL segment size below which a warning is
// logged: most values then get a segment of their own.
const smallSegmentBytes = 1 << 20

// warnStorageTuning warns of storage settings Validate accepts for
// benchmarks and tests but that hurt a production node, because nothing
// else would show them: no error, no metric.
func (n *Node) warnStorageTuning() {
	sc := n.cfg.Storage
	if sc.SnapshotBytes < 0 {
		n.log.Warn("storage.snapshot_bytes is negative: automatic snapshots are off, so the WAL is never truncated, grows without bound and is replayed whole at every start",
			"snapshot_bytes", sc.SnapshotBytes)
	}
	if sc.SegmentBytes < smallSegmentBytes {
		n.log.Warn("storage.segment_bytes is below 1 MiB: most values then get a WAL segment of their own (a file creation and a directory fsync each)",
			"segment_bytes", sc.SegmentBytes)
	}
}

// bindListeners binds the HTTP, RESP, RPC and (if set) admin listeners.
func (b *builder) bindListeners() error {
	n, cfg := b.n, b.n.cfg
	for _, l := range []struct {
		key, addr string
		ln        *net.Listener
	}{
		{"listen.http", cfg.Listen.HTTP, &n.httpLn},
		{"listen.resp", cfg.Listen.RESP, &n.respLn},
		{"listen.rpc", cfg.Listen.RPC, &n.rpcLn},
		{"listen.admin", cfg.Listen.Admin, &n.adminLn},
	} {
		if l.addr == "" {
			continue // listen.admin unset; Validate refused the others
		}
		ln, err := listen(l.key, l.addr)
		if err != nil {
			return err
		}
		*l.ln = ln
		b.closers = append(b.closers, func() { _ = ln.Close() })
	}
	n.addrs = Addrs{HTTP: n.httpLn.Addr().String(), RESP: n.respLn.Addr().String(), RPC: n.rpcLn.Addr().String()}
	if n.adminLn != nil {
		n.addrs.Admin = n.adminLn.Addr().String()
	}
	return nil
}

// openGossip creates gossip (bound, not started: Run starts it) with the
// addresses this node advertises.
func (b *builder) openGossip() error {
	n, cfg := b.n, b.n.cfg
	gcfg := cfg.gossipConfig()
	// Meta cannot change once gossip runs, so the host it advertises is
	// chosen here and handed to gossip too: both then name the same host.
	host, pinned, err := advertiseHost(cfg.Listen, sockaddr.GetPrivateIP)
	if err != nil {
		return err
	}
	if pinned {
		gcfg.AdvertiseAddr = host
	}
	override := cfg.Listen.Advertise != ""
	gcfg.Meta = gossip.Meta{
		RPC:   advertised(n.addrs.RPC, host, override),
		HTTP:  advertised(n.addrs.HTTP, host, override),
		RESP:  advertised(n.addrs.RESP, host, override),
		Proto: int(replica.ProtocolVersion),
	}
	gcfg.Logger = b.logger
	gcfg.OnRingChange = n.onRowsChanged
	gcfg.OnPlanChange = n.setPlan
	gcfg.Bootstrap = n.bootstraps()
	gcfg.OnLiveness = n.onLiveness
	gcfg.Transport = b.deps.GossipTransport
	gcfg.Now = b.deps.Now
	gcfg.FS = b.deps.FS
	if n.gossip, err = gossip.New(gcfg); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
			return fmt.Errorf("listen.gossip %s: address already in use (%w)", cfg.Listen.Gossip, err)
		}
		return fmt.Errorf("node: gossip: %w", err)
	}
	b.closers = append(b.closers, func() { _ = n.gossip.Shutdown() })
	n.metrics.registerGossip(n.gossip.Stats)
	n.addrs.Gossip = n.gossip.LocalAddr()
	return nil
}

// openReplica creates the RPC transport, the coordinator, the puller and
// anti-entropy, and installs the placement of gossip's plan.
func (b *builder) openReplica() error {
	n := b.n
	tcfg := n.cfg.tcpConfig()
	tcfg.Resolve = func(name string) (string, bool) {
		m, ok := n.gossip.Meta(name)
		return m.RPC, ok && m.RPC != ""
	}
	tcfg.Logger = b.logger
	n.secureListeners(&tcfg)
	var err error
	if n.rpc, err = replica.NewTCPTransport(tcfg); err != nil {
		return fmt.Errorf("node: rpc: %w", err)
	}
	n.metrics.registerRPC(n.rpc)
	b.closers = append(b.closers, func() { _ = n.rpc.Close() })

	ccfg := n.cfg.replicaConfig()
	ccfg.Placement = n.placement
	ccfg.Store = limitedStore{n.engine}
	ccfg.Transport = n.rpc
	ccfg.Liveness = n.gossip
	ccfg.Hints = limitedHints{n.hints}
	ccfg.Tree = engineTree{n.engine}
	ccfg.Logger = b.logger
	ccfg.PartitionStats = n.partitionStat
	ccfg.Progress = func() (uint64, uint64, []int32) { return n.puller.Progress() }
	if b.deps.Now != nil {
		ccfg.Now = b.deps.Now
	}
	if n.coord, err = replica.New(ccfg); err != nil {
		return fmt.Errorf("node: coordinator: %w", err)
	}
	if err := n.newPuller(b.logger, b.deps.FS); err != nil {
		return err
	}
	if err := n.newAntiEntropy(b.logger); err != nil {
		return fmt.Errorf("node: anti-entropy: %w", err)
	}
	// Gossip calls back only once Run starts it, so this first plan is
	// installed before any other can arrive.
	n.setPlan(n.gossip.Plan())
	if n.place.Load() == nil {
		return fmt.Errorf("node: cannot build the placement of plan %+v", n.gossip.Plan())
	}
	return nil
}

// buildFrontEnds builds the HTTP, admin and RESP servers on the coordinator.
func (b *builder) buildFrontEnds() error {
	n, cfg, auth := b.n, b.n.cfg, b.n.auth
	kv := coordinatorKV{c: n.coord}
	n.admin = &clusterAdmin{
		self: cfg.Node.Name, gossip: n.gossip, ring: &n.ring, place: &n.place, engine: n.engine,
		puller: n.puller, coord: n.coord, dropped: &n.droppedParts,
		aae: n.aae, hints: n.hints, collected: &n.collected,
		rpc: n.rpc, log: n.log,
	}
	if n.readyAtStart() {
		n.ready.Store(true)
	}
	n.enablePprof()
	api := &httpAPI{kv: kv, admin: n.admin, keyring: n, metrics: n.metrics, limits: cfg.Limits, n: cfg.Cluster.Replication, log: n.log, ready: n.ready.Load, pprof: cfg.Debug.Pprof,
		gate: n.newGate(auth, "listen.http", cfg.Listen.HTTP)}
	clientRoutes := routesAll
	if n.adminLn != nil {
		clientRoutes = routesClient
		adminAPI := *api
		adminAPI.gate = n.newGate(auth, "listen.admin", cfg.Listen.Admin)
		n.adminSrv = n.newHTTPServer(adminAPI.handlerFor(routesAdmin))
	}
	n.httpSrv = n.newHTTPServer(api.handlerFor(clientRoutes))
	limits := cfg.Limits
	fdLimit, known := openFileLimit()
	if capped, reduced := fitMaxClients(limits.RESPMaxClients, fdLimit, known); reduced {
		n.log.Warn("limits.resp_max_clients lowered to fit the open-file limit (raise it with ulimit -n or LimitNOFILE)",
			"resp_max_clients", limits.RESPMaxClients, "open_file_limit", fdLimit, "reserved", respReservedFiles, "applied", capped)
		limits.RESPMaxClients = capped
	}
	n.resp = newRESPServer(kv, n.respInfo, n.metrics, limits, b.logger.With("component", "resp", "node", cfg.Node.Name))
	n.resp.gate = n.newGate(auth, "listen.resp", cfg.Listen.RESP)
	n.resp.ready = n.ready.Load
	return nil
}

// enablePprof samples mutex and block profiles when debug.pprof is on,
// and warns where the profiles are served.
func (n *Node) enablePprof() {
	if !n.cfg.Debug.Pprof {
		return
	}
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
