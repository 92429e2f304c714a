package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/ring"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// The adapters between the front ends' small interfaces (backend.go) and
// the real packages: replica's coordinator behind kvBackend, and gossip,
// the current ring and the storage engine behind adminBackend.

// coordinatorKV adapts *replica.Coordinator to kvBackend, translating
// quorum spellings and replica's errors into the front ends' vocabulary.
type coordinatorKV struct{ c *replica.Coordinator }

var _ kvBackend = coordinatorKV{}

func (k coordinatorKV) Get(ctx context.Context, key []byte, r string) (kvResult, error) {
	q, err := parseQuorum(r)
	if err != nil {
		return kvResult{}, err
	}
	res, err := k.c.Get(ctx, key, replica.ReadOptions{R: q})
	return kvResult{Siblings: res.Siblings}, replicaError(err)
}

func (k coordinatorKV) Put(ctx context.Context, key, value []byte, w string, c vclock.Clock, hasCtx bool) (kvResult, error) {
	q, err := parseQuorum(w)
	if err != nil {
		return kvResult{}, err
	}
	res, err := k.c.Put(ctx, key, value, replica.WriteOptions{W: q, Context: c, HasContext: hasCtx})
	return kvResult{Siblings: res.Siblings}, replicaError(err)
}

func (k coordinatorKV) Delete(ctx context.Context, key []byte, w string, c vclock.Clock, hasCtx bool) (kvResult, error) {
	q, err := parseQuorum(w)
	if err != nil {
		return kvResult{}, err
	}
	res, err := k.c.Delete(ctx, key, replica.WriteOptions{W: q, Context: c, HasContext: hasCtx})
	return kvResult{Siblings: res.Siblings}, replicaError(err)
}

func parseQuorum(s string) (replica.Quorum, error) {
	q, err := replica.ParseQuorum(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errBadQuorum, err)
	}
	return q, nil
}

// replicaError maps replica's errors onto the front ends' ones; anything
// else passes through (HTTP 500).
func replicaError(err error) error {
	if err == nil {
		return nil
	}
	var qe *replica.QuorumError
	switch {
	case errors.As(err, &qe):
		qf := &quorumFailure{Op: qe.Op, Need: qe.Need, Got: qe.Got, Failures: make(map[string]string, len(qe.Failures)),
			Pending: qe.Pending, Unavailable: qe.Unavailable, Reachable: qe.Reachable}
		for n, cause := range qe.Failures {
			qf.Failures[n] = cause.Error()
		}
		return qf
	case errors.Is(err, replica.ErrBadQuorum):
		return fmt.Errorf("%w: %w", errBadQuorum, err)
	case errors.Is(err, replica.ErrTooManySiblings):
		return fmt.Errorf("%w: %w", errTooManySiblings, err)
	case errors.Is(err, replica.ErrBadRequest):
		return fmt.Errorf("%w: %w", errBadRequest, err)
	case errors.Is(err, replica.ErrNoReplicas):
		// An empty ring (every node left) cannot serve: like a quorum of 0.
		return &quorumFailure{Op: "request", Need: 1, Unavailable: true, Failures: map[string]string{}}
	}
	return err
}

// clusterAdmin adapts gossip, the ring and the engine to adminBackend.
type clusterAdmin struct {
	self   string
	gossip *gossip.Gossip
	ring   *atomic.Pointer[ring.Ring]
	place  *atomic.Pointer[ring.Transition]
	engine *storage.Engine
	puller *replica.Puller
	coord  *replica.Coordinator
	// dropped counts the partitions cleanup dropped.
	dropped *atomic.Int64
	// rpc asks the other nodes for their statistics (stats_rpc.go).
	rpc replica.Transport
	log *slog.Logger
	// aae is the anti-entropy driver (nil: off); hints the hint queue
	// (nil: none); collected what tombstone collection did.
	aae       *replica.AntiEntropy
	hints     *hints.Queue
	collected *collected
}

var _ adminBackend = (*clusterAdmin)(nil)

