package node

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names exported on /metrics. They are constants so that tests and
// docs/http-api.md name the same series.
const (
	metricRequests         = "ringkv_requests_total"
	metricRequestDuration  = "ringkv_request_duration_seconds"
	metricQuorumFailures   = "ringkv_quorum_failures_total"
	metricReadRepairs      = "ringkv_read_repairs_total"
	metricReadHedges       = "ringkv_read_hedges_total"
	metricFsyncDuration    = "ringkv_wal_fsync_duration_seconds"
	metricFsyncBatch       = "ringkv_wal_fsync_batch_size"
	metricSnapshotDuration = "ringkv_snapshot_duration_seconds"
	metricSnapshotFailures = "ringkv_snapshot_failures_total"
	metricKeys             = "ringkv_keys"
	metricBytes            = "ringkv_bytes"
	metricLiveMembers      = "ringkv_live_members"
	metricRingMembers      = "ringkv_ring_members"
	metricPanics           = "ringkv_recovered_panics_total"
	metricAuthRefused      = "ringkv_auth_refused_total"
	metricRESPConnections  = "ringkv_resp_connections"
	metricRESPDropped      = "ringkv_resp_connections_dropped_total"
)

// The reasons the node closes a RESP connection itself, the reason label
// of metricRESPDropped.
const (
	respDroppedMaxClients = "max_clients"  // refused at accept: limits.resp_max_clients reached
	respDroppedIdle       = "idle_timeout" // no command within limits.resp_idle_timeout
)

// metricSources are read at scrape time, so that gauges never go stale and
// the hot paths of other packages pay nothing for them. A nil func exports 0.
type metricSources struct {
	Keys        func() int64 // keys held by the local storage engine
	Bytes       func() int64 // bytes held by the local storage engine
	LiveMembers func() int   // members gossip sees alive, self included
	RingMembers func() int   // members of the current ring
	ReadRepairs func() int64 // read repairs the coordinator has sent
	ReadHedges  func() int64 // reads that asked the replicas beyond those R needs
}

// metrics owns the node's Prometheus registry. It is not the global
// registry: two nodes in one test process must not collide.
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	quorumFailures   *prometheus.CounterVec
	fsyncDuration    prometheus.Histogram
	fsyncBatch       prometheus.Histogram
	snapshotDuration prometheus.Histogram
	snapshotFailures prometheus.Counter
	authRefused      *prometheus.CounterVec
	respDropped      *prometheus.CounterVec
	panicsHTTP       atomic.Uint64 // recovered panics, see panicked
	panicsRESP       atomic.Uint64
}

// newMetrics builds and registers every collector.
func newMetrics(src metricSources) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRequests,
			Help: "Client requests served, by protocol (http, resp), operation and status (HTTP code, or ok/error for RESP).",
		}, []string{"proto", "op", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricRequestDuration,
			Help:    "Latency of client requests, by protocol, operation and status.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"proto", "op", "status"}),
		quorumFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricQuorumFailures,
			Help: "Client reads and writes that did not reach their R or W quorum, by operation.",
		}, []string{"op"}),
		fsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricFsyncDuration,
			Help:    "Duration of WAL fsyncs (one per group-commit batch).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		fsyncBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricFsyncBatch,
			Help:    "Records made durable by one WAL fsync (group-commit batch size).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		snapshotDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricSnapshotDuration,
			Help:    "Duration of storage snapshots.",
			Buckets: prometheus.ExponentialBuckets(.01, 2, 14),
		}),
		snapshotFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricSnapshotFailures,
			Help: "Storage snapshots that failed.",
		}),
		authRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricAuthRefused,
			Help: "Client requests and commands refused by authentication, authorisation or protected mode, by api (http, resp) and reason.",
		}, []string{"api", "reason"}),
		respDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRESPDropped,
			Help: "RESP connections the node closed because of a limit, by reason (max_clients: refused at accept past limits.resp_max_clients; idle_timeout: no command within limits.resp_idle_timeout).",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(
		m.requests, m.latency, m.quorumFailures,
		m.fsyncDuration, m.fsyncBatch, m.snapshotDuration, m.snapshotFailures, m.authRefused,
		m.respDropped,
		recoveredPanics("http", m.panicsHTTP.Load),
		recoveredPanics("resp", m.panicsRESP.Load),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.reg.MustRegister(sourceCollectors(src)...)
	for _, op := range []string{"get", "put", "delete"} {
		m.quorumFailures.WithLabelValues(op) // export zeros before the first failure
	}
	for _, reason := range []string{respDroppedMaxClients, respDroppedIdle} {
		m.respDropped.WithLabelValues(reason)
	}
	for _, api := range []string{"http", "resp"} {
		for _, reason := range refusalReasons {
			m.authRefused.WithLabelValues(api, reason)
		}
	}
	return m
}

