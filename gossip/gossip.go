package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/ringkv/ringkv/ring"
)

// Gossip is one node's membership: a memberlist instance for liveness and
// metadata, plus the ring-membership map it spreads. All methods are safe
// for concurrent use.
type Gossip struct {
	cfg  Config
	log  *slog.Logger
	meta []byte // our encoded Meta, immutable

	// mlist is set once by Start; atomic because the broadcast queue's
	// NumNodes may run before Start has stored it (nil: not started).
	mlist atomic.Pointer[memberlist.Memberlist]
	// mc is memberlist's configuration, built by New and used by Start.
	mc *memberlist.Config
	// inner is the transport New bound, until Start hands it to
	// memberlist (or Shutdown closes it); guarded by lifeMu.
	inner memberlist.NodeAwareTransport
	bcast *memberlist.TransmitLimitedQueue
	// addr is the advertised gossip address (host:port), set in New before
	// memberlist starts, so every delegate call sees it.
	addr string

	mu sync.Mutex // guards ring, reassert and pending, and orders writes of plan
	// ring is the ring-membership map; replaced, never modified in place,
	// so snapshots may be shared.
	ring Map
	// plan is the cluster plan (nil: none known, as the zero Plan). It is
	// replaced, never modified, and only under mu, so a compare and store
	// is atomic; readers (Plan) take no lock.
	plan atomic.Pointer[ring.Plan]
	// reassert is true until the first push-pull with a peer: a row saying
	// this node left or was removed that arrives by then predates this
	// process, and a node that starts joins the ring, so it is overruled.
	reassert bool
	// pending holds rows (at most maxPending) for names memberlist has not
	// seen join; the event goroutine moves a name's row into ring when
	// memberlist reports the name joined.
	pending Map

	// peers is the peer table (name -> peer), written only by the event
	// goroutine, copy-on-write so readers take no lock.
	peers atomic.Pointer[map[string]peer]

	events *eventQueue
	dirty  chan struct{} // capacity 1: ring map changed, persist and notify

	persistMu sync.Mutex // serialises writes of the state file

	// panics counts panics recovered in the delegate (see recoverPanic).
	panics atomic.Uint64
	// refusedStreams counts streams cut at Config.MaxStreamBytes.
	refusedStreams atomic.Uint64
	// busyStreams counts streams closed at Config.MaxConcurrentStreams.
	busyStreams atomic.Uint64
	// mlWarnings counts memberlist's Warn and Error lines, mlSuppressed
	// those of them not written (see mlLogWriter).
	mlWarnings, mlSuppressed atomic.Uint64
	// keyMu serialises changes of memberlist's keyring (SetKeys), which
	// take several keyring calls, and orders Keyring's reads after them
	// (RemoveKey shifts the slice GetKeys hands out in place).
	keyMu sync.Mutex
	// keyring is memberlist's (nil without keys); memberlist offers no
	// accessor, so New keeps the one it hands over.
	keyring *memberlist.Keyring

	// refusedLog, droppedLog, badStateLog and planLog keep a flood of
	// hostile rows or plans from flooding the log as well.
	refusedLog, droppedLog, streamLog, busyLog, badStateLog, planLog logLimiter

	joined   chan struct{} // closed once seeds answered (or there are none)
	joinOnce sync.Once
	stopOnce sync.Once
	stop     chan struct{} // closed by Shutdown
	closed   atomic.Bool
	wg       sync.WaitGroup // event goroutine and Start's loops

	lifeMu  sync.Mutex // orders Start against Shutdown (wg.Add vs wg.Wait)
	started bool       // guarded by lifeMu
	// startErr is the error of a Start that failed, returned by every
	// later Start: the transport is gone by then. Guarded by lifeMu.
	startErr error
}

// New loads the ring map and plan persisted in cfg.Dir, marks this node
// joined (unless it is leaving: a leave survives restarts) and binds the
// gossip transport (so a busy port is New's error). It starts no goroutine
// of its own and calls no callback: Start runs memberlist, the event
// goroutine and the seed joins.
//
// Without a persisted plan it makes one (docs/gossip.md, "The plan"): from
// a data directory from before plans, of the persisted map's ring members
// at version 0; else, with cfg.Bootstrap and if it never saw a peer, the
// first plan of a new cluster, this node alone; else none, until a peer's
// arrives.
func New(cfg Config) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "gossip", "node", cfg.Name)
	meta, err := EncodeMeta(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	now := versionAt(cfg.now())
	loaded, plan, err := loadStartState(log, cfg, now)
	if err != nil {
		return nil, err
	}
	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	g := newGossip(cfg, log, meta, loaded, plan, mc)
	if err := g.openTransport(); err != nil {
		return nil, err
	}
	self, err := g.claimSelf(now)
	if err != nil {
		_ = shutdownUnread(g.inner)
		return nil, err
	}
	g.queueRows(Map{cfg.Name: self})
	if plan.Known() {
		g.queuePlan(plan)
	}
	return g, nil
}

