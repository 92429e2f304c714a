package replicatest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

func mint(actor, val string) vclock.Siblings {
	_, s := vclock.Mint(nil, actor, vclock.Write{Value: []byte(val)})
	return s
}

// TestTreeIncremental checks the tree kept by Update against one built from
// scratch, at every level.
func TestTreeIncremental(t *testing.T) {
	ctx := context.Background()
	live := replicatest.NewStore("a")
	live.Partitioner = func(k []byte) int { return int(k[0]) % 3 }
	if _, err := live.TreeHashes(0, 0, nil); err != nil { // turn the tree on while empty
		t.Fatal(err)
	}
	for i := range 500 {
		k := []byte(fmt.Sprintf("k%d", i))
		if _, err := live.Apply(ctx, k, mint(fmt.Sprintf("a%d", i%7), "v")); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 { // delete some again
			if _, err := live.Update(ctx, k, func(vclock.Siblings) (vclock.Siblings, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	fresh := replicatest.NewStore("a")
	fresh.Partitioner = live.Partitioner
	for p := range 3 {
		for _, k := range live.Keys(p) {
			if _, err := fresh.Apply(ctx, k, live.Get(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for p := range 3 {
		var root uint64
		for _, k := range live.Keys(p) {
			root ^= replicatest.Digest(k, live.Get(k))
		}
		for level := range replica.TreeLevels {
			a, err := live.TreeHashes(p, level, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := fresh.TreeHashes(p, level, nil)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("partition %d level %d: incremental %v, rebuilt %v", p, level, a, b)
			}
			var x uint64
			for _, h := range a {
				x ^= h
			}
			if x != root {
				t.Fatalf("partition %d level %d: XOR of level %x, want root %x", p, level, x, root)
			}
		}
	}
	if _, err := live.TreeHashes(0, 1, []uint32{16}); err == nil {
		t.Fatal("node 16 at level 1 accepted")
	}
	if _, err := live.TreeHashes(0, 3, nil); err == nil {
		t.Fatal("level 3 accepted")
	}
}

// TestLeafKeysCollectable checks sorting, the key cap and the Tombstone
// flag: set for a set of tombstones alone.
func TestLeafKeysCollectable(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	s := replicatest.NewStore("a")
	s.Now = func() time.Time { return now }
	s.TombstoneGC = time.Hour
	_, tomb := vclock.Mint(nil, "a", vclock.Write{Tombstone: true})
	for _, k := range []string{"dead", "live"} {
		set := tomb
		if k == "live" {
			set = mint("a", "v")
		}
		if _, err := s.Apply(ctx, []byte(k), set); err != nil {
			t.Fatal(err)
		}
		s.SetReceived([]byte(k), now.Add(-2*time.Hour))
	}
	all := []uint32{replicatest.Leaf([]byte("dead")), replicatest.Leaf([]byte("live"))}
	check := func(wantDead bool) {
		t.Helper()
		kd, more, err := s.LeafKeys(0, all, 10)
		if err != nil || more || len(kd) != 2 || string(kd[0].Key) != "dead" || string(kd[1].Key) != "live" {
			t.Fatalf("LeafKeys = %v, %v, %v", kd, more, err)
		}
		if kd[0].Tombstone != wantDead || kd[1].Tombstone {
			t.Fatalf("collectable: dead %v live %v, want %v false", kd[0].Tombstone, kd[1].Tombstone, wantDead)
		}
	}
	check(true) // tombstones only, synced or not
	s.MarkSynced(0, now.Add(-90*time.Minute))
	check(true)
	kd, more, _ := s.LeafKeys(0, all, 1)
	if len(kd) != 1 || !more {
		t.Fatalf("cap 1: %d keys, more %v", len(kd), more)
	}
}
