package replicatest

import (
	"hash/fnv"
	"slices"
	"testing"
)

// TestPartitionIsFNV: the allocation-free hash is FNV-1a, so keys land
// where they always did.
func TestPartitionIsFNV(t *testing.T) {
	p := NewPlacement([]string{"a", "b", "c"}, 3, 64)
	for _, k := range []string{"", "a", "key-1", "a much longer key with spaces"} {
		h := fnv.New32a()
		h.Write([]byte(k))
		if got, want := p.Partition([]byte(k)), int(h.Sum32()%64); got != want {
			t.Errorf("Partition(%q) = %d, want %d", k, got, want)
		}
	}
}

// TestTransitionPlacement: Pending is Targets minus Replicas, Fallbacks
// hold every other member of either ring and none of those, a nil target
// is stable, and the epoch is kept.
func TestTransitionPlacement(t *testing.T) {
	cur, tgt := []string{"n1", "n2", "n3"}, []string{"n1", "n2", "n3", "n4", "n5"}
	p := NewTransitionPlacement(cur, tgt, 3, 16, 9)
	if p.Epoch() != 9 {
		t.Errorf("epoch %d", p.Epoch())
	}
	stable := NewPlacement(cur, 3, 16)
	after := NewPlacement(tgt, 3, 16)
	for part := range 16 {
		reps, pend, tg, fb := p.Replicas(part), p.Pending(part), p.Targets(part), p.Fallbacks(part)
		if !slices.Equal(reps, stable.Replicas(part)) || !slices.Equal(tg, after.Replicas(part)) {
			t.Fatalf("partition %d: replicas %v targets %v", part, reps, tg)
		}
		for _, n := range tg {
			if slices.Contains(reps, n) == slices.Contains(pend, n) {
				t.Errorf("partition %d: %s is a target; replica %v, pending %v", part, n, reps, pend)
			}
		}
		all := slices.Concat(reps, pend, fb)
		slices.Sort(all)
		if !slices.Equal(all, tgt) {
			t.Errorf("partition %d: replicas %v + pending %v + fallbacks %v are not every member once", part, reps, pend, fb)
		}
	}
	s := NewTransitionPlacement(cur, nil, 3, 16, 4)
	for part := range 16 {
		if len(s.Pending(part)) != 0 || !slices.Equal(s.Targets(part), s.Replicas(part)) ||
			!slices.Equal(s.Fallbacks(part), stable.Fallbacks(part)) {
			t.Fatalf("stable partition %d: pending %v targets %v", part, s.Pending(part), s.Targets(part))
		}
	}
}