// loadStartState loads the persisted map and plan, brings versions from
// the far future back to the clock and picks the plan to start with.
func loadStartState(log *slog.Logger, cfg Config, now uint64) (Map, ring.Plan, error) {
	loaded, plan, err := loadState(cfg.stateFS(), cfg.Dir, cfg.Name)
	if err != nil {
		return nil, ring.Plan{}, err
	}
	if err := checkOwnZone(plan, cfg.Name, cfg.Zone); err != nil {
		return nil, ring.Plan{}, err
	}
	for _, name := range loaded.ahead(now + maxVersionLead) {
		// Written before versions were bounded, or by hand: a row from the
		// far future would outrank every change ever made again.
		log.Warn("ring-membership row version is far ahead of the clock; bringing it back to the clock",
			"peer", name, "version", loaded[name].Version, "clock", now)
		e := loaded[name]
		e.Version = now
		loaded[name] = e
	}
	if plan.Known() && plan.Version > now+maxVersionLead {
		// The clock went back by more than a day since it was saved:
		// peers would refuse the plan, and plans made from it.
		log.Warn("plan version is far ahead of the clock; bringing it back to the clock",
			"epoch", plan.Epoch, "version", plan.Version, "clock", now)
		plan.Version = now
	}
	return loaded, initialPlan(log, plan, loaded, cfg, now), nil
}

// newGossip returns the Gossip of cfg with its state, broadcast queue and
// memberlist configuration (delegates and logger set), not yet bound.
func newGossip(cfg Config, log *slog.Logger, meta []byte, loaded Map, plan ring.Plan, mc *memberlist.Config) *Gossip {
	g := &Gossip{
		cfg:      cfg,
		log:      log,
		meta:     meta,
		mc:       mc,
		ring:     loaded,
		reassert: true,
		pending:  Map{},
		events:   newEventQueue(),
		dirty:    make(chan struct{}, 1),
		joined:   make(chan struct{}),
		stop:     make(chan struct{}),
	}
	g.plan.Store(&plan)
	g.keyring = mc.Keyring
	empty := map[string]peer{}
	g.peers.Store(&empty)
	g.bcast = &memberlist.TransmitLimitedQueue{
		NumNodes: func() int {
			if ml := g.mlist.Load(); ml != nil {
				return ml.NumMembers()
			}
			return 1
		},
		RetransmitMult: mc.RetransmitMult,
	}
	d := &delegate{g: g}
	mc.Delegate = d
	mc.Events = d
	mc.Conflict = d
	mc.Ping = d
	encrypted := len(cfg.keys()) > 0
	mc.Logger = newMemberlistLogger(&mlLogWriter{
		log:       log,
		encrypted: func() bool { return encrypted },
		onSuspect: func(name string) { g.events.push(nodeEvent{kind: evSuspect, name: name}) },
		now:       cfg.now,
		warnings:  &g.mlWarnings, suppressed: &g.mlSuppressed,
	})
	return g
}

// openTransport binds the transport (Config.Transport, or memberlist's
// network transport on the configured address) and works out the address
// memberlist will advertise, asked of the transport the way memberlist
// asks it (refreshAdvertise) and formatted as nodeAddr formats memberlist's
// LocalNode: memberlist may call the delegate before Create returns, and
// the delegate needs it.
func (g *Gossip) openTransport() error {
	mc := g.mc
	inner := g.cfg.Transport
	if inner == nil {
		nt, err := newNetTransport(mc, mc.Logger)
		if err != nil {
			return err
		}
		inner = bindDials(nt, mc.BindAddr)
	}
	if exposedWithoutKeys(g.cfg, mc.BindAddr) {
		g.log.Warn("gossip binds a non-loopback address without encryption: anyone who reaches it can join the ring and receive its data; set gossip.keys",
			"bind", net.JoinHostPort(mc.BindAddr, strconv.Itoa(mc.BindPort)))
	}
	ip, port, err := inner.FinalAdvertiseAddr(mc.AdvertiseAddr, mc.AdvertisePort)
	if err != nil {
		_ = shutdownUnread(inner)
		return fmt.Errorf("gossip: advertise address for %s:%d: %w", mc.BindAddr, mc.BindPort, err)
	}
	g.inner = inner
	g.addr = nodeAddr(&memberlist.Node{Addr: ip, Port: uint16(port)})
	return nil
}

