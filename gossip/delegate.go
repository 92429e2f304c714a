package gossip

import (
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate implements memberlist's Delegate, EventDelegate and
// ConflictDelegate. memberlist calls these from its own goroutines, some of
// them while holding its node lock, so every method here only touches our
// own state under our own short locks and queues work; none calls back into
// memberlist (Members, Join, ...) or into user callbacks. Each recovers a
// panic (recoverPanic): a bug met while handling one peer's bytes loses
// that message, not the node; a method with a result then returns its
// zero value.
type delegate struct {
	g *Gossip
}

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.PingDelegate     = (*delegate)(nil)
)

// NodeMeta returns our encoded Meta (validated to fit at New).
func (d *delegate) NodeMeta(limit int) []byte {
	defer recoverPanic(d.g.log, &d.g.panics, "NodeMeta")
	if len(d.g.meta) > limit {
		// Validate checked against MetaMaxSize, which is the limit
		// memberlist passes; this cannot happen unless memberlist changes.
		d.g.log.Error("node metadata exceeds memberlist limit", "bytes", len(d.g.meta), "limit", limit)
		return nil
	}
	return d.g.meta
}

// NotifyMsg receives our user messages: gossiped or directly sent rows of
// the ring map, plans, goodbyes. memberlist may reuse buf after we return;
// decoding copies.
func (d *delegate) NotifyMsg(buf []byte) {
	defer recoverPanic(d.g.log, &d.g.panics, "NotifyMsg")
	if len(buf) == 0 {
		return
	}
	switch buf[0] {
	case msgRows:
		delta, plan, err := DecodeState(buf[1:])
		if err != nil {
			d.g.badStateLog.warn(d.g.log, d.g.cfg.now(), "dropping bad ring-membership message", "err", err)
			return
		}
		d.g.mergeRemote(delta, false)
		d.g.mergePlan(plan, "rows message")
	case msgPlan:
		plan, err := decodePlan(buf[1:])
		if err != nil {
			d.g.refusePlan("plan message", err)
			return
		}
		d.g.mergePlan(plan, "plan message")
	case msgBye:
		name := string(buf[1:])
		if validName(name) != nil {
			d.g.log.Warn("dropping bad goodbye message", "bytes", len(buf))
			return
		}
		d.g.events.push(nodeEvent{kind: evBye, name: name})
	default:
		// A newer node may send message types we do not know yet.
		d.g.log.Debug("ignoring unknown gossip message type", "type", buf[0])
	}
}

// GetBroadcasts hands memberlist our queued ring-map rows to piggyback on
// its gossip packets.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	defer recoverPanic(d.g.log, &d.g.panics, "GetBroadcasts")
	return d.g.bcast.GetBroadcasts(overhead, limit)
}

// LocalState returns the whole ring map and the plan for a push-pull
// exchange.
func (d *delegate) LocalState(join bool) []byte {
	defer recoverPanic(d.g.log, &d.g.panics, "LocalState")
	return EncodeState(d.g.stateSnapshot())
}

// MergeRemoteState merges a peer's whole ring map and plan from a
// push-pull.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	defer recoverPanic(d.g.log, &d.g.panics, "MergeRemoteState")
	if len(buf) == 0 {
		return
	}
	m, plan, err := DecodeState(buf)
	if err != nil {
		d.g.badStateLog.warn(d.g.log, d.g.cfg.now(), "dropping bad ring-membership state from push-pull", "err", err)
		return
	}
	d.g.mergeRemote(m, true)
	d.g.mergePlan(plan, "push-pull")
}

// NotifyJoin, NotifyLeave and NotifyUpdate run under memberlist's node lock:
// they copy the node and queue it for the event goroutine.
func (d *delegate) NotifyJoin(n *memberlist.Node) {
	defer recoverPanic(d.g.log, &d.g.panics, "NotifyJoin")
	d.g.events.push(nodeEventOf(evJoin, n))
}

// NotifyLeave is called both when a node leaves gracefully and when it is
// declared dead; the event goroutine tells them apart by n.State.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	defer recoverPanic(d.g.log, &d.g.panics, "NotifyLeave")
	d.g.events.push(nodeEventOf(evLeave, n))
}

// NotifyUpdate is called when a node's metadata changes.
func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	defer recoverPanic(d.g.log, &d.g.panics, "NotifyUpdate")
	d.g.events.push(nodeEventOf(evUpdate, n))
}

// NotifyConflict is called when two nodes claim the same name: a
// misconfiguration an operator must fix, because the name is the ring
// member name.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	defer recoverPanic(d.g.log, &d.g.panics, "NotifyConflict")
	d.g.log.Error("two nodes use the same gossip name; names must be unique",
		"peer", existing.Name, "addr", nodeAddr(existing), "other_addr", nodeAddr(other))
}

// AckPayload adds nothing to our probe acks.
func (d *delegate) AckPayload() []byte { return nil }

// NotifyPingComplete is called when our direct probe of other succeeded;
// it is how a node we suspected is seen alive again.
func (d *delegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	defer recoverPanic(d.g.log, &d.g.panics, "NotifyPingComplete")
	d.g.events.push(nodeEvent{kind: evPingOK, name: other.Name})
}

// nodeAddr formats a memberlist node's address as host:port.
func nodeAddr(n *memberlist.Node) string {
	if n.Addr == nil {
		return ""
	}
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// namedBroadcast is one message queued for gossip: a ring-map row (named
// "ring:" and the node) or the plan (named "plan"). A newer message of the
// same name replaces an older one still in the queue.
type namedBroadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*namedBroadcast)(nil)

// Invalidates reports whether other is an older message of the same name.
func (b *namedBroadcast) Invalidates(other memberlist.Broadcast) bool {
	nb, ok := other.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.Name()
}

// Name identifies what the message is about.
func (b *namedBroadcast) Name() string { return b.name }

// Message returns the encoded message.
func (b *namedBroadcast) Message() []byte { return b.msg }

// Finished is a no-op: delivery is made certain by push-pull, not by
// counting retransmits.
func (b *namedBroadcast) Finished() {}
