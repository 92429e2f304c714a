package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/replica"
)

// Partition transfer wiring: the puller copies the partitions this node is
// a new replica of from their current replicas (replica.Puller), paced by
// transfer.rate_mb; the coordinator serves other nodes' pulls from the
// storage engine; the claimant and cleanup loops move the plan forward and
// drop what this node no longer replicates.

// Transfer metric names.
const (
	metricTransferParts     = "ringkv_transfer_partitions"
	metricTransferKeys      = "ringkv_transfer_keys_total"
	metricTransferBytes     = "ringkv_transfer_bytes_total"
	metricTransferNew       = "ringkv_transfer_new_bytes_total"
	metricTransferLeft      = "ringkv_transfer_bytes_left"
	metricTransferSentKeys  = "ringkv_transfer_sent_keys_total"
	metricTransferSentBytes = "ringkv_transfer_sent_bytes_total"
	metricTransferRate      = "ringkv_transfer_rate_bytes"
	metricTransferFail      = "ringkv_transfer_failures_total"
	metricPlanEpoch         = "ringkv_plan_epoch"
	metricPlanStable        = "ringkv_plan_stable"
	metricStaleRefused      = "ringkv_stale_plan_refused_total"
	metricStaleForwards     = "ringkv_stale_plan_forwards_total"
	metricDroppedParts      = "ringkv_partitions_dropped_total"
	metricDroppedKeys       = "ringkv_partition_keys_dropped_total"
	bytesPerMB              = 1e6
	minTransferBatchBytes   = 64 << 10
)

// maxTransferRateMB bounds transfer.rate_mb (and the admin route): far above
// any disk, far below float overflow in the limiter.
const maxTransferRateMB = 100000

// transferBatchBytes is the byte budget of one transfer batch: a quarter of
// the RPC frame limit, so a batch with its encoding overhead always fits.
func transferBatchBytes(maxFrame int) int64 {
	return max(int64(maxFrame)/4, minTransferBatchBytes)
}

// newPuller builds the puller; Run starts it. fsys nil is the operating
// system's filesystem.
func (n *Node) newPuller(logger *slog.Logger, fsys vfs.FS) error {
	p, err := replica.NewPuller(replica.PullerConfig{
		Self:        n.cfg.Node.Name,
		Placement:   n.transferPlacement,
		Store:       limitedStore{n.engine},
		Transport:   n.rpc,
		Alive:       n.gossip.Alive,
		Usable:      n.usableSource,
		Dir:         n.cfg.DataDir(),
		FS:          fsys,
		MaxInFlight: n.cfg.Transfer.MaxInFlight,
		RateBytes:   n.cfg.Transfer.RateMB * bytesPerMB,
		Timeout:     n.cfg.Quorum.Timeout + statusTimeout,
		Logger:      logger.With("node", n.cfg.Node.Name),
	})
	if err != nil {
		return fmt.Errorf("node.data_dir %s: transfers: %w", n.cfg.DataDir(), err)
	}
	n.puller = p
	n.registerTransferMetrics()
	return nil
}

// usableSource reports whether node may be asked for a partition: not a
// node an operator removed (it is gone for good).
func (n *Node) usableSource(node string) bool {
	return n.gossip.Ring()[node].Status != gossip.StatusRemoved
}

// partitionStat is this node's totals for one partition, for the sources'
// answers to pulls (the puller's progress estimate).
func (n *Node) partitionStat(part int) (keys, bytes int64) {
	ps := n.engine.PartitionStats()
	if part < 0 || part >= len(ps) {
		return 0, 0
	}
	return ps[part].Keys, ps[part].Bytes
}

// startLoops runs the puller, the claimant, the cleanup loop and
// anti-entropy under ctx;
// the function it returns stops them and waits (it may be called twice).
func (n *Node) startLoops(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := n.puller.Run(ctx); err != nil {
			n.log.Error("transfer puller stopped", "err", err)
		}
	})
	wg.Go(func() { every(ctx, n.claimWake, n.claimStep) })
	wg.Go(func() { every(ctx, n.cleanWake, n.cleanStep) })
	if n.aae != nil {
		wg.Go(func() {
			if err := n.aae.Run(ctx); err != nil && ctx.Err() == nil {
				n.log.Error("anti-entropy stopped", "err", err)
			}
		})
	}
	n.wakeLoops()
	return func() { cancel(); wg.Wait() }
}

// registerTransferMetrics exports the puller's progress, the plan and the
// cleanup counters, read at scrape time.
func (n *Node) registerTransferMetrics() {
	p := n.puller
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	parts := func(state string, f func(replica.PullStats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricTransferParts,
			Help:        "Partitions of the current plan this node is a new replica of, by state (pending, inflight, done).",
			ConstLabels: prometheus.Labels{"state": state}}, func() float64 { return float64(f(p.Stats())) })
	}
	n.metrics.reg.MustRegister(
		parts("pending", func(s replica.PullStats) int { return s.Pending }),
		parts("inflight", func(s replica.PullStats) int { return s.InFlight }),
		parts("done", func(s replica.PullStats) int { return s.Done }),
		counter(metricTransferKeys, "Keys received in partition transfers.", func() float64 { return float64(p.Stats().Keys) }),
		counter(metricTransferBytes, "Bytes of sibling sets received in partition transfers.", func() float64 { return float64(p.Stats().Bytes) }),
		counter(metricTransferNew, "Bytes of received sibling sets that changed this node's store (one copy of what moved).", func() float64 { return float64(p.Stats().NewBytes) }),
		counter(metricTransferSentKeys, "Keys this node sent to other nodes' pulls as a source.", func() float64 { return float64(n.coord.Stats().TransferKeysServed) }),
		counter(metricTransferSentBytes, "Bytes of sibling sets this node sent to other nodes' pulls as a source.", func() float64 { return float64(n.coord.Stats().TransferBytesServed) }),
		gauge(metricTransferLeft, "Estimated bytes still to receive for the current plan.", func() float64 { return float64(p.Stats().BytesLeft) }),
		gauge(metricTransferRate, "Transfer rate limit in bytes per second (0: none).", func() float64 { return p.Stats().Rate }),
		counter(metricTransferFail, "Partition pulls that failed or were refused and will be retried.", func() float64 { return float64(p.Stats().Failures) }),
		gauge(metricPlanEpoch, "Epoch of the plan this node follows.", func() float64 { return float64(n.place.Load().Epoch()) }),
		gauge(metricPlanStable, "1 when no membership change is in progress, else 0.", func() float64 {
			if n.place.Load().Plan().Stable() {
				return 1
			}
			return 0
		}),
		counter(metricStaleRefused, "Stores and reads refused because this node is no replica of the key in a plan at least as new as the sender's.",
			func() float64 { return float64(n.coord.Stats().StaleRefused) }),
		counter(metricStaleForwards, "Stores from senders with an older plan that this node passed on to the new replicas of its own plan.",
			func() float64 { return float64(n.coord.Stats().StaleForwards) }),
		counter(metricDroppedParts, "Partitions dropped after this node stopped replicating them.", func() float64 { return float64(n.droppedParts.Load()) }),
		counter(metricDroppedKeys, "Keys dropped with those partitions.", func() float64 { return float64(n.droppedKeys.Load()) }),
	)
}
