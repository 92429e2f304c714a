package ring

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInspect(t *testing.T) {
	cfg := smallConfig()
	r := mustNew(t, cfg, names("n", 5))
	stats := func(node string) (int64, int64, bool) {
		if node == "n3" {
			return 0, 0, false // a node that did not answer
		}
		return int64(len(node)) * 10, int64(len(node)) * 1000, true
	}
	in := r.Inspect(stats)
	if in.Partitions != cfg.Partitions || in.Replicas != 3 || in.Degraded || len(in.Nodes) != 5 {
		t.Fatalf("Inspect header = %+v", in)
	}
	owned, replicated := 0, 0
	var ownShare, repShare float64
	for i, ni := range in.Nodes {
		if ni.Node != r.Members()[i] {
			t.Fatalf("node %d is %q, want members in name order", i, ni.Node)
		}
		// Cross-check against the lookup functions.
		wantOwned, wantRep := 0, len(r.PartitionsOf(ni.Node))
		for p := range cfg.Partitions {
			if r.Owner(p) == ni.Node {
				wantOwned++
			}
		}
		if ni.Owned != wantOwned || ni.Replicated != wantRep {
			t.Fatalf("%s: owned %d replicated %d, want %d and %d", ni.Node, ni.Owned, ni.Replicated, wantOwned, wantRep)
		}
		if ni.HasStats != (ni.Node != "n3") || (ni.HasStats && ni.Bytes != 2000) {
			t.Fatalf("%s: stats %+v", ni.Node, ni)
		}
		owned += ni.Owned
		replicated += ni.Replicated
		ownShare += ni.KeySpaceShare
		repShare += ni.ReplicaShare
	}
	if owned != cfg.Partitions || replicated != 3*cfg.Partitions {
		t.Fatalf("owned sums to %d, replicated to %d", owned, replicated)
	}
	if math.Abs(ownShare-1) > 1e-9 || math.Abs(repShare-1) > 1e-9 {
		t.Fatalf("shares sum to %v and %v, want 1", ownShare, repShare)
	}
	if in.Fingerprint == "" {
		t.Fatal("no fingerprint")
	}
	// Without stats, nothing is claimed.
	for _, ni := range r.Inspect(nil).Nodes {
		if ni.HasStats || ni.Keys != 0 || ni.Bytes != 0 {
			t.Fatalf("Inspect(nil) reports stats: %+v", ni)
		}
	}
}

func TestInspectJSON(t *testing.T) {
	r := mustNew(t, smallConfig(), []string{"a", "b"})
	b, err := json.Marshal(r.Inspect(nil))
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"partitions", "replication_factor", "replicas", "degraded", "fingerprint", "nodes"} {
		if _, ok := back[k]; !ok {
			t.Fatalf("JSON lacks %q: %s", k, b)
		}
	}
	if back["degraded"] != true {
		t.Fatalf("two nodes with N=3 not degraded in JSON: %s", b)
	}
}

func TestPreference(t *testing.T) {
	r := mustNew(t, smallConfig(), names("n", 6))
	key := []byte("user:42")
	pl := r.Preference(key)
	p, reps := r.Lookup(key)
	want := KeyPlacement{Partition: p, Replicas: slices.Clone(reps), Fallbacks: slices.Clone(r.Fallbacks(p))}
	if diff := cmp.Diff(want, pl); diff != "" {
		t.Fatalf("Preference (-want +got):\n%s", diff)
	}
	// The placement owns its slices.
	pl.Replicas[0] = "changed"
	if r.Replicas(p)[0] == "changed" {
		t.Fatal("Preference returned the ring's shared slice")
	}
	// With every member a replica, fallbacks print as [] not null.
	small := mustNew(t, smallConfig(), []string{"a", "b", "c"})
	b, err := json.Marshal(small.Preference(key))
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if fb, ok := back["fallbacks"].([]any); !ok || len(fb) != 0 {
		t.Fatalf("fallbacks = %v in %s, want []", back["fallbacks"], b)
	}
}
