package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/replica"
)

// Hinted handoff wiring: the hint queue lives in <data_dir>/hints, keeps
// hints the coordinator is sent as a stand-in (replica.Config.Hints),
// delivers them through the coordinator's Handoff RPC, learns liveness from
// gossip and re-routes the hints of nodes removed from the ring.

// Hint metric names.
const (
	metricHintsStored    = "ringkv_hints_stored_total"
	metricHintsDelivered = "ringkv_hints_delivered_total"
	metricHintsDropped   = "ringkv_hints_dropped_total"
	metricHintsFailures  = "ringkv_hint_delivery_failures_total"
	metricHintsRerouted  = "ringkv_hints_rerouted_total"
	metricHintsPending   = "ringkv_hints_pending"
	metricHintsPendingB  = "ringkv_hints_pending_bytes"
	metricHintsLag       = "ringkv_hint_delivery_lag_seconds_total"
	metricHintsLastLag   = "ringkv_hint_delivery_last_lag_seconds"
)

// openHints opens the hint queue. Delivery starts with startHints in Run,
// once the coordinator exists and the RPC serves. fsys nil is the
// operating system's filesystem.
func (n *Node) openHints(logger *slog.Logger, fsys vfs.DirFS) error {
	hcfg := n.cfg.hintsConfig()
	hcfg.FS = fsys
	hcfg.Deliverer = hints.DelivererFunc(n.deliverHints)
	hcfg.Replicas = func(key []byte) []string {
		r := n.ring.Load()
		if r == nil {
			return nil
		}
		return r.Replicas(r.Partition(key))
	}
	hcfg.Logger = logger.With("node", n.cfg.Node.Name)
	q, err := hints.Open(hcfg)
	if err != nil {
		return fmt.Errorf("node.data_dir %s: %w", hcfg.Dir, err)
	}
	n.hints = q
	n.hintsRing = make(chan struct{}, 1)
	n.registerHintMetrics()
	return nil
}

// deliverHints sends a batch to its target through the coordinator. A
// batch larger than the RPC frame limit can never be sent as it is, so
// that failure is reported as hints.ErrTooLarge: the queue splits the
// batch and drops a lone hint that still does not fit, instead of
// retrying it forever ahead of every other hint for the target.
func (n *Node) deliverHints(ctx context.Context, target string, batch []hints.Hint) error {
	entries := make([]replica.Entry, len(batch))
	for i, h := range batch {
		entries[i] = replica.Entry{Key: h.Key, Siblings: h.Siblings}
	}
	err := n.coord.Handoff(ctx, target, entries)
	if errors.Is(err, replica.ErrFrameTooLarge) {
		return fmt.Errorf("%w: %w", hints.ErrTooLarge, err)
	}
	return err
}

// onLiveness feeds gossip's liveness changes to the hint queue: a node
// that is not alive starts its hint window, one back alive gets its hints.
func (n *Node) onLiveness(name string, l gossip.Liveness) {
	n.hints.SetAlive(name, l == gossip.Alive)
}

// ringChangedHints asks the re-route loop to look at the new ring. It does
// not block gossip's event goroutine.
func (n *Node) ringChangedHints() {
	if n.hintsRing != nil {
		select {
		case n.hintsRing <- struct{}{}:
		default:
		}
	}
}

// startHints starts delivery and the re-route loop under ctx. The loop
// hands every ring snapshot to the queue (RingSnapshot), which re-routes
// the hints of nodes that were in one snapshot and are not in a later one,
// and keeps re-routing hints that arrive for them afterwards on its retry
// timer. A first ring view may be partial, so it never counts as a
// removal.
func (n *Node) startHints(ctx context.Context) error {
	if err := n.hints.Start(ctx); err != nil {
		return err
	}
	ctx, n.hintsStop = context.WithCancel(ctx)
	n.hintsDone = make(chan struct{})
	go func() {
		defer close(n.hintsDone)
		snapshot := func() {
			t := n.place.Load()
			if t == nil || !t.Plan().Known() {
				return
			}
			// A node the data is moving to is a member too: hints kept
			// for it while it was down are its to receive.
			members := append(t.Current().Members(), t.Target().Members()...)
			if err := n.hints.RingSnapshot(ctx, members); err != nil && ctx.Err() == nil {
				n.log.Warn("re-routing hints of removed nodes failed", "err", err)
			}
		}
		snapshot()
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.hintsRing:
			}
			snapshot()
		}
	}()
	return nil
}

// stopHints stops the re-route loop and closes the queue; pending hints
// stay on disk for the next start.
func (n *Node) stopHints() error {
	if n.hintsStop != nil {
		n.hintsStop()
		<-n.hintsDone
	}
	return n.hints.Close()
}

// registerHintMetrics exports the queue's counters, read at scrape time.
func (n *Node) registerHintMetrics() {
	q := n.hints
	counter := func(name, help string, f func(hints.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(q.Stats()) })
	}
	n.metrics.reg.MustRegister(
		counter(metricHintsStored, "Hints this node stored as a stand-in (one per write).", func(s hints.Stats) float64 { return float64(s.Stored) }),
		counter(metricHintsDelivered, "Pending keys delivered to and acknowledged by their target.", func(s hints.Stats) float64 { return float64(s.Delivered) }),
		counter(metricHintsFailures, "Hint batches a target did not acknowledge.", func(s hints.Stats) float64 { return float64(s.DeliveryFailures) }),
		counter(metricHintsRerouted, "Keys moved from a removed node's hints to the key's current replicas.", func(s hints.Stats) float64 { return float64(s.Rerouted) }),
		counter(metricHintsLag, "Sum over delivered keys of the time from first hint to acknowledgement.", func(s hints.Stats) float64 { return s.DeliveryLagTotal.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricHintsLastLag, Help: "Delivery lag of the latest delivered key."},
			func() float64 { return q.Stats().LastDeliveryLag.Seconds() }),
		&hintCollector{q: q},
	)
}

// hintCollector exports per-target pending hints and drops by reason.
type hintCollector struct{ q *hints.Queue }

var (
	descPending  = prometheus.NewDesc(metricHintsPending, "Hints pending for a target node.", []string{"target"}, nil)
	descPendingB = prometheus.NewDesc(metricHintsPendingB, "Encoded bytes of hints pending for a target node.", []string{"target"}, nil)
	descDropped  = prometheus.NewDesc(metricHintsDropped, "Hints dropped, by reason: not stored (window, cap), no replica left after a removal (removed), too large for an RPC frame (too_large), or older than the tombstone grace (expired).", []string{"reason"}, nil)
)

// Describe implements prometheus.Collector.
func (c *hintCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descPendingB
	ch <- descDropped
}

// Collect implements prometheus.Collector.
func (c *hintCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.q.Pending() {
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(p.Hints), p.Target)
		ch <- prometheus.MustNewConstMetric(descPendingB, prometheus.GaugeValue, float64(p.Bytes), p.Target)
	}
	s := c.q.Stats()
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.DroppedWindow), "window")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.DroppedCap), "cap")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.DroppedExpired), "expired")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.DroppedRemoved), "removed")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.DroppedTooLarge), "too_large")
}
