package chaos

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Timings of a chaos cluster: failures are noticed, hints retried and
// replicas compared within seconds, so that a run of minutes sees many
// repairs. The partition count is kept small so that anti-entropy every
// few seconds stays cheap on a 2-core machine with five nodes.
const (
	chaosAAEInterval   = "3s"
	chaosHintsRetry    = "1s"
	chaosPartitions    = 271
	defaultNodes       = 5
	defaultReplication = 3
	// maxNodes bounds Nodes+Spare: node i listens on 127.0.0.(i+2).
	maxNodes = 200
)

// The ports every node uses on its own IP inside the network namespace.
var fixedPorts = [4]int{8080, 6379, 7000, 7946} // http, resp, rpc, gossip

// node is one configured node; the fields under Cluster.mu are noted.
type node struct {
	name    string
	ip      string
	dataDir string
	config  string // path of its YAML config
	out     *nodeOutput

	// Guarded by Cluster.mu.
	ports   [4]int   // http, resp, rpc, gossip
	proc    *process // the running process, nil when down
	ready   bool     // proc served /readyz
	frozen  bool
	started bool // it was started once: its ports are known to its peers
	left    bool // it left the ring and stopped
}

func (n *node) addr(i int) string { return net.JoinHostPort(n.ip, strconv.Itoa(n.ports[i])) }

// nodeIP is the loopback address of the i-th node (0-based) with IPs set.
func nodeIP(i int) string {
	a := netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 2)})
	return a.String()
}

// nodeYAML is n's config: its listeners, every other node's gossip
// address as a seed (start order is then irrelevant), the chaos timings,
// then extra merged over it. bootstrap is set only for the first start of
// the first node: a node that bootstraps after a wipe would start a
// cluster of its own.
func nodeYAML(n *node, all []*node, replication int, bootstrap bool, extra map[string]any) ([]byte, error) {
	var seeds []string
	for _, o := range all {
		if o != n {
			seeds = append(seeds, o.addr(3))
		}
	}
	cfg := map[string]any{
		"node": map[string]any{"name": n.name},
		"listen": map[string]any{
			"http": n.addr(0), "resp": n.addr(1), "rpc": n.addr(2), "gossip": n.addr(3),
		},
		"seeds":     seeds,
		"bootstrap": bootstrap,
		"cluster":   map[string]any{"replication": replication, "partitions": chaosPartitions},
		"gossip":    map[string]any{"profile": "local"},
		"aae":       map[string]any{"interval": chaosAAEInterval},
		"hints":     map[string]any{"retry_interval": chaosHintsRetry},
	}
	mergeConfig(cfg, extra)
	return yaml.Marshal(cfg)
}

// mergeConfig merges src into dst: nested maps key by key, anything else
// replaced. src's maps are copied, never shared.
func mergeConfig(dst, src map[string]any) {
	for k, v := range src {
		sv, sIsMap := v.(map[string]any)
		dv, dIsMap := dst[k].(map[string]any)
		switch {
		case sIsMap && dIsMap:
			mergeConfig(dv, sv)
		case sIsMap:
			m := map[string]any{}
			mergeConfig(m, sv)
			dst[k] = m
		default:
			dst[k] = v
		}
	}
}

// writeConfig writes n's config file.
func writeConfig(n *node, all []*node, replication int, bootstrap bool, extra map[string]any) error {
	data, err := nodeYAML(n, all, replication, bootstrap, extra)
	if err != nil {
		return fmt.Errorf("chaos: config of %s: %w", n.name, err)
	}
	if err := os.WriteFile(n.config, data, 0o644); err != nil {
		return fmt.Errorf("chaos: config of %s: %w", n.name, err)
	}
	return nil
}