// claimSelf makes this node's row say it is in the ring at its address and
// persists the map: a node that starts joins the ring, or stays leaving if
// it was (an operator's leave is not undone by a crash). The row is bumped
// only if it says otherwise, so restarts do not inflate versions.
func (g *Gossip) claimSelf(now uint64) (Entry, error) {
	name := g.cfg.Name
	g.mu.Lock()
	if cur, ok := g.ring[name]; !ok || !cur.Status.InRing() || cur.Addr != g.addr || cur.Zone != g.cfg.Zone {
		status := StatusJoined
		if ok && cur.Status == StatusLeaving {
			status = StatusLeaving
		}
		g.ring = g.ring.SetZoned(name, status, g.addr, g.cfg.Zone, now)
	}
	self := g.ring[name]
	g.mu.Unlock()
	return self, g.persist()
}

// initialPlan returns the plan a node starts with (TRANSFER.md section
// 4): the persisted one if known (a data directory from before plans has
// the plan of its map's ring members, see parseState); else, with
// cfg.Bootstrap and a map that holds no other node (this node has never
// seen a peer), the first plan of a new cluster, this node alone; else
// none, until a peer's arrives. A node that has seen peers does not
// bootstrap: they hold the cluster's plan, and a plan of this node alone,
// made now, would beat a first plan the cluster made earlier.
func initialPlan(log *slog.Logger, persisted ring.Plan, loaded Map, cfg Config, now uint64) ring.Plan {
	if persisted.Known() {
		if persisted.Version == 0 {
			log.Info("holding the plan made from the membership map of a build from before plans (version 0: any plan the cluster made wins)",
				"epoch", persisted.Epoch, "members", persisted.Members)
		}
		return persisted
	}
	var others []string
	for _, name := range loaded.Names() {
		if name != cfg.Name {
			others = append(others, name)
		}
	}
	switch {
	case !cfg.Bootstrap:
		log.Info("no plan known yet: waiting for a peer's")
		return ring.Plan{}
	case len(others) > 0:
		log.Warn("not bootstrapping a new cluster: this node has seen other nodes but learnt no plan; waiting for theirs",
			"peers", others)
		return ring.Plan{}
	}
	p := ring.NewPlan([]string{cfg.Name}, now)
	if cfg.Zone != "" {
		p.Zones = map[string]string{cfg.Name: cfg.Zone}
	}
	if err := checkPlan(p); err != nil {
		// Config.Validate admits only names a plan admits.
		log.Error("could not make the first plan; waiting for a peer's", "err", err)
		return ring.Plan{}
	}
	log.Info("bootstrapping a new cluster: the first plan has this node alone", "version", p.Version)
	return p
}

// Start runs memberlist on the transport New bound and the event
// goroutine, which reports the ring and the plan to the callbacks at once;
// then it joins the seeds, retrying in the background until one answers,
// and runs the re-join loop until ctx ends or Shutdown. It does not block.
// Calling it again does nothing, or returns the same error if it failed
// (the transport was closed then: make a new Gossip); after Shutdown it
// returns ErrShutdown.
func (g *Gossip) Start(ctx context.Context) error {
	g.lifeMu.Lock()
	defer g.lifeMu.Unlock()
	if g.closed.Load() {
		return ErrShutdown
	}
	if g.started {
		return nil
	}
	if g.startErr != nil {
		return g.startErr
	}
	if err := g.startMemberlist(); err != nil {
		g.startErr = err
		return err
	}
	g.started = true
	self := g.ringSnapshot()[g.cfg.Name]
	plan := g.Plan()
	g.log.Info("gossip started", "addr", g.addr, "profile", g.cfg.Profile,
		"encrypted", len(g.cfg.keys()) > 0, "keys", len(g.cfg.keys()), "ring_version", self.Version, "ring_members", g.RingMembers(),
		"status", self.Status, "plan_epoch", plan.Epoch)
	g.wg.Add(1)
	go g.run()
	g.markDirty()
	ctx, cancel := context.WithCancel(ctx)
	g.wg.Add(3)
	go func() {
		// Tie ctx to Shutdown so the loops have one thing to watch.
		defer g.wg.Done()
		defer cancel()
		select {
		case <-ctx.Done():
		case <-g.stop:
		}
	}()
	go func() { defer g.wg.Done(); g.joinSeeds(ctx) }()
	go func() { defer g.wg.Done(); g.rejoinLoop(ctx) }()
	return nil
}

