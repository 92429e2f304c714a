package chaos

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func TestNodeYAML(t *testing.T) {
	nodes := []*node{
		{name: "n1", ip: nodeIP(0), ports: fixedPorts},
		{name: "n2", ip: nodeIP(1), ports: fixedPorts},
		{name: "n3", ip: nodeIP(2), ports: fixedPorts},
	}
	extra := map[string]any{
		"storage": map[string]any{"fsync": "interval"},
		"aae":     map[string]any{"interval": "5s"},
		"seeds":   []string{"127.0.0.9:1"},
	}
	data, err := nodeYAML(nodes[1], nodes, 3, false, extra)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"node":      map[string]any{"name": "n2"},
		"listen":    map[string]any{"http": "127.0.0.3:8080", "resp": "127.0.0.3:6379", "rpc": "127.0.0.3:7000", "gossip": "127.0.0.3:7946"},
		"seeds":     []any{"127.0.0.9:1"},
		"bootstrap": false,
		"cluster":   map[string]any{"replication": 3, "partitions": chaosPartitions},
		"gossip":    map[string]any{"profile": "local"},
		"aae":       map[string]any{"interval": "5s"},
		"hints":     map[string]any{"retry_interval": chaosHintsRetry},
		"storage":   map[string]any{"fsync": "interval"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
	// Without extra the seeds are every other node's gossip address.
	data, err = nodeYAML(nodes[0], nodes, 3, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{"127.0.0.3:7946", "127.0.0.4:7946"}, got["seeds"]); d != "" || got["bootstrap"] != true {
		t.Errorf("n1 seeds (-want +got):\n%s bootstrap %v", d, got["bootstrap"])
	}
	// extra is not changed by a merge.
	if d := cmp.Diff(map[string]any{"fsync": "interval"}, extra["storage"]); d != "" {
		t.Errorf("extra changed: %s", d)
	}
}

func TestNodeIP(t *testing.T) {
	if nodeIP(0) != "127.0.0.2" || nodeIP(197) != "127.0.0.199" {
		t.Errorf("nodeIP(0) = %s, nodeIP(197) = %s", nodeIP(0), nodeIP(197))
	}
}
