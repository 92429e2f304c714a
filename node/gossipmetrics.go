package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringkv/ringkv/gossip"
)

// metricGossipRefusedStreams counts gossip TCP streams the node closed, by
// reason: too_long (more than the stream size limit), too_many (the bound
// on streams open at once was reached).
const metricGossipRefusedStreams = "ringkv_gossip_refused_streams_total"

// metricGossipWarnings counts memberlist's warning and error lines, most
// of them caused by bytes from outside, by outcome: logged, or suppressed
// (a line of the same reason was logged less than 10 s before).
const metricGossipWarnings = "ringkv_gossip_warnings_total"

// registerGossip exports gossip's counters, read at scrape time; its
// recovered panics as metricPanics{listener="gossip"}. Register once,
// before serving.
func (m *metrics) registerGossip(stats func() gossip.Stats) {
	m.registerRecovered("gossip", func() uint64 { return stats().RecoveredPanics })
	const help = "Gossip TCP streams the node closed, by reason: too_long (a peer sent more than the stream size limit), too_many (the bound on streams open at once was reached, the stream was closed unread)."
	refused := func(reason string, f func(gossip.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        metricGossipRefusedStreams,
			Help:        help,
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(f(stats())) })
	}
	m.reg.MustRegister(
		refused("too_long", func(s gossip.Stats) uint64 { return s.RefusedStreams }),
		refused("too_many", func(s gossip.Stats) uint64 { return s.BusyStreams }),
	)
	const whelp = "memberlist warning and error lines (undecodable or undecryptable packets, failed probes), by outcome: logged, or suppressed because a line of the same reason was logged less than 10 s before."
	warnings := func(outcome string, f func(gossip.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        metricGossipWarnings,
			Help:        whelp,
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(f(stats())) })
	}
	m.reg.MustRegister(
		warnings("logged", func(s gossip.Stats) uint64 { return s.LogWarnings - s.LogSuppressed }),
		warnings("suppressed", func(s gossip.Stats) uint64 { return s.LogSuppressed }),
	)
}
