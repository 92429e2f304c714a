package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/ring"
)

// Readiness. A node whose config names seeds serves no client request
// until it has joined the cluster: until then its ring is only what its
// data directory remembered (on a first start, itself alone), so with R
// and W capped by the ring's size it would acknowledge PUT ?w=all as the
// only replica of keys it does not hold once it joins.
//
// Joined means both: gossip reached a seed (memberlist's join, which
// includes a push-pull exchange of the ring map and plan, succeeded with at
// least one seed: gossip.Gossip.Joined is closed), and the cluster's plan
// has this node and another among its serving members: a new node first
// gets a full copy of the partitions it will replicate (docs/operations.md).
//
// A node without seeds, or whose only seed is its own gossip address, is
// ready at once: it starts (or restarts) a cluster of its own. So is a
// node started with bootstrap: true while its persisted plan names no
// other node (or, with no plan persisted, its ring map names none): a
// first start, or a restart of a cluster that shrank to this node alone.
// A bootstrap node whose plan has other members waits for a seed as any
// node with seeds does, and becomes ready without one if its plan becomes
// a stable plan of itself alone (the operator removed the others).
// Readiness never goes back: a joined node that loses its peers later is
// degraded, not new.

// notJoinedText is the reason given to clients of a node not joined yet;
// /readyz answers its first half, notJoinedState.
const (
	notJoinedState = "not joined yet: this node has not reached a seed of its cluster, or is still getting a copy of the partitions it will replicate"
	notJoinedText  = notJoinedState + "; retry later or use a node that has joined"
)

// errNotJoined is the cause a node that has not joined gives for refusing
// to coordinate a write forwarded to it.
var errNotJoined = errors.New("node: " + notJoinedText)

// respNotJoined is the RESP error for data commands on a node not joined
// yet. CLUSTERDOWN is a code Redis clients know to retry.
const respNotJoined = "CLUSTERDOWN " + notJoinedText

// bootstraps reports whether the node serves without joining: bootstrap
// is set, or no seed names another address than its own gossip address
// (gossip joins no seed then either).
func (n *Node) bootstraps() bool {
	return n.cfg.Bootstrap || !n.hasSeeds()
}

// hasSeeds reports whether a seed names another address than the node's
// own gossip address: one gossip tries to join.
func (n *Node) hasSeeds() bool {
	return slices.ContainsFunc(n.cfg.Seeds, func(s string) bool { return s != n.addrs.Gossip })
}

// readyAtStart reports whether the node serves clients as soon as it
// starts: it has no seed but itself, or it has bootstrap: true and is a
// cluster of one. Called after gossip is built, before it starts.
func (n *Node) readyAtStart() bool {
	if !n.hasSeeds() {
		return true // no seed but itself: a cluster of its own by config
	}
	if p := n.gossip.Plan(); p.Known() {
		return n.bootstrapAlone(p)
	}
	// No plan: gossip starts one only when the map names nobody else.
	self := n.cfg.Node.Name
	return n.cfg.Bootstrap && !slices.ContainsFunc(n.gossip.Ring().Names(), func(name string) bool { return name != self })
}

// bootstrapAlone reports whether the node bootstraps and p is a stable
// plan of this node alone: a cluster of one, ready without a seed. The
// plan says who holds data, so left, removed or never-admitted rows the
// map still carries (rows are never deleted) do not count.
func (n *Node) bootstrapAlone(p ring.Plan) bool {
	return n.bootstraps() && p.Stable() && slices.Equal(p.Members, []string{n.cfg.Node.Name})
}

// awaitJoin marks the node joined once gossip reached a seed, and rebuilds
// the ring from the map the seed sent before deciding readiness; it
// returns then, or when ctx ends.
func (n *Node) awaitJoin(ctx context.Context) {
	select {
	case <-n.gossip.Joined():
	case <-ctx.Done():
		return
	}
	n.seedJoined.Store(true)
	n.planMu.Lock()
	n.updateReady()
	n.planMu.Unlock()
}

// updateReady makes the node ready once it has reached a seed and the
// cluster's plan has it among its serving members, with another node: a
// node that is joining serves no client until its partitions have been
// copied to it and the change is committed (as a Cassandra node starts its
// client transport only once it has bootstrapped), so that a load
// balancer watching /readyz sends it clients only when it is a full
// member. A bootstrap node is also ready, seed or not, once the plan is a
// stable plan of itself alone (readyAtStart's rule, reached later: the
// operator removed the members it waited for). Called under planMu.
func (n *Node) updateReady() {
	if n.ready.Load() {
		return
	}
	t := n.place.Load()
	p := t.Plan()
	if n.bootstrapAlone(p) {
		n.ready.Store(true)
		n.log.Info("the cluster's plan is this node alone; serving clients", "plan_epoch", t.Epoch())
		return
	}
	if !n.seedJoined.Load() {
		return
	}
	self := n.cfg.Node.Name
	if !slices.Contains(p.Members, self) || !slices.ContainsFunc(p.Members, func(m string) bool { return m != self }) {
		if !n.waitLogged.Swap(true) {
			n.log.Info("reached a seed; serving clients once the cluster's plan has this node among its serving members (its partitions are copied to it first)",
				"plan_epoch", t.Epoch())
		}
		return
	}
	n.ready.Store(true)
	n.log.Info("joined the cluster; serving clients", "ring_members", len(p.Members), "plan_epoch", t.Epoch())
}

// Ready reports whether the node serves client requests (GET /readyz).
func (n *Node) Ready() bool { return n.ready.Load() }

// gated answers 503 "not joined yet" instead of calling h while ready
// says the node has not joined. A nil ready means always ready.
func (a *httpAPI) gated(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.ready != nil && !a.ready() {
			w.Header().Set("Retry-After", "1")
			zero := 0
			writeError(w, http.StatusServiceUnavailable, client.ErrorBody{Error: notJoinedText, Got: &zero})
			return
		}
		h(w, r)
	}
}

// readyz serves GET /readyz: 200 once the node serves clients, 503 before.
func (a *httpAPI) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if a.ready != nil && !a.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(notJoinedState + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// HasClusterState reports whether dataDir holds a node's cluster state
// (gossip's ring-membership file): the node has run there before, so it
// must not start a new cluster. A missing directory holds none.
func HasClusterState(dataDir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dataDir, gossip.StateFile))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("node: data directory %s: %w", dataDir, err)
}