// startMemberlist wraps the bound transport in the stream caps and starts
// memberlist on it; memberlist then owns the transport. On an error the
// transport is shut down. Called with lifeMu held.
func (g *Gossip) startMemberlist() error {
	cfg, mc := g.cfg, g.mc
	tooLong := func(remote net.Addr) {
		g.refuseStream(&g.refusedStreams, &g.streamLog, remote,
			"refusing a gossip stream over the size limit; a peer sent more than any push-pull needs, or the gossip port is exposed",
			"refused_total", cfg.maxStreamBytes())
	}
	busy := func(remote net.Addr) {
		g.refuseStream(&g.busyStreams, &g.busyLog, remote,
			"refusing a gossip stream, too many open; a peer holds streams open that no gossip needs, or the gossip port is exposed",
			"busy_total", int64(cfg.maxConcurrentStreams()))
	}
	tr := newCappedTransport(g.inner, cfg.maxStreamBytes(), cfg.maxConcurrentStreams(), tooLong, busy)
	g.inner = nil // shut down below on failure, by memberlist otherwise
	mc.Transport = tr
	ml, err := memberlist.Create(mc)
	if err != nil {
		// memberlist does not always shut the transport down on failure,
		// and may have failed before it read the transport's channels.
		_ = shutdownUnread(tr)
		return fmt.Errorf("gossip: start memberlist on %s:%d: %w", mc.BindAddr, mc.BindPort, err)
	}
	// A transport bound to a wildcard address picks a private IP each time
	// it is asked; should the interfaces have changed since New asked,
	// memberlist advertises another address than the delegate has been
	// using, and the node refuses to run rather than gossip a wrong row.
	// LocalNode points into memberlist's state; read it now, before any
	// join could make memberlist rewrite it.
	if got := nodeAddr(ml.LocalNode()); got != g.addr {
		_ = ml.Shutdown()
		return fmt.Errorf("gossip: memberlist advertises %s, not %s as its transport reported a moment before; the network interfaces changed while starting", got, g.addr)
	}
	g.mlist.Store(ml)
	return nil
}

// Joined is closed once a seed answered, or at Start if there are no seeds.
func (g *Gossip) Joined() <-chan struct{} { return g.joined }

// seedTargets returns the configured seeds minus our own address.
func (g *Gossip) seedTargets() []string {
	var out []string
	for _, s := range g.cfg.Seeds {
		if s != g.addr {
			out = append(out, s)
		}
	}
	return out
}

