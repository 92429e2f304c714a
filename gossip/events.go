package gossip

import (
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/memberlist"
	"github.com/ringkv/ringkv/ring"
)

// evKind is the memberlist callback an event came from.
type evKind int

const (
	evJoin    evKind = iota // NotifyJoin
	evLeave                 // NotifyLeave: failed or left, we cannot tell here
	evUpdate                // NotifyUpdate: metadata changed
	evSuspect               // our probe of the node failed (memberlist log)
	evPingOK                // our probe of the node succeeded (PingDelegate)
	evBye                   // the node told us it is shutting down cleanly
)

// nodeEvent is a copy of a memberlist node taken inside a callback, so the
// event goroutine never reads memberlist's structures. It carries no node
// state: memberlist v0.7.0 never updates the State field of the Node it
// passes to callbacks (its nodeState.State shadows Node.State), so a dead
// and a left node look the same there.
type nodeEvent struct {
	kind evKind
	name string
	addr string
	meta []byte
}

func nodeEventOf(k evKind, n *memberlist.Node) nodeEvent {
	return nodeEvent{kind: k, name: n.Name, addr: nodeAddr(n), meta: slices.Clone(n.Meta)}
}

// eventQueue is an unbounded FIFO from memberlist's callbacks to the event
// goroutine. push never blocks, which matters because memberlist calls it
// while holding its node lock: a bounded channel that filled up would stall
// the whole failure detector.
type eventQueue struct {
	mu     sync.Mutex // guards events
	events []nodeEvent
	signal chan struct{} // capacity 1: "there may be events"
}

func newEventQueue() *eventQueue {
	return &eventQueue{signal: make(chan struct{}, 1)}
}

func (q *eventQueue) push(e nodeEvent) {
	q.mu.Lock()
	q.events = append(q.events, e)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// drain returns and clears the queued events.
func (q *eventQueue) drain() []nodeEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.events
	q.events = nil
	return out
}

// peer is what the event goroutine knows about another node from
// memberlist.
type peer struct {
	addr     string
	meta     Meta
	liveness Liveness
	// bye is set when the node announced a clean shutdown, so the
	// NotifyLeave that follows is logged as a departure, not a failure.
	bye bool
}

// run is the event goroutine. It alone writes the peer table, persists the
// ring map and plan after remote changes and calls the user's callbacks,
// so callbacks are serial and never run under memberlist's locks.
func (g *Gossip) run() {
	defer g.wg.Done()
	var lastRing []string
	var lastPlan ring.Plan
	delivered, planDelivered := false, false
	for {
		select {
		case <-g.stop:
			return
		case <-g.events.signal:
			for _, e := range g.events.drain() {
				g.applyEvent(e)
			}
		case <-g.dirty:
			if err := g.persist(); err != nil {
				g.log.Error("could not persist ring membership; a restart may start from an older ring", "dir", g.cfg.Dir, "err", err)
			}
			ring := g.RingMembers()
			if !delivered || !slices.Equal(ring, lastRing) {
				delivered, lastRing = true, ring
				g.log.Info("ring membership changed", "members", ring)
				if g.cfg.OnRingChange != nil {
					g.cfg.OnRingChange(slices.Clone(ring))
				}
			}
			// Coalesced like the ring: several changes between two wake-ups
			// are reported once, with the plan held now.
			if plan := g.Plan(); !planDelivered || !plan.Equal(lastPlan) {
				planDelivered, lastPlan = true, plan
				g.log.Info("plan changed", "epoch", plan.Epoch, "version", plan.Version,
					"members", plan.Members, "target", plan.Target)
				if g.cfg.OnPlanChange != nil {
					g.cfg.OnPlanChange(plan)
				}
			}
		}
	}
}

// applyEvent folds one event into the peer table.
func (g *Gossip) applyEvent(e nodeEvent) {
	if e.name == g.cfg.Name {
		return
	}
	cur, known := (*g.peers.Load())[e.name]
	switch e.kind {
	case evJoin, evUpdate:
		var meta Meta
		hasMeta := false
		if len(e.meta) > 0 {
			m, err := DecodeMeta(e.meta)
			if err != nil {
				g.log.Warn("ignoring bad node metadata", "peer", e.name, "err", err)
			} else {
				meta, hasMeta = m, true
			}
		}
		g.updatePeer(e.name, func(p *peer) {
			if e.addr != "" {
				p.addr = e.addr
			}
			if hasMeta {
				p.meta = meta
			}
			p.liveness, p.bye = Alive, false
		})
		if e.kind == evJoin {
			g.promotePending(e.name)
		}
	case evLeave:
		// memberlist reports a clean leave and a failure alike, and the
		// node state it passes is not filled in (see nodeEvent); our own
		// goodbye message tells them apart. Neither changes the ring.
		if cur.bye {
			g.log.Info("node left gossip (shut down cleanly); ring membership unchanged", "peer", e.name)
		} else {
			g.log.Warn("node failed (declared dead); ring membership unchanged", "peer", e.name)
		}
		g.updatePeer(e.name, func(p *peer) { p.liveness = Dead })
	case evSuspect:
		if known && cur.liveness == Alive {
			g.updatePeer(e.name, func(p *peer) { p.liveness = Suspect })
		}
	case evPingOK:
		// A refuted suspicion has no memberlist callback; the next
		// successful probe of the node is our signal. Never revive a
		// dead node this way: only NotifyJoin does that.
		if known && cur.liveness == Suspect {
			g.updatePeer(e.name, func(p *peer) { p.liveness = Alive })
		}
	case evBye:
		if known {
			g.updatePeer(e.name, func(p *peer) { p.bye = true })
		}
	}
}

// updatePeer applies f to name's row of the peer table, copy-on-write so
// that readers on the request path (Alive, Meta) take no lock, and reports a
// liveness change to the user.
func (g *Gossip) updatePeer(name string, f func(*peer)) {
	old := *g.peers.Load()
	p, existed := old[name]
	prev := p.liveness
	f(&p)
	if existed && p == old[name] {
		return
	}
	next := maps.Clone(old)
	next[name] = p
	g.peers.Store(&next)
	if !existed || prev != p.liveness {
		g.log.Info("node liveness changed", "peer", name, "liveness", p.liveness.String())
		if g.cfg.OnLiveness != nil {
			g.cfg.OnLiveness(name, p.liveness)
		}
	}
}
