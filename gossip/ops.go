package gossip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/memberlist"
)

// LocalAddr returns the gossip address (host:port) this node advertises;
// with BindPort 0 it carries the port actually bound.
func (g *Gossip) LocalAddr() string { return g.addr }

// Name returns this node's name.
func (g *Gossip) Name() string { return g.cfg.Name }

// RingMembers returns the sorted names whose ring status is joined or
// leaving. The caller owns the slice.
func (g *Gossip) RingMembers() []string { return g.ringSnapshot().RingMembers() }

// Ring returns a copy of the ring-membership map.
func (g *Gossip) Ring() Map { return g.ringSnapshot().Clone() }

// Alive reports whether memberlist sees name alive; this node is always
// alive to itself. A suspect node is not alive: requests route around it
// (with hints) until a probe answers again. It takes no lock and allocates
// nothing, for the request path.
func (g *Gossip) Alive(name string) bool {
	return g.Liveness(name) == Alive
}

// Liveness returns the failure detector's view of name: Dead for a node
// never seen since this process started.
func (g *Gossip) Liveness(name string) Liveness {
	if name == g.cfg.Name {
		return Alive
	}
	if p, ok := (*g.peers.Load())[name]; ok {
		return p.liveness
	}
	return Dead
}

// Meta returns the metadata name last advertised, and whether it is known.
func (g *Gossip) Meta(name string) (Meta, bool) {
	if name == g.cfg.Name {
		return g.cfg.Meta, true
	}
	p, ok := (*g.peers.Load())[name]
	return p.meta, ok
}