// joinSeeds contacts the seeds until one answers, with capped backoff.
func (g *Gossip) joinSeeds(ctx context.Context) {
	seeds := g.seedTargets()
	if len(seeds) == 0 {
		g.log.Info("no seeds configured: this node starts a cluster or waits to be joined")
		g.joinOnce.Do(func() { close(g.joined) })
		return
	}
	backoff, maxBackoff := time.Second, 30*time.Second
	if g.cfg.Profile == ProfileLocal {
		backoff, maxBackoff = 100*time.Millisecond, time.Second
	}
	for attempt := 1; ctx.Err() == nil; attempt++ {
		n, err := g.mlist.Load().Join(seeds)
		if n > 0 {
			g.log.Info("joined cluster through seeds", "seeds", seeds, "answered", n, "attempt", attempt)
			g.joinOnce.Do(func() { close(g.joined) })
			return
		}
		if len(g.cfg.keys()) > 0 {
			g.log.Warn("could not join any seed, retrying; if the seeds are up, check that they use the same gossip encryption key",
				"seeds", seeds, "attempt", attempt, "retry_in", backoff, "err", err)
		} else {
			g.log.Warn("could not join any seed, retrying", "seeds", seeds, "attempt", attempt, "retry_in", backoff, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// rejoinLoop periodically joins ring members that memberlist does not see
// alive. memberlist forgets dead nodes after GossipToTheDeadTime and never
// probes them again, so without this a partition longer than that would
// leave two halves that each think the other dead, forever.
func (g *Gossip) rejoinLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.rejoinInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		targets := g.rejoinTargets()
		if len(targets) == 0 {
			continue
		}
		n, err := g.mlist.Load().Join(targets)
		if n > 0 {
			g.log.Info("re-joined ring members memberlist did not see alive", "targets", targets, "answered", n)
		} else {
			g.log.Debug("re-join found no ring member", "targets", targets, "err", err)
		}
	}
}

// rejoinTargets lists "name/host:port" for every other ring member that is
// not alive or suspect, plus the seeds when no peer is alive at all.
func (g *Gossip) rejoinTargets() []string {
	ring := g.ringSnapshot()
	peers := *g.peers.Load()
	var out []string
	for _, name := range ring.Names() {
		e := ring[name]
		if name == g.cfg.Name || !e.Status.InRing() || e.Addr == "" {
			continue
		}
		if p, ok := peers[name]; ok && p.liveness != Dead {
			continue
		}
		out = append(out, name+"/"+e.Addr)
	}
	anyAlive := false
	for _, p := range peers {
		anyAlive = anyAlive || p.liveness != Dead
	}
	if !anyAlive {
		// Nobody reachable: the seeds may know nodes our map does not.
		out = append(out, g.seedTargets()...)
	}
	return out
}

// Shutdown leaves memberlist (so peers see a clean exit at once instead of
// waiting for the failure detector), shuts it down, stops the goroutines
// and persists the ring map. It does not change ring status: use Leave for
// that. Safe to call more than once.
func (g *Gossip) Shutdown() error {
	return g.halt(true)
}

// halt stops everything; leave selects whether memberlist announces the
// exit first (false simulates a crash in tests).
func (g *Gossip) halt(leave bool) error {
	var err error
	g.stopOnce.Do(func() {
		g.lifeMu.Lock()
		g.closed.Store(true)
		close(g.stop)
		inner := g.inner // set only while memberlist does not own it
		g.inner = nil
		g.lifeMu.Unlock()
		ml := g.mlist.Load()
		var errs []error
		if ml == nil {
			// Never started: nothing to announce, only the transport to
			// close, which nobody reads.
			if inner != nil {
				if e := shutdownUnread(inner); e != nil {
					errs = append(errs, fmt.Errorf("gossip: shut down transport: %w", e))
				}
			}
		} else if leave {
			// Say goodbye first, so peers log our departure as such
			// (memberlist's NotifyLeave cannot tell them), then
			// memberlist's Leave before Shutdown, or peers only notice
			// through probe failures and suspicion.
			g.sayBye()
			if e := ml.Leave(g.leaveTimeout()); e != nil {
				// Not a failure of the shutdown: when peers stop at the
				// same moment nobody is left to confirm the broadcast, and
				// they will see this node gone by probing anyway.
				g.log.Warn("leave broadcast not confirmed before shutdown", "err", e)
			}
		}
		if ml != nil {
			if e := ml.Shutdown(); e != nil {
				errs = append(errs, fmt.Errorf("gossip: shut down memberlist: %w", e))
			}
		}
		g.wg.Wait()
		if e := g.persist(); e != nil {
			errs = append(errs, e)
		}
		g.log.Info("gossip stopped", "announced", leave)
		err = errors.Join(errs...)
	})
	return err
}

// sayBye tells every alive peer, over TCP and in parallel, that this node
// is shutting down cleanly; it waits at most leaveTimeout. Best effort: a
// peer that misses it only logs our exit as a failure.
func (g *Gossip) sayBye() {
	ml := g.mlist.Load()
	msg := append([]byte{msgBye}, g.cfg.Name...)
	var wg sync.WaitGroup
	for _, n := range g.reachablePeers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ml.SendReliable(n, msg)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(g.leaveTimeout()):
	}
}

// leaveTimeout bounds how long Shutdown waits for memberlist's leave
// message to go out.
func (g *Gossip) leaveTimeout() time.Duration {
	if g.cfg.Profile == ProfileLocal {
		return time.Second
	}
	return 5 * time.Second
}

// ringSnapshot returns the current map; callers must not modify it.
func (g *Gossip) ringSnapshot() Map {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ring
}

// stateSnapshot returns the current map and plan, taken together; callers
// must not modify them.
func (g *Gossip) stateSnapshot() (Map, ring.Plan) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ring, g.Plan()
}

