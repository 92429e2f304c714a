package node

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/internal/testkit"
)

// TestGossipRefusedStreamsMetric: gossip's stream refusals are exported as
// ringkv_gossip_refused_streams_total{reason="too_long"|"too_many"}.
func TestGossipRefusedStreamsMetric(t *testing.T) {
	m := newMetrics(metricSources{})
	m.registerGossip(func() gossip.Stats { return gossip.Stats{RecoveredPanics: 1, RefusedStreams: 2, BusyStreams: 5} })
	for reason, want := range map[string]float64{"too_long": 2, "too_many": 5} {
		if got := counterValue(t, m, metricGossipRefusedStreams, "reason", reason); got != want {
			t.Errorf("%s{reason=%q} = %v, want %v", metricGossipRefusedStreams, reason, got, want)
		}
	}
	if got := counterValue(t, m, metricPanics, "listener", "gossip"); got != 1 {
		t.Errorf("%s{listener=\"gossip\"} = %v, want 1", metricPanics, got)
	}
}

// TestGossipStreamTooLongCounted: a running node that cuts an oversized
// stream on its gossip port counts it under reason too_long.
func TestGossipStreamTooLongCounted(t *testing.T) {
	n := startNode(t, testConfig(t, "n1"))
	if !hasSeries(t, n.metrics, metricGossipRefusedStreams, "reason", "too_many") || counterValue(t, n.metrics, metricGossipRefusedStreams, "reason", "too_many") != 0 {
		t.Fatalf("%s{reason=\"too_many\"} is not exported at 0 before any stream", metricGossipRefusedStreams)
	}
	c, err := net.DialTimeout("tcp", n.Addrs().Gossip, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// A push-pull whose one node's Meta declares 1 GiB, then 3 MiB of it:
	// the node cuts the stream at its 2 MiB limit, so the write fails.
	hdr := []byte{6, 0x83, 0xa5}
	hdr = append(hdr, "Nodes"...)
	hdr = append(hdr, 0x01, 0xac)
	hdr = append(hdr, "UserStateLen"...)
	hdr = append(hdr, 0x00, 0xa4)
	hdr = append(hdr, "Join"...)
	hdr = append(hdr, 0xc2, 0x82, 0xa4)
	hdr = append(hdr, "Name"...)
	hdr = append(hdr, 0xa5)
	hdr = append(hdr, "rogue"...)
	hdr = append(hdr, 0xa4)
	hdr = append(hdr, "Meta"...)
	hdr = append(hdr, 0xc6, 0x40, 0x00, 0x00, 0x00)
	_, _ = c.Write(append(hdr, bytes.Repeat([]byte{'x'}, 3<<20)...))
	testkit.Eventually(t, 10*time.Second, "the oversized gossip stream counted", func() bool {
		return counterValue(t, n.metrics, metricGossipRefusedStreams, "reason", "too_long") == 1
	})
}
