package node

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/storage"
)

// Anti-entropy wiring: the storage engine keeps a hash tree per partition
// (storage.Engine.TreeHashes, LeafKeys); the coordinator serves peers'
// exchanges from it; replica.AntiEntropy compares this node's partitions
// with their other replicas every aae.interval and repairs what differs.
// When a partition has been seen in sync on every replica, the engine
// collects the tombstones and prunes the contexts that sync made safe to
// drop (storage.Engine.Collect).

// The tree's shape is protocol between peers; storage builds it and
// replica compares it, so they must agree. Each line fails to compile
// when they differ.
var (
	_ [storage.TreeLevels - replica.TreeLevels]struct{} = [replica.TreeLevels - storage.TreeLevels]struct{}{}
	_ [storage.TreeFanout - replica.TreeFanout]struct{} = [replica.TreeFanout - storage.TreeFanout]struct{}{}
)

// Anti-entropy metric names.
const (
	metricAAEExchanges   = "ringkv_aae_exchanges_total"
	metricAAEFailures    = "ringkv_aae_exchange_failures_total"
	metricAAEKeys        = "ringkv_aae_keys_repaired_total"
	metricAAEBytes       = "ringkv_aae_bytes_repaired_total"
	metricAAESynced      = "ringkv_aae_partitions_synced"
	metricAAELastPass    = "ringkv_aae_last_full_pass_timestamp_seconds"
	metricTombstonesGC   = "ringkv_tombstones_collected_total"
	metricContextsPruned = "ringkv_contexts_pruned_total"
)

// engineTree is the storage engine as replica.Tree.
type engineTree struct{ e *storage.Engine }

var (
	_ replica.Tree      = engineTree{}
	_ replica.TreePager = engineTree{}
)

// TreeHashes implements replica.Tree.
func (t engineTree) TreeHashes(partition, level int, nodes []uint32) ([]uint64, error) {
	return t.e.TreeHashes(partition, level, nodes)
}

// LeafKeys implements replica.Tree.
func (t engineTree) LeafKeys(partition int, leaves []uint32, maxKeys int) ([]replica.KeyDigest, bool, error) {
	ks, more, err := t.e.LeafKeys(partition, leaves, maxKeys)
	if err != nil {
		return nil, false, err
	}
	return keyDigests(ks), more, nil
}

// LeafKeysAfter implements replica.TreePager.
func (t engineTree) LeafKeysAfter(partition int, leaves []uint32, after []byte, maxKeys int) ([]replica.KeyDigest, bool, error) {
	ks, more, err := t.e.LeafKeysAfter(partition, leaves, after, maxKeys)
	if err != nil {
		return nil, false, err
	}
	return keyDigests(ks), more, nil
}

// keyDigests converts storage's digests to replica's.
func keyDigests(ks []storage.KeyDigest) []replica.KeyDigest {
	out := make([]replica.KeyDigest, len(ks))
	for i, k := range ks {
		out[i] = replica.KeyDigest{Key: k.Key, Digest: k.Digest, Tombstone: k.Tombstone}
	}
	return out
}

// MarkSynced implements replica.Tree.
func (t engineTree) MarkSynced(partition int, at time.Time) { t.e.MarkSynced(partition, at) }

// collected counts what Collect did after syncs, for metrics and stats.
type collected struct {
	tombstones, pruned atomic.Int64
}

// newAntiEntropy builds the anti-entropy driver (nil when aae.interval is
// 0); Run starts it with the other loops.
func (n *Node) newAntiEntropy(logger *slog.Logger) error {
	if n.cfg.AAE.Interval == 0 {
		n.log.Warn("anti-entropy is off (aae.interval 0s): replicas converge only through hints and read repair, and no tombstone is ever collected")
		return nil
	}
	cfg := replica.DefaultAEConfig()
	cfg.Self = n.cfg.Node.Name
	cfg.Partitions = n.cfg.Cluster.Partitions
	cfg.Placement = n.placement
	cfg.Store = limitedStore{n.engine}
	cfg.Tree = engineTree{n.engine}
	cfg.Transport = n.rpc
	cfg.Liveness = n.gossip
	cfg.Interval = n.cfg.AAE.Interval
	cfg.RateBytes = n.cfg.AAE.RateMB * bytesPerMB
	cfg.CallTimeout = n.cfg.Quorum.Timeout + statusTimeout
	cfg.Logger = logger.With("node", n.cfg.Node.Name)
	cfg.OnSynced = n.collect
	ae, err := replica.NewAntiEntropy(cfg)
	if err != nil {
		return err
	}
	n.aae = ae
	n.registerAAEMetrics()
	return nil
}

// collect drops the tombstones and prunes the contexts of partition that
// its sync made safe to forget. It runs on the anti-entropy goroutine under
// its ctx, which ends before the engine closes.
func (n *Node) collect(ctx context.Context, partition int) {
	st, err := n.engine.Collect(ctx, partition)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		n.log.Warn("tombstone collection failed", "partition", partition, "err", err)
		return
	}
	n.collected.tombstones.Add(int64(st.Dropped))
	n.collected.pruned.Add(int64(st.Pruned))
	if st.Dropped > 0 || st.Pruned > 0 {
		n.log.Debug("partition collected", "partition", partition, "tombstones", st.Dropped, "contexts_pruned", st.Pruned)
	}
}

// registerAAEMetrics exports the driver's counters, read at scrape time.
func (n *Node) registerAAEMetrics() {
	ae := n.aae
	counter := func(name, help string, f func(replica.AEStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(ae.Stats()) })
	}
	n.metrics.reg.MustRegister(
		counter(metricAAEExchanges, "Anti-entropy exchanges with another replica of a partition, failed ones included.", func(s replica.AEStats) float64 { return float64(s.Exchanges) }),
		counter(metricAAEFailures, "Anti-entropy exchanges that failed (retried next pass).", func(s replica.AEStats) float64 { return float64(s.ExchangeFailures) }),
		counter(metricAAEKeys, "Keys anti-entropy repaired, here or on a peer.", func(s replica.AEStats) float64 { return float64(s.KeysRepaired) }),
		counter(metricAAEBytes, "Bytes of sibling sets anti-entropy repaired.", func(s replica.AEStats) float64 { return float64(s.BytesRepaired) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricAAESynced, Help: "Partitions of this node seen in sync on every replica at least once since it started."},
			func() float64 { return float64(ae.Stats().PartitionsSynced) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricAAELastPass, Help: "Unix time of the last pass in which every exchange of every partition completed (0: none yet)."},
			func() float64 {
				if t := ae.Stats().LastFullPass; !t.IsZero() {
					return float64(t.UnixNano()) / 1e9
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: metricTombstonesGC, Help: "Tombstone-only keys collected after the grace and a full sync."},
			func() float64 { return float64(n.collected.tombstones.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: metricContextsPruned, Help: "Keys whose causal contexts were pruned of actors no version needs."},
			func() float64 { return float64(n.collected.pruned.Load()) }),
	)
}