// mergeRemote folds rows from a peer into the map. fullSync marks a
// push-pull (whole map) as opposed to a broadcast row. Rows that changed
// are re-gossiped, so news spreads epidemically rather than only from its
// origin, and the event goroutine persists the map and tells the user.
//
// Not every row is taken (docs/gossip.md, "Accepting rows"): a row whose
// version is more than maxVersionLead ahead of our clock is refused; a row
// for a name that is neither in the map, nor this node, nor a node
// memberlist has seen join is held pending (see promotePending); and the
// map never grows past maxRows names.
func (g *Gossip) mergeRemote(m Map, fullSync bool) {
	now := versionAt(g.cfg.now())
	var sorted mergeSort
	// The lock is released even if merging panics (the delegate recovers
	// the panic): memberlist calls in here again with the next message.
	changed := func() Map {
		g.mu.Lock()
		defer g.mu.Unlock()
		var accepted Map
		accepted, sorted = g.sortRows(m, now+maxVersionLead)
		next := g.correctSelf(Merge(g.ring, accepted), now)
		if fullSync {
			g.reassert = false
		}
		changed := Changed(g.ring, next)
		g.ring = next
		return changed
	}()
	g.logMergeRefusals(sorted, now+maxVersionLead)
	if len(changed) == 0 {
		return
	}
	g.queueRows(changed)
	g.markDirty()
}

// mergeSort names the rows of a merge that were not accepted.
type mergeSort struct {
	ahead   []string // versions beyond the limit: refused
	held    []string // names memberlist has not seen join: pending
	dropped []string // no room in the map or the pending rows
}

// sortRows returns the rows of m to merge, and holds in g.pending those
// for names memberlist has not seen join. Called with g.mu held.
func (g *Gossip) sortRows(m Map, limit uint64) (Map, mergeSort) {
	var ms mergeSort
	peers := *g.peers.Load()
	accepted := make(Map, len(m))
	newNames := 0
	for name, e := range m {
		_, inMap := g.ring[name]
		_, seen := peers[name]
		switch {
		case e.Version > limit:
			ms.ahead = append(ms.ahead, name)
		case inMap || name == g.cfg.Name:
			accepted[name] = e
		case !seen:
			if g.holdPending(name, e) {
				ms.held = append(ms.held, name)
			} else {
				ms.dropped = append(ms.dropped, name)
			}
		case len(g.ring)+newNames >= maxRows:
			ms.dropped = append(ms.dropped, name)
		default:
			newNames++
			accepted[name] = e
		}
	}
	return accepted, ms
}

// holdPending keeps e as the pending row of name if it is newer than the
// one held, and reports false when there is no room for another name.
// Called with g.mu held.
func (g *Gossip) holdPending(name string, e Entry) bool {
	cur, ok := g.pending[name]
	if !ok && len(g.pending) >= maxPending {
		return false
	}
	if g.pending == nil {
		g.pending = Map{}
	}
	if !ok || compareEntry(e, cur) > 0 {
		g.pending[name] = e
	}
	return true
}

// correctSelf answers rows about this node in next that it knows to be
// wrong, and warns when a peer took it out of the ring. Called with g.mu
// held.
func (g *Gossip) correctSelf(next Map, now uint64) Map {
	self, ok := next[g.cfg.Name]
	if !ok {
		return next
	}
	switch {
	case self.Status.InRing() && (self.Addr != g.addr || self.Zone != g.cfg.Zone):
		// A peer knew a newer row for us with the address or zone of
		// an earlier run: correct it so re-joins find us.
		next = next.SetZoned(g.cfg.Name, self.Status, g.addr, g.cfg.Zone, now)
	case !self.Status.InRing() && g.reassert:
		// A leave/remove from before this process started: starting
		// means joining, so answer with a newer row. (Leaving is
		// kept: a leave in progress survives restarts.)
		g.log.Info("overruling a ring status for this node that predates its start",
			"status", self.Status, "version", self.Version)
		next = next.SetZoned(g.cfg.Name, StatusJoined, g.addr, g.cfg.Zone, now)
	case !self.Status.InRing() && g.ring[g.cfg.Name].Status.InRing():
		g.log.Warn("this node was taken out of the ring by another node while running; its partitions move to other nodes (it keeps serving them until that change is committed); restart it to join again",
			"status", self.Status, "version", self.Version)
	}
	return next
}