// Members returns every node in the ring map or seen by memberlist, sorted
// by name.
func (g *Gossip) Members() []Member {
	ring := g.ringSnapshot()
	peers := *g.peers.Load()
	byName := make(map[string]Member, len(ring)+len(peers))
	for name, e := range ring {
		byName[name] = Member{Name: name, Addr: e.Addr, Zone: e.Zone, Status: e.Status, Version: e.Version, Liveness: Dead}
	}
	for name, p := range peers {
		m := byName[name]
		m.Name = name
		if p.addr != "" {
			m.Addr = p.addr
		}
		m.Meta, m.Liveness = p.meta, p.liveness
		byName[name] = m
	}
	self := byName[g.cfg.Name]
	self.Name, self.Addr, self.Meta, self.Liveness = g.cfg.Name, g.addr, g.cfg.Meta, Alive
	byName[g.cfg.Name] = self
	out := make([]Member, 0, len(byName))
	for _, m := range byName {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// StartLeave starts this node's graceful leave: its row becomes
// StatusLeaving, persisted and announced as in Leave. A leaving node is
// still a ring member; the claimant makes a plan without it, and the
// node keeps serving as a source while its data moves. Once a stable
// plan without it is agreed, the caller (the node package) calls Leave.
// A leave survives restarts: New keeps a leaving row leaving. Calling it
// while already leaving does nothing.
//
// Errors as for Leave.
func (g *Gossip) StartLeave(ctx context.Context) error {
	return g.change(ctx, g.cfg.Name, StatusLeaving, "start leave")
}

// Leave takes this node out of the ring: its row becomes StatusLeft, is
// persisted, and is sent directly to every peer memberlist sees alive
// before Leave returns (and gossiped as well). The node keeps running and
// gossiping; call Shutdown to stop it. Leave is the last step of a
// graceful leave: the node package calls StartLeave first, waits until the
// node's data has been handed off (a stable plan without it), then calls
// Leave. Called alone it takes the node out without handing anything off.
//
// It returns an error if the change could not be persisted, or if alive
// peers exist and none acknowledged before ctx ended; the change is still
// recorded and gossip keeps spreading it.
func (g *Gossip) Leave(ctx context.Context) error {
	return g.change(ctx, g.cfg.Name, StatusLeft, "leave")
}

// Remove takes another node out of the ring for good: its row becomes
// StatusRemoved and is announced as in Leave. Meant for a node that is gone
// (crashed and not coming back); a node that is started again rejoins.
// Removing an already removed node is a no-op. It returns ErrRemoveSelf for
// this node and ErrUnknownNode for a name not in the ring map.
func (g *Gossip) Remove(ctx context.Context, name string) error {
	if name == g.cfg.Name {
		return fmt.Errorf("%w: %q", ErrRemoveSelf, name)
	}
	if _, ok := g.ringSnapshot()[name]; !ok {
		return fmt.Errorf("%w: %q is not in the ring map (known: %v)", ErrUnknownNode, name, g.ringSnapshot().Names())
	}
	if g.Alive(name) {
		g.log.Warn("removing a node that is alive; remove is meant for nodes that are gone for good", "peer", name)
	}
	return g.change(ctx, name, StatusRemoved, "remove")
}

// change sets name's status (unless it already has it), persists and
// announces the new row.
func (g *Gossip) change(ctx context.Context, name string, s Status, op string) error {
	if g.closed.Load() {
		return fmt.Errorf("%w: cannot %s", ErrShutdown, op)
	}
	g.mu.Lock()
	cur, ok := g.ring[name]
	if ok && cur.Status == s {
		g.mu.Unlock()
		return nil
	}
	addr := cur.Addr
	if name == g.cfg.Name {
		addr = g.addr
	}
	g.ring = g.ring.Set(name, s, addr, versionAt(g.cfg.now()))
	if name == g.cfg.Name {
		// Our own decision from now on: never overrule it as stale.
		g.reassert = false
	}
	row := Map{name: g.ring[name]}
	g.mu.Unlock()

	g.log.Info("ring status changed by operator", "op", op, "peer", name, "status", s, "version", row[name].Version)
	g.queueRows(row)
	g.markDirty()
	if err := g.persist(); err != nil {
		return fmt.Errorf("gossip: %s %q: %w", op, name, err)
	}
	return g.announce(ctx, op, encodeRowsMsg(row))
}

// reachablePeers returns a private memberlist.Node (name and address only)
// for every peer not known dead. It reads our own peer table, never
// memberlist's Members(): those are pointers into memberlist's state, which
// it rewrites under its lock when an alive message arrives, so reading
// their fields later is a data race.
func (g *Gossip) reachablePeers() []*memberlist.Node {
	var out []*memberlist.Node
	for name, p := range *g.peers.Load() {
		if p.liveness == Dead {
			continue
		}
		host, port, err := net.SplitHostPort(p.addr)
		if err != nil {
			continue
		}
		pn, err := strconv.ParseUint(port, 10, 16)
		ip := net.ParseIP(host)
		if err != nil || ip == nil {
			continue
		}
		out = append(out, &memberlist.Node{Name: name, Addr: ip, Port: uint16(pn)})
	}
	return out
}

// announce sends a user message (rows or a plan) reliably (TCP) to every
// peer memberlist sees alive and waits until every send finished or ctx
// ended. It succeeds if at least one peer took it: from there gossip and
// push-pull carry it to everyone, including peers that were unreachable
// now.
func (g *Gossip) announce(ctx context.Context, op string, msg []byte) error {
	ml := g.mlist.Load()
	targets := g.reachablePeers()
	if len(targets) == 0 {
		g.log.Warn("no peer alive to tell; the change spreads when peers are reached", "op", op)
		return nil
	}
	results := make(chan error, len(targets)) // never blocks a sender
	for _, n := range targets {
		go func() {
			// SendReliable has no ctx; memberlist's TCPTimeout bounds it,
			// so these goroutines end even if we stop waiting.
			if err := ml.SendReliable(n, msg); err != nil {
				results <- fmt.Errorf("peer %s: %w", n.Name, err)
				return
			}
			results <- nil
		}()
	}
	acked := 0
	var errs []error
	for range targets {
		select {
		case err := <-results:
			if err != nil {
				errs = append(errs, err)
			} else {
				acked++
			}
		case <-ctx.Done():
			if acked > 0 {
				return nil
			}
			return fmt.Errorf("gossip: %s: recorded, but no peer acknowledged before %w", op, ctx.Err())
		}
	}
	if acked == 0 {
		return fmt.Errorf("gossip: %s: recorded, but no peer acknowledged: %w", op, errors.Join(errs...))
	}
	if len(errs) > 0 {
		g.log.Warn("some peers missed the change; gossip will reach them", "op", op, "err", errors.Join(errs...))
	}
	return nil
}
