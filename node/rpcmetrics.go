package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringkv/ringkv/replica"
)

// Internal RPC metric names.
const (
	metricRPCWrongPeer     = "ringkv_rpc_wrong_peer_total"
	metricRPCBufferedBytes = "ringkv_rpc_buffered_bytes"
)

// registerRPC exports the RPC transport's counters, read at scrape time;
// its recovered panics as metricPanics{listener="rpc"}.
func (m *metrics) registerRPC(t *replica.TCPTransport) {
	m.registerRecovered("rpc", func() uint64 { return t.Stats().RecoveredPanics })
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricRPCWrongPeer,
			Help: "RPC connections refused because the other end is not the node expected: a hello meant for another node (as server), or a dialed address answered by another node (as client).",
		}, func() float64 { return float64(t.Stats().WrongPeer) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricRPCBufferedBytes,
			Help: "Bytes of incoming RPC request frames being read or served, bounded by the transport's frame budget.",
		}, func() float64 { return float64(t.Stats().BufferedBytes) }),
	)
}