// logMergeRefusals logs, sparingly, the rows a merge did not accept.
func (g *Gossip) logMergeRefusals(ms mergeSort, limit uint64) {
	if len(ms.ahead) > 0 {
		if ok, skipped := g.refusedLog.allow(g.cfg.now()); ok {
			slices.Sort(ms.ahead)
			g.log.Warn("refusing ring-membership rows with a version far ahead of this node's clock; check the clocks, or the gossip port is exposed",
				"peers", ms.ahead, "limit", limit, "messages_not_logged", skipped)
		}
	}
	if len(ms.held) > 0 && g.log.Enabled(context.Background(), slog.LevelDebug) {
		slices.Sort(ms.held)
		g.log.Debug("holding ring-membership rows for nodes memberlist has not seen join", "peers", ms.held)
	}
	if len(ms.dropped) > 0 {
		if ok, skipped := g.droppedLog.allow(g.cfg.now()); ok {
			slices.Sort(ms.dropped)
			g.log.Warn("dropping ring-membership rows for unknown nodes: too many rows", "peers", ms.dropped,
				"max_rows", maxRows, "max_pending", maxPending, "messages_not_logged", skipped)
		}
	}
}

// promotePending merges the row held for name, if any, now that memberlist
// has seen name join. It runs on the event goroutine after the peer table
// has name, so a row that mergeRemote holds concurrently is either held
// before this takes the lock or accepted directly.
func (g *Gossip) promotePending(name string) {
	g.mu.Lock()
	e, ok := g.pending[name]
	delete(g.pending, name)
	g.mu.Unlock()
	if ok {
		g.mergeRemote(Map{name: e}, false)
	}
}

// queueRows queues one broadcast per changed row.
func (g *Gossip) queueRows(rows Map) {
	for name, e := range rows {
		g.bcast.QueueBroadcast(&namedBroadcast{name: "ring:" + name, msg: encodeRowsMsg(Map{name: e})})
	}
}

// markDirty wakes the event goroutine to persist and report the ring.
func (g *Gossip) markDirty() {
	select {
	case g.dirty <- struct{}{}:
	default:
	}
}

// persist writes the current map and plan to the data directory. Writes
// are serialised and each takes a fresh snapshot, so a later write never
// carries an older map or plan than an earlier one.
func (g *Gossip) persist() error {
	g.persistMu.Lock()
	defer g.persistMu.Unlock()
	m, p := g.stateSnapshot()
	return saveState(g.cfg.stateFS(), g.cfg.Dir, g.cfg.Name, m, p)
}

// logLimiter lets one log line through per logEvery and counts the rest.
type logLimiter struct {
	mu      sync.Mutex // guards last and skipped
	last    time.Time
	skipped int
}

// logEvery is the least time between two lines from one logLimiter.
const logEvery = 10 * time.Second

// allow reports whether a line may be logged at now, and how many were
// held back since the last one.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < logEvery && !now.Before(l.last) {
		l.skipped++
		return false, 0
	}
	skipped := l.skipped
	l.last, l.skipped = now, 0
	return true, skipped
}

// idle reports whether l's last line is logEvery old or more at now, so
// that its next line would be written, and how many it held back since.
func (l *logLimiter) idle(now time.Time) (held int, idle bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.skipped, l.last.IsZero() || now.Sub(l.last) >= logEvery || now.Before(l.last)
}

// addHeld counts n lines as held back by l.
func (l *logLimiter) addHeld(n int) {
	l.mu.Lock()
	l.skipped += n
	l.mu.Unlock()
}

// warn logs msg at Warn with args and the number of lines held back
// ("messages_not_logged"), if l lets a line through at now.
func (l *logLimiter) warn(log *slog.Logger, now time.Time, msg string, args ...any) {
	if ok, skipped := l.allow(now); ok {
		log.Warn(msg, append(args, "messages_not_logged", skipped)...)
	}
}

// refuseStream counts in n a stream the transport refused and logs it
// (sparingly, through l) with msg, the remote address, the limit and the
// count so far under totalKey.
func (g *Gossip) refuseStream(n *atomic.Uint64, l *logLimiter, remote net.Addr, msg, totalKey string, limit int64) {
	total := n.Add(1)
	peer := "unknown"
	if remote != nil {
		peer = remote.String()
	}
	l.warn(g.log, g.cfg.now(), msg, "peer", peer, "limit", limit, totalKey, total)
}
