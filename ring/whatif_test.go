package ring

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

func TestWhatIfErrors(t *testing.T) {
	r := mustNew(t, smallConfig(), []string{"a", "b", "c"})
	if _, err := r.WhatIfAdd("b"); !errors.Is(err, ErrDuplicateNode) {
		t.Fatalf("WhatIfAdd(member) = %v, want ErrDuplicateNode", err)
	}
	if _, err := r.WhatIfAdd(""); !errors.Is(err, ErrEmptyNode) {
		t.Fatalf("WhatIfAdd(\"\") = %v, want ErrEmptyNode", err)
	}
	if _, err := r.WhatIfRemove("z"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("WhatIfRemove(non-member) = %v, want ErrUnknownNode", err)
	}
	other := smallConfig()
	other.Partitions = 97
	if _, err := Diff(r, mustNew(t, other, []string{"a"})); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("Diff across configs = %v, want ErrIncompatible", err)
	}
}

// TestWhatIfAddRemove checks what-if answers against the ring that the
// change would build, and that add and remove are mirror images.
func TestWhatIfAddRemove(t *testing.T) {
	cfg := smallConfig()
	r := mustNew(t, cfg, names("n", 5))
	add, err := r.WhatIfAdd("n6")
	if err != nil {
		t.Fatal(err)
	}
	next := mustNew(t, cfg, names("n", 6))
	if add.Op != "add" || add.Node != "n6" || add.MembersBefore != 5 || add.MembersAfter != 6 {
		t.Fatalf("header = %+v", add)
	}
	if len(add.ChangedPartitions) == 0 || len(add.ChangedPartitions) != len(add.Moves) {
		t.Fatalf("changed %d partitions, %d moves", len(add.ChangedPartitions), len(add.Moves))
	}
	gained := 0
	for _, mv := range add.Moves {
		if diff := cmp.Diff(next.Replicas(mv.Partition), mv.After); diff != "" {
			t.Fatalf("partition %d after (-want +got):\n%s", mv.Partition, diff)
		}
		if slices.Contains(mv.Added, "n6") {
			gained++
		}
	}
	if want := len(next.PartitionsOf("n6")); gained != want {
		t.Fatalf("n6 is added to %d partitions, but holds %d in the new ring", gained, want)
	}
	if add.OptimalFraction != 1.0/6 || add.MovedFraction < add.OptimalFraction*0.9 || add.MovedFraction > add.OptimalFraction*1.5 {
		t.Fatalf("moved %.4f, optimal %.4f", add.MovedFraction, add.OptimalFraction)
	}
	for _, sc := range add.Shares {
		if sc.Node == "n6" && (sc.OwnedBefore != 0 || sc.ShareBefore != 0 || sc.ShareAfter == 0) {
			t.Fatalf("n6 share = %+v", sc)
		}
	}

	rem, err := next.WhatIfRemove("n6")
	if err != nil {
		t.Fatal(err)
	}
	if rem.MovedSlots != add.MovedSlots || !slices.Equal(rem.ChangedPartitions, add.ChangedPartitions) {
		t.Fatalf("remove moves %d slots over %v partitions, add moved %d over %v",
			rem.MovedSlots, len(rem.ChangedPartitions), add.MovedSlots, len(add.ChangedPartitions))
	}
	if rem.OptimalFraction != 1.0/6 {
		t.Fatalf("remove optimal %.4f, want 1/6", rem.OptimalFraction)
	}
}

// TestWhatIfDegraded covers rings at or below N, where slots appear or vanish.
func TestWhatIfDegraded(t *testing.T) {
	cfg := smallConfig()
	two := mustNew(t, cfg, []string{"a", "b"})
	add, err := two.WhatIfAdd("c")
	if err != nil {
		t.Fatal(err)
	}
	// Going 2 -> 3 with N=3, c becomes a replica of every partition.
	if add.MovedSlots != cfg.Partitions || add.TotalSlots != 3*cfg.Partitions || add.OptimalFraction != 1.0/3 {
		t.Fatalf("2 -> 3: %+v", add)
	}
	three := mustNew(t, cfg, []string{"a", "b", "c"})
	rem, err := three.WhatIfRemove("c")
	if err != nil {
		t.Fatal(err)
	}
	// Going 3 -> 2, nothing needs a new holder: the slots just vanish.
	if rem.MovedSlots != 0 || rem.OptimalFraction != 0 || len(rem.ChangedPartitions) != cfg.Partitions {
		t.Fatalf("3 -> 2: moved %d, optimal %v, changed %d", rem.MovedSlots, rem.OptimalFraction, len(rem.ChangedPartitions))
	}
	one := mustNew(t, cfg, []string{"a"})
	rem, err = one.WhatIfRemove("a")
	if err != nil {
		t.Fatal(err)
	}
	if rem.MembersAfter != 0 || rem.MovedSlots != 0 {
		t.Fatalf("1 -> 0: %+v", rem)
	}
}

func TestEstimateBytes(t *testing.T) {
	r := mustNew(t, smallConfig(), names("n", 4))
	w, err := r.WhatIfAdd("n5")
	if err != nil {
		t.Fatal(err)
	}
	w.EstimateBytes(func(p int) int64 { return int64(p) })
	var want int64
	for _, mv := range w.Moves {
		want += int64(mv.Partition * len(mv.Added))
	}
	if !w.HasBytes || w.MovedBytes != want {
		t.Fatalf("MovedBytes = %d (has %v), want %d", w.MovedBytes, w.HasBytes, want)
	}
}

// TestDiffProperties checks Diff's accounting against a direct count for
// random membership changes.
func TestDiffProperties(t *testing.T) {
	cfg := smallConfig()
	pool := names("m", 12)
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.SliceOfDistinct(rapid.SampledFrom(pool), rapid.ID[string]).Draw(t, "a")
		b := rapid.SliceOfDistinct(rapid.SampledFrom(pool), rapid.ID[string]).Draw(t, "b")
		ra, err := New(cfg, a)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := New(cfg, b)
		if err != nil {
			t.Fatal(err)
		}
		w, err := Diff(ra, rb)
		if err != nil {
			t.Fatal(err)
		}
		moved, changed := 0, []int{}
		for p := range cfg.Partitions {
			before, after := ra.Replicas(p), rb.Replicas(p)
			for _, n := range after {
				if !slices.Contains(before, n) {
					moved++
				}
			}
			if !sameSet(before, after) {
				changed = append(changed, p)
			}
		}
		if w.MovedSlots != moved || !slices.Equal(w.ChangedPartitions, changed) {
			t.Fatalf("Diff moved %d over %v, direct count %d over %v", w.MovedSlots, w.ChangedPartitions, moved, changed)
		}
		if ra.Equal(rb) != (len(changed) == 0 && slices.Equal(ra.Members(), rb.Members())) {
			t.Fatalf("Equal = %v but %d partitions changed", ra.Equal(rb), len(changed))
		}
	})
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