// Members lists every node gossip knows, sorted by name.
func (a *clusterAdmin) Members() []client.Member {
	ms := a.gossip.Members()
	out := make([]client.Member, len(ms))
	for i, m := range ms {
		out[i] = client.Member{
			Name: m.Name, Gossip: m.Addr,
			HTTP: m.Meta.HTTP, RESP: m.Meta.RESP, RPC: m.Meta.RPC, Zone: m.Zone,
			Liveness: m.Liveness.String(), Status: a.status(m),
		}
		if a.hints != nil {
			p := a.hints.PendingFor(m.Name)
			out[i].PendingHints, out[i].PendingHintBytes = int64(p.Hints), p.Bytes
		}
	}
	return out
}

// status is m's ring status as users see it: a node that wants to be in
// the ring but is not in the serving ring yet is joining.
func (a *clusterAdmin) status(m gossip.Member) string {
	if m.Status == gossip.StatusJoined {
		if t := a.place.Load(); t != nil && !slices.Contains(t.Plan().Members, m.Name) {
			return "joining"
		}
	}
	return string(m.Status)
}

// LocalStats is what this node's engine holds, the plan it follows and
// its transfer progress.
func (a *clusterAdmin) LocalStats() client.NodeStats {
	st := a.engine.Stats()
	out := client.NodeStats{Node: a.self, Keys: st.Keys, Bytes: st.Bytes, DroppedPartitions: a.dropped.Load()}
	if t := a.place.Load(); t != nil {
		p := t.Plan()
		out.Plan = &client.Plan{Epoch: p.Epoch, Version: p.Version, Members: p.Members, Target: p.Target}
	}
	if a.puller != nil {
		ps := a.puller.Stats()
		out.Transfer = &client.Transfer{Epoch: ps.Epoch, Pending: ps.Pending, InFlight: ps.InFlight, Done: ps.Done,
			Keys: ps.Keys, Bytes: ps.Bytes, NewBytes: ps.NewBytes, BytesLeft: ps.BytesLeft, RateBytes: ps.Rate, Failures: ps.Failures}
		if a.coord != nil {
			cs := a.coord.Stats()
			out.Transfer.KeysSent, out.Transfer.BytesSent = int64(cs.TransferKeysServed), int64(cs.TransferBytesServed)
		}
	}
	if a.aae != nil {
		s := a.aae.Stats()
		out.AAE = &client.AAETotals{Exchanges: s.Exchanges, ExchangeFailures: s.ExchangeFailures,
			KeysRepaired: s.KeysRepaired, BytesRepaired: s.BytesRepaired,
			Partitions: s.Partitions, PartitionsSynced: s.PartitionsSynced, PartitionsInSync: s.PartitionsInSync,
			LastFullPass: timeString(s.LastFullPass)}
		if a.collected != nil {
			out.AAE.TombstonesCollected = a.collected.tombstones.Load()
			out.AAE.ContextsPruned = a.collected.pruned.Load()
		}
	}
	if a.hints != nil {
		hs := a.hints.Stats()
		out.Hints = &client.HintTotals{Pending: hs.PendingHints, Stored: hs.Stored, Delivered: hs.Delivered, DroppedExpired: hs.DroppedExpired}
		if a.coord != nil {
			out.Hints.KeptByCoordinator = a.coord.Stats().HintsKept
		}
	}
	return out
}

// AAE reports this node's anti-entropy state per partition it replicates;
// nil when anti-entropy is off.
func (a *clusterAdmin) AAE() []client.AAEPartition {
	if a.aae == nil {
		return nil
	}
	st := a.aae.Status()
	out := make([]client.AAEPartition, len(st))
	for i, p := range st {
		out[i] = client.AAEPartition{Partition: p.Partition, Replicas: p.Replicas,
			LastFull: timeString(p.LastFull), LastExchange: timeString(p.LastExchange), Synced: timeString(p.Synced),
			KeysRepaired: p.KeysRepaired, BytesRepaired: p.BytesRepaired, InSync: p.InSync, LastError: p.LastError}
	}
	return out
}

// timeString is t in RFC 3339 with milliseconds, or "" for the zero time.
func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// SetTransferRate sets the puller's rate limit.
func (a *clusterAdmin) SetTransferRate(mb float64) {
	a.puller.SetRate(mb * bytesPerMB)
	a.log.Info("transfer rate changed", "mb_per_s", mb)
}

