package gossip

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// evKind is the memberlist callback an event came from.
type evKind int

const (
	evJoin evKind = iota
	evLeave
	evUpdate
)

// nodeEvent is a copy of a memberlist node taken inside a callback, so the
// event goroutine never reads memberlist's structures.
type nodeEvent struct {
	kind  evKind
	name  string
	addr  string
	meta  []byte
	state memberlist.NodeStateType
}

func nodeEventOf(k evKind, n *memberlist.Node) nodeEvent {
	return nodeEvent{kind: k, name: n.Name, addr: nodeAddr(n), meta: slices.Clone(n.Meta), state: n.State}
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
}

// livenessOf maps memberlist's node state to ours. A node that left
// memberlist gracefully (StateLeft) is as unreachable as a dead one.
func livenessOf(s memberlist.NodeStateType) Liveness {
	switch s {
	case memberlist.StateAlive:
		return Alive
	case memberlist.StateSuspect:
		return Suspect
	}
	return Dead
}

// run is the event goroutine. It alone writes the peer table, persists the
// ring map after remote changes and calls the user's callbacks, so callbacks
// are serial and never run under memberlist's locks.
func (g *Gossip) run() {
	defer g.wg.Done()
	poll := time.NewTicker(g.cfg.pollInterval())
	defer poll.Stop()
	var lastRing []string
	delivered := false
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
		case <-poll.C:
			// Drain first so a poll never precedes an older queued event.
			for _, e := range g.events.drain() {
				g.applyEvent(e)
			}
			g.pollSuspects()
		}
	}
}

// applyEvent folds one memberlist event into the peer table.
func (g *Gossip) applyEvent(e nodeEvent) {
	if e.name == g.cfg.Name {
		return
	}
	l := livenessOf(e.state)
	if e.kind == evLeave {
		// memberlist reports a graceful leave and a failure alike; only the
		// state tells them apart. Neither changes ring membership.
		if e.state == memberlist.StateLeft {
			g.log.Info("node left gossip (shut down cleanly); ring membership unchanged", "peer", e.name)
		} else {
			g.log.Warn("node failed (declared dead); ring membership unchanged", "peer", e.name)
		}
		l = Dead
	}
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
		p.liveness = l
	})
}

// pollSuspects reads memberlist's member list (from our goroutine, never a
// callback) to catch alive<->suspect transitions, for which memberlist has no
// callback, and any death whose event we have not yet seen.
func (g *Gossip) pollSuspects() {
	ml := g.mlist.Load()
	if ml == nil {
		return
	}
	seen := make(map[string]Liveness)
	for _, n := range ml.Members() {
		if n.Name != g.cfg.Name {
			seen[n.Name] = livenessOf(n.State)
		}
	}
	for name, p := range *g.peers.Load() {
		l, ok := seen[name]
		if !ok {
			l = Dead
		}
		if l != p.liveness {
			g.updatePeer(name, func(p *peer) { p.liveness = l })
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