// sourceCollectors are the counters and gauges read from src when scraped;
// a nil source reads 0.
func sourceCollectors(src metricSources) []prometheus.Collector {
	i64 := func(f func() int64) func() float64 {
		return func() float64 {
			if f == nil {
				return 0
			}
			return float64(f())
		}
	}
	iInt := func(f func() int) func() float64 {
		return func() float64 {
			if f == nil {
				return 0
			}
			return float64(f())
		}
	}
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricReadRepairs,
			Help: "Read repairs this node sent as coordinator.",
		}, i64(src.ReadRepairs)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricReadHedges,
			Help: "Reads this node coordinated that asked the replicas beyond the first ones R needs (one of those failed or was slower than quorum.read_hedge).",
		}, i64(src.ReadHedges)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricKeys,
			Help: "Keys held by this node's storage engine (all partitions it stores).",
		}, i64(src.Keys)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricBytes,
			Help: "Approximate bytes held by this node's storage engine.",
		}, i64(src.Bytes)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricLiveMembers,
			Help: "Members that gossip sees alive, this node included.",
		}, iInt(src.LiveMembers)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricRingMembers,
			Help: "Members of the current ring (joined or leaving), alive or not.",
		}, iInt(src.RingMembers)),
	}
}

// observe records one client request.
func (m *metrics) observe(proto, op, status string, d time.Duration) {
	m.requests.WithLabelValues(proto, op, status).Inc()
	m.latency.WithLabelValues(proto, op, status).Observe(d.Seconds())
}

// quorumFailed counts a request that missed its quorum.
func (m *metrics) quorumFailed(op string) { m.quorumFailures.WithLabelValues(op).Inc() }

// panicked counts a panic recovered on listener (http, resp).
func (m *metrics) panicked(listener string) {
	switch listener {
	case "http":
		m.panicsHTTP.Add(1)
	case "resp":
		m.panicsRESP.Add(1)
	default:
		panic("node: no recovered-panics counter for listener " + listener)
	}
}

// registerRESPConnections exports metricRESPConnections, read from count
// (the RESP server's connections) at scrape time. Register it once.
func (m *metrics) registerRESPConnections(count func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: metricRESPConnections,
		Help: "RESP client connections being served.",
	}, func() float64 { return float64(count()) }))
}

// registerRecovered exports a count of recovered panics that another
// package keeps (rpc, gossip) as metricPanics{listener=listener}, read at
// scrape time. Register each listener once, before serving.
func (m *metrics) registerRecovered(listener string, count func() uint64) {
	m.reg.MustRegister(recoveredPanics(listener, count))
}

// recoveredPanics is the metricPanics series of one listener: the node's
// own front ends are counted in metrics (http, resp), the others read from
// their packages' stats (rpc, gossip). Every series is exported from the
// start, at 0.
func recoveredPanics(listener string, count func() uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        metricPanics,
		Help:        "Panics recovered in a request handler or connection goroutine, by listener (http, resp, rpc, gossip); each is a bug, logged at error level.",
		ConstLabels: prometheus.Labels{"listener": listener},
	}, func() float64 { return float64(count()) })
}

// onFsync is storage's OnFsync hook.
func (m *metrics) onFsync(d time.Duration, batch int) {
	m.fsyncDuration.Observe(d.Seconds())
	m.fsyncBatch.Observe(float64(batch))
}

// onSnapshot is storage's OnSnapshot hook.
func (m *metrics) onSnapshot(d time.Duration, err error) {
	if err != nil {
		m.snapshotFailures.Inc()
		return
	}
	m.snapshotDuration.Observe(d.Seconds())
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