// Ring inspects the current ring, and the plan's target during a change.
func (a *clusterAdmin) Ring(ctx context.Context) client.Ring {
	r := a.ring.Load()
	t := a.place.Load()
	names := r.Members()
	if t != nil {
		names = append(names, t.Target().Members()...)
	}
	var plan *ring.Plan
	if t != nil {
		p := t.Plan()
		plan = &p
	}
	return ringBody(r, plan, a.gatherStats(ctx, names))
}

// Placement is key's preference list on the current ring.
func (a *clusterAdmin) Placement(key []byte) client.KeyPlacement {
	return placementBody(a.ring.Load().Preference(key))
}

// Partitions is every partition's replicas on the current ring.
func (a *clusterAdmin) Partitions() client.Partitions {
	return partitionsBody(a.ring.Load())
}

// WhatIf estimates what adding or removing node would move on the current
// ring.
func (a *clusterAdmin) WhatIf(op, node, zone string) (client.WhatIf, error) {
	r := a.ring.Load()
	var w ring.WhatIf
	var err error
	switch op {
	case "add":
		if r.Zoned() && zone == "" {
			// A node without a zone would count as a zone of its own,
			// which no real join of a zoned node looks like.
			return client.WhatIf{}, fmt.Errorf("%w: the ring's nodes have zones: give the added node's zone (zone=Z; ringkv ring --what-if add NAME --zone Z)", errBadRequest)
		}
		w, err = r.WhatIfAddZone(node, zone)
	case "remove":
		w, err = r.WhatIfRemove(node)
		if errors.Is(err, ring.ErrUnknownNode) {
			return client.WhatIf{}, fmt.Errorf("%w: %w", errNotFound, err)
		}
	default:
		err = fmt.Errorf("what-if %q: want add or remove", op)
	}
	if err != nil {
		return client.WhatIf{}, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	w.EstimateBytes(a.partitionBytes(r))
	return whatIfBody(w), nil
}

// partitionBytes estimates one replica's bytes per partition for what-if.
// Only this node's partitions are known exactly; for the others it uses the
// mean of the local ones, which is what a balanced ring predicts.
func (a *clusterAdmin) partitionBytes(r *ring.Ring) func(int) int64 {
	ps := a.engine.PartitionStats()
	var sum, held int64
	for p, st := range ps {
		if r.IsReplica(p, a.self) {
			sum += st.Bytes
			held++
		}
	}
	mean := int64(0)
	if held > 0 {
		mean = sum / held
	}
	return func(p int) int64 {
		if p < len(ps) && r.IsReplica(p, a.self) {
			return ps[p].Bytes
		}
		return mean
	}
}

// gatherStats asks every alive ring member for its totals over the
// internal RPC, in parallel, each bounded by statsTimeout; a node that
// does not answer (down, or too old to know the call) is left out
// (Inspect then reports has_stats false for it).
func (a *clusterAdmin) gatherStats(ctx context.Context, members []string) map[string]client.NodeStats {
	out := map[string]client.NodeStats{a.self: a.LocalStats()}
	var mu sync.Mutex // guards out
	var wg sync.WaitGroup
	for _, m := range members {
		if m == a.self || !a.gossip.Alive(m) {
			continue
		}
		wg.Go(func() {
			st, err := a.remoteStats(ctx, m)
			if err != nil {
				a.log.Debug("node stats unavailable", "peer", m, "err", err)
				return
			}
			mu.Lock()
			out[m] = st
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// Leave marks this node leaving: the claimant moves its partitions to
// their new replicas, and the node leaves the ring and stops once they
// hold them (cleanup.go).
func (a *clusterAdmin) Leave(ctx context.Context) error {
	for name, e := range a.gossip.Ring() {
		if name != a.self && e.Status == gossip.StatusJoined {
			return a.gossip.StartLeave(ctx)
		}
	}
	return fmt.Errorf("%w: %s is the last node of the ring; there is no one to hand its data to", errBadRequest, a.self)
}

// Remove takes another node out of the ring.
func (a *clusterAdmin) Remove(ctx context.Context, name string) error {
	err := a.gossip.Remove(ctx, name)
	switch {
	case errors.Is(err, gossip.ErrUnknownNode):
		return fmt.Errorf("%w: %w", errNotFound, err)
	case errors.Is(err, gossip.ErrRemoveSelf), errors.Is(err, gossip.ErrBadName):
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return err
}
