package ring

import (
	"slices"
	"testing"

	"github.com/buraksezer/consistent"
)

// TestReplicaSpread shows why preference lists walk the owners of the
// following partitions: the other replicas of one node's partitions, and
// the stand-ins that take its writes while it is down, are spread over most
// other nodes, so a failed node's load does not land on one or two
// neighbours. The library's GetClosestN, run on the same membership, is the
// contrast: it gives every partition of a node the same successors.
func TestReplicaSpread(t *testing.T) {
	cfg := DefaultConfig()
	members := names("node-", 10)
	r := mustNew(t, cfg, members)
	lib := libraryRing(cfg, members)
	others := len(members) - 1
	for _, x := range members {
		partners := map[string]int{}     // other replicas of partitions x owns
		standIns := map[string]int{}     // first fallback of partitions x replicates
		libPartners := map[string]bool{} // GetClosestN's successors of x's partitions
		for p := range cfg.Partitions {
			if r.Owner(p) == x {
				for _, o := range r.Replicas(p)[1:] {
					partners[o]++
				}
			}
			if r.IsReplica(p, x) {
				standIns[r.Fallbacks(p)[0]]++
			}
			if lib.GetPartitionOwner(p).String() == x {
				closest, err := lib.GetClosestNForPartition(p, cfg.ReplicationFactor)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range closest[1:] {
					libPartners[m.String()] = true
				}
			}
		}
		// Each of the others should take close to 1/9 of x's failover load.
		total, busiest := 0, 0
		for _, c := range standIns {
			total += c
			busiest = max(busiest, c)
		}
		share := float64(busiest) / float64(total)
		t.Logf("%-8s partners %d/%d, stand-ins %d/%d (busiest takes %.3f, fair %.3f), GetClosestN partners %d",
			x, len(partners), others, len(standIns), others, share, 1/float64(others), len(libPartners))
		if len(partners) < others-1 || len(standIns) < others-1 {
			t.Errorf("%s: replicas spread over %d and stand-ins over %d of %d other nodes", x, len(partners), len(standIns), others)
		}
		if share > 2.0/float64(others) {
			t.Errorf("%s: busiest stand-in takes %.3f of its failover load (fair %.3f)", x, share, 1/float64(others))
		}
		if len(libPartners) > 2 {
			t.Errorf("%s: GetClosestN partners %d; the contrast this test documents no longer holds", x, len(libPartners))
		}
	}
}

// libraryRing builds the library's own view of the same membership.
func libraryRing(cfg Config, members []string) *consistent.Consistent {
	ms := make([]consistent.Member, len(members))
	for i, m := range slices.Sorted(slices.Values(members)) {
		ms[i] = member(m)
	}
	return consistent.New(ms, consistent.Config{
		Hasher: hasher{}, PartitionCount: cfg.Partitions, ReplicationFactor: cfg.VirtualNodes,
		Load: cfg.Load, ReplicaKey: replicaKey,
	})
}

// TestOwnersMatchLibrary checks that the cached owner table is exactly the
// library's bounded-load assignment.
func TestOwnersMatchLibrary(t *testing.T) {
	cfg := DefaultConfig()
	members := names("node-", 7)
	r := mustNew(t, cfg, members)
	lib := libraryRing(cfg, members)
	for p := range cfg.Partitions {
		if got, want := r.Owner(p), lib.GetPartitionOwner(p).String(); got != want {
			t.Fatalf("partition %d: owner %q, library says %q", p, got, want)
		}
	}
	for _, key := range []string{"a", "user:42", "x"} {
		if got, want := r.Partition([]byte(key)), lib.FindPartitionID([]byte(key)); got != want {
			t.Fatalf("Partition(%q) = %d, library says %d", key, got, want)
		}
	}
}
