package ring

import (
	"cmp"
	"fmt"
)

// zoneWarnings explains how a zoned ring's inspection spreads replicas
// unevenly. Round 1 of the zone spread (see zones.go) puts the first node
// of every zone in every partition's replicas while there are no more
// zones than replicas, so a zone holds about N/zones replicas of each
// partition whatever its size: a zone with no more nodes than that makes
// each of its nodes a replica of every partition, and members without a
// zone form one more zone ("") of their own. The warnings are:
//   - some members have a zone and others do not;
//   - a node is a replica of every partition although the ring has more
//     members than replicas (it stores a full copy of the data);
//   - a zone holds more than ceil(N/zones) replicas of some partition
//     (the ceil rule fails because another zone has too few nodes).
func zoneWarnings(in Inspection) []string {
	var out []string
	for _, z := range in.Zones {
		if z.Zone == "" {
			out = append(out, fmt.Sprintf("%d of %d members have no zone and count as one more zone; give every member a zone", z.Nodes, len(in.Nodes)))
		}
	}
	if len(in.Nodes) > in.Replicas {
		for _, n := range in.Nodes {
			if n.Replicated == in.Partitions {
				out = append(out, fmt.Sprintf("node %s (zone %s) is a replica of every partition, a full copy of the data: its zone has too few nodes for its share of each partition's %d replicas; add nodes to zone %[2]s",
					n.Node, zoneName(n.Zone), in.Replicas))
			}
		}
	}
	for _, z := range in.Zones {
		if z.OverLimit > 0 {
			out = append(out, fmt.Sprintf("zone %s holds more than %d replica(s) of %d partition(s) (up to %d); add nodes to the other zones",
				zoneName(z.Zone), in.ZoneLimit, z.OverLimit, z.MaxReplicas))
		}
	}
	return out
}

// zoneName prints the unnamed zone.
func zoneName(z string) string { return cmp.Or(z, "(none)") }
