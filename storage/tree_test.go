package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/ringkv/ringkv/vclock"
	"pgregory.net/rapid"
)

// refDigest is Digest as its documentation states it, built the slow way.
func refDigest(key []byte, s vclock.Siblings) uint64 {
	if len(s) == 0 || len(s.Live()) == 0 {
		return 0 // tombstones alone take no part
	}
	buf := append([]byte(nil), key...)
	for _, v := range s {
		buf = append(buf, v.Dot.Actor...)
		buf = binary.LittleEndian.AppendUint64(buf, v.Dot.Counter)
		if v.Tombstone {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
	}
	return xxhash.Sum64(buf)
}

func TestDigest(t *testing.T) {
	_, a := vclock.Mint(nil, "x", vclock.Write{Value: []byte("v")})
	_, a = vclock.Mint(a, "y", vclock.Write{Value: []byte("w"), Context: a.Context()})
	_, b := vclock.Mint(nil, "x", vclock.Write{Value: []byte("v")})
	_, b = vclock.Mint(b, "z", vclock.Write{Tombstone: true}) // a tombstone beside a value
	_, tomb := vclock.Mint(nil, "x", vclock.Write{Tombstone: true})
	if Digest([]byte("k"), nil) != 0 {
		t.Fatal("digest of the empty set is not 0")
	}
	if Digest([]byte("k"), tomb) != 0 {
		t.Fatal("digest of a set of tombstones alone is not 0")
	}
	for _, s := range []vclock.Siblings{a, b} {
		if got, want := Digest([]byte("k"), s), refDigest([]byte("k"), s); got != want {
			t.Fatalf("Digest(%v) = %x, want %x", s, got, want)
		}
	}
	if Digest([]byte("k"), a) == Digest([]byte("j"), a) {
		t.Fatal("digest ignores the key")
	}
	live, _ := vclock.Mint(nil, "x", vclock.Write{Value: []byte("v")})
	if Digest([]byte("k"), vclock.Siblings{live}) == Digest([]byte("k"), b) {
		t.Fatal("digest ignores the tombstone flag")
	}
	if Digest([]byte("k"), a) != Digest([]byte("k"), vclock.PruneContexts(a)) {
		t.Fatal("digest depends on contexts")
	}
	if n := testing.AllocsPerRun(100, func() { Digest([]byte("k"), a) }); n != 0 {
		t.Fatalf("Digest allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { Leaf([]byte("k")) }); n != 0 {
		t.Fatalf("Leaf allocates %v times", n)
	}
	if Leaf([]byte("some key")) != uint32(xxhash.Sum64String("some key")%256) {
		t.Fatal("Leaf is not xxhash64 % 256")
	}
	if TreeLeaves != 256 || TreeFanout != 16 || TreeLevels != 3 {
		t.Fatal("tree shape is protocol; it must not change")
	}
}

// refTree computes partition p's tree from scratch, level by level.
func refTree(e *Engine, p int) [TreeLevels][]uint64 {
	var out [TreeLevels][]uint64
	out[2] = make([]uint64, TreeLeaves)
	e.Range(p, func(k []byte, s vclock.Siblings) bool {
		out[2][xxhash.Sum64(k)%TreeLeaves] ^= refDigest(k, s)
		return true
	})
	out[1] = make([]uint64, TreeFanout)
	for l, h := range out[2] {
		out[1][l/TreeFanout] ^= h
	}
	out[0] = make([]uint64, 1)
	for _, h := range out[1] {
		out[0][0] ^= h
	}
	return out
}

// fataler is what the helpers below need of *testing.T and *rapid.T.
type fataler interface{ Fatal(args ...any) }

// treeLevels returns partition p's tree as TreeHashes reports it.
func treeLevels(t fataler, e *Engine, p int) [TreeLevels][]uint64 {
	var out [TreeLevels][]uint64
	for l := range TreeLevels {
		h, err := e.TreeHashes(p, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[l] = h
	}
	return out
}

func sameTrees(a, b [TreeLevels][]uint64) bool {
	for l := range a {
		if !slices.Equal(a[l], b[l]) {
			return false
		}
	}
	return true
}

func TestTreeHashesArguments(t *testing.T) {
	e := openT(t, testConfig(t, t.TempDir()))
	defer e.Close()
	put(t, e, "a", "1")
	p := e.cfg.Partitioner([]byte("a"))
	tests := []struct {
		name      string
		partition int
		level     int
		nodes     []uint32
		want      int // result length; -1 for ErrInvalid
	}{
		{"root", p, 0, nil, 1},
		{"level 1", p, 1, nil, 16},
		{"leaves", p, 2, []uint32{}, 256},
		{"some leaves", p, 2, []uint32{255, 0, 3}, 3},
		{"negative partition", -1, 0, nil, -1},
		{"partition out of range", e.cfg.Partitions, 0, nil, -1},
		{"negative level", p, -1, nil, -1},
		{"level too deep", p, 3, nil, -1},
		{"node out of range", p, 1, []uint32{16}, -1},
		{"root node 1", p, 0, []uint32{1}, -1},
		{"more nodes than the level", p, 0, []uint32{0, 0}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := e.TreeHashes(tc.partition, tc.level, tc.nodes)
			if tc.want < 0 {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil || len(h) != tc.want {
				t.Fatalf("got %d hashes, %v; want %d", len(h), err, tc.want)
			}
		})
	}
	leaves, _ := e.TreeHashes(p, 2, nil)
	some, _ := e.TreeHashes(p, 2, []uint32{255, 0, 3})
	if !slices.Equal(some, []uint64{leaves[255], leaves[0], leaves[3]}) {
		t.Fatal("named nodes not returned in the order named")
	}
	root, _ := e.TreeHashes(p, 0, nil)
	if root[0] != Digest([]byte("a"), e.Get([]byte("a"))) {
		t.Fatal("root of a one-key partition is not the key's digest")
	}
	root[0] = 0 // the result is a copy
	if again, _ := e.TreeHashes(p, 0, nil); again[0] == 0 {
		t.Fatal("TreeHashes returned the tree itself")
	}
}

func TestLeafKeys(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Partitions = 1
	cfg.Partitioner = func([]byte) int { return 0 }
	e := openT(t, cfg)
	defer e.Close()
	byLeaf := map[uint32][]string{}
	for i := range 600 {
		k := fmt.Sprintf("key-%03d", i)
		put(t, e, k, "v")
		byLeaf[Leaf([]byte(k))] = append(byLeaf[Leaf([]byte(k))], k)
	}
	var leaves []uint32
	var want []string
	for l := uint32(0); len(want) < 10; l += 7 {
		leaves = append(leaves, l)
		want = append(want, byLeaf[l]...)
	}
	slices.Sort(want)
	got, more, err := e.LeafKeys(0, leaves, 1000)
	if err != nil || more {
		t.Fatalf("LeafKeys: more %v, %v", more, err)
	}
	var keys []string
	for _, kd := range got {
		keys = append(keys, string(kd.Key))
		if kd.Digest != Digest(kd.Key, e.Get(kd.Key)) || kd.Collectable {
			t.Fatalf("key %s: digest %x, collectable %v", kd.Key, kd.Digest, kd.Collectable)
		}
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	got, more, err = e.LeafKeys(0, leaves, 3)
	if err != nil || !more || len(got) != 3 || string(got[2].Key) != want[2] {
		t.Fatalf("limited to 3: %d keys, more %v, %v", len(got), more, err)
	}
	got, more, err = e.LeafKeys(0, leaves, len(want))
	if err != nil || more || len(got) != len(want) {
		t.Fatalf("limited to exactly the count: %d keys, more %v, %v", len(got), more, err)
	}
	if got, _, err := e.LeafKeys(0, nil, 10); err != nil || len(got) != 0 {
		t.Fatalf("no leaves: %v, %v", got, err)
	}
	for name, call := range map[string]func() error{
		"bad partition":   func() error { _, _, err := e.LeafKeys(1, leaves, 10); return err },
		"bad leaf":        func() error { _, _, err := e.LeafKeys(0, []uint32{256}, 10); return err },
		"too many leaves": func() error { _, _, err := e.LeafKeys(0, make([]uint32, 257), 10); return err },
		"zero max keys":   func() error { _, _, err := e.LeafKeys(0, leaves, 0); return err },
	} {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// treeModel drives an engine through random writes as replicas and
// coordinators make them.
type treeModel struct {
	e      *Engine
	clk    *fakeClock
	keys   []string
	actors []string
}

func (m *treeModel) step(t *rapid.T) {
	ctx := t.Context()
	key := []byte(rapid.SampledFrom(m.keys).Draw(t, "key"))
	cur := m.e.Get(key)
	switch rapid.IntRange(0, 6).Draw(t, "op") {
	case 0, 1: // a replicated write from another coordinator, maybe concurrent
		w := vclock.Write{Value: []byte(rapid.StringN(0, 8, -1).Draw(t, "value")),
			Tombstone: rapid.Bool().Draw(t, "tomb"), WallTime: 1}
		if rapid.Bool().Draw(t, "seen") {
			w.Context = cur.Context()
		}
		_, s := vclock.Mint(cur, rapid.SampledFrom(m.actors).Draw(t, "actor"), w)
		if rapid.Bool().Draw(t, "concurrent") {
			_, s = vclock.Mint(nil, rapid.SampledFrom(m.actors).Draw(t, "actor2"), w)
		}
		if _, err := m.e.Apply(ctx, key, s); err != nil {
			t.Fatal(err)
		}
	case 2: // a coordinated write or delete here
		tomb := rapid.Bool().Draw(t, "tomb")
		_, err := m.e.Update(ctx, key, func(cur vclock.Siblings) (vclock.Siblings, error) {
			w := vclock.Write{Blind: true, Value: []byte("c"), Tombstone: tomb, WallTime: 2}
			w.MinCounter = m.e.ReserveCounter(vclock.NextCounter(cur, m.e.Incarnation(), w))
			_, next := vclock.Mint(cur, m.e.Incarnation(), w)
			return next, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	case 3: // Update deletes the key outright
		if _, err := m.e.Update(ctx, key, func(vclock.Siblings) (vclock.Siblings, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
	case 4: // re-applying what is there changes nothing
		if _, err := m.e.Apply(ctx, key, cur); err != nil {
			t.Fatal(err)
		}
	case 5: // time passes, anti-entropy syncs, GC runs
		m.clk.Advance(rapid.SampledFrom([]time.Duration{time.Minute, 2 * time.Hour}).Draw(t, "advance"))
		p := m.e.cfg.Partitioner(key)
		m.e.MarkSynced(p, m.clk.Now())
		if _, err := m.e.Collect(ctx, p); err != nil {
			t.Fatal(err)
		}
	case 6:
		m.clk.Advance(time.Second)
	}
}

func newTreeModel(t *rapid.T, dir string) *treeModel {
	clk := newFakeClock()
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.NodeID = "n1"
	cfg.Partitions = 8
	cfg.Partitioner = fnvPartitioner(8)
	cfg.Fsync = FsyncNone
	cfg.SnapshotBytes = -1
	cfg.TombstoneGC = time.Hour
	cfg.Now = clk.Now
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &treeModel{e: e, clk: clk,
		keys:   []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"},
		actors: []string{"r1", "r2", "r3"}}
}

// The incrementally kept tree always equals the tree computed from
// scratch, and a second engine holding the same sets, written in another
// order and with pruned contexts, has the same tree.
func TestTreeIncrementalProperty(t *testing.T) {
	base := t.TempDir()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		m := newTreeModel(rt, fmt.Sprintf("%s/a%d", base, run))
		defer m.e.Close()
		for range rapid.IntRange(1, 60).Draw(rt, "steps") {
			m.step(rt)
		}
		for p := range m.e.cfg.Partitions {
			if got, want := treeLevels(rt, m.e, p), refTree(m.e, p); !sameTrees(got, want) {
				rt.Fatalf("partition %d: incremental tree %v, from scratch %v", p, got, want)
			}
		}
		other := newTreeModel(rt, fmt.Sprintf("%s/b%d", base, run))
		defer other.e.Close()
		contents := dump(m.e)
		keys := make([]string, 0, len(contents))
		for k := range contents {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		order := rapid.Permutation(keys).Draw(rt, "order")
		for _, k := range order {
			s := contents[k]
			if rapid.Bool().Draw(rt, "prune") {
				s = vclock.PruneContexts(s)
			}
			if _, err := other.e.Apply(rt.Context(), []byte(k), s); err != nil {
				rt.Fatal(err)
			}
		}
		for p := range m.e.cfg.Partitions {
			if a, b := treeLevels(rt, m.e, p), treeLevels(rt, other.e, p); !sameTrees(a, b) {
				rt.Fatalf("partition %d: engines with the same sets have trees %v and %v", p, a, b)
			}
		}
	})
}

// After a crash the recovered tree (snapshot plus WAL replay) equals the
// tree before it.
func TestTreeAfterCrashProperty(t *testing.T) {
	base := t.TempDir()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		dir := fmt.Sprintf("%s/%d", base, run)
		m := newTreeModel(rt, dir)
		snapAt := rapid.IntRange(-1, 40).Draw(rt, "snapshotAt")
		for i := range rapid.IntRange(1, 40).Draw(rt, "steps") {
			if i == snapAt {
				if err := m.e.Snapshot(rt.Context()); err != nil {
					rt.Fatal(err)
				}
			}
			m.step(rt)
		}
		var before [][TreeLevels][]uint64
		for p := range m.e.cfg.Partitions {
			before = append(before, treeLevels(rt, m.e, p))
		}
		abandon(m.e)
		e, err := Open(m.e.cfg)
		if err != nil {
			rt.Fatal(err)
		}
		defer e.Close()
		for p := range e.cfg.Partitions {
			if got := treeLevels(rt, e, p); !sameTrees(got, before[p]) {
				rt.Fatalf("partition %d: tree after crash %v, before %v", p, got, before[p])
			}
		}
	})
	// Keep the temp dir small for later tests.
	_ = os.RemoveAll(base)
}

// Two engines holding the same keys have equal roots in every partition.
func TestTreeRootsEqualAcrossEngines(t *testing.T) {
	a := openT(t, testConfig(t, t.TempDir()))
	defer a.Close()
	b := openT(t, testConfig(t, t.TempDir()))
	defer b.Close()
	var keys []string
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	sets := map[string]vclock.Siblings{}
	for _, k := range keys {
		_, s := vclock.Mint(nil, "coord", vclock.Write{Value: []byte(strings.Repeat("v", len(k)))})
		sets[k] = s
		if _, err := a.Apply(t.Context(), []byte(k), s); err != nil {
			t.Fatal(err)
		}
	}
	slices.Reverse(keys)
	for _, k := range keys {
		if _, err := b.Apply(t.Context(), []byte(k), sets[k]); err != nil {
			t.Fatal(err)
		}
	}
	for p := range a.cfg.Partitions {
		ra, _ := a.TreeHashes(p, 0, nil)
		rb, _ := b.TreeHashes(p, 0, nil)
		if ra[0] != rb[0] {
			t.Fatalf("partition %d: roots %x and %x", p, ra[0], rb[0])
		}
	}
	// One more key on one side makes its partition's root differ.
	put(t, b, "extra", "v")
	p := b.cfg.Partitioner([]byte("extra"))
	ra, _ := a.TreeHashes(p, 0, nil)
	rb, _ := b.TreeHashes(p, 0, nil)
	if ra[0] == rb[0] {
		t.Fatal("an extra key left the root unchanged")
	}
}

// Long keys and many versions take the streaming path; it hashes the same
// bytes, and neither path allocates.
func TestDigestLongInput(t *testing.T) {
	var s vclock.Siblings
	for i := range 12 {
		_, v := vclock.Mint(nil, fmt.Sprintf("actor-%02d-abcdefgh", i), vclock.Write{Tombstone: i%2 == 0})
		s = vclock.Merge(s, v)
	}
	for _, tc := range []struct {
		key []byte
		s   vclock.Siblings
	}{
		{[]byte(strings.Repeat("k", 1000)), s[:1]},
		{[]byte("k"), s},
		{[]byte(strings.Repeat("k", digestBuf-len(s[0].Dot.Actor)-9)), s[:1]},   // exactly the buffer
		{[]byte(strings.Repeat("k", digestBuf-len(s[0].Dot.Actor)-9+1)), s[:1]}, // one byte over
	} {
		if got, want := Digest(tc.key, tc.s), refDigest(tc.key, tc.s); got != want {
			t.Fatalf("key of %d bytes, %d versions: %x, want %x", len(tc.key), len(tc.s), got, want)
		}
		if n := testing.AllocsPerRun(20, func() { Digest(tc.key, tc.s) }); n != 0 {
			t.Fatalf("key of %d bytes, %d versions: %v allocations", len(tc.key), len(tc.s), n)
		}
	}
}

// TestLeafKeysAfterPages: reading leaves page by page after a cursor lists
// every key of those leaves once, in key order, as one LeafKeys call does.
func TestLeafKeysAfterPages(t *testing.T) {
	clk := newFakeClock()
	e := gcEngine(t, t.TempDir(), clk)
	defer e.Close()
	for i := range 300 {
		put(t, e, fmt.Sprintf("key-%03d", i), "v")
	}
	leaves := []uint32{1, 2, 3, 100, 200}
	whole, more, err := e.LeafKeys(0, leaves, 10000)
	if err != nil || more || len(whole) == 0 {
		t.Fatalf("LeafKeys: %d keys, more %v, %v", len(whole), more, err)
	}
	var paged []KeyDigest
	var after []byte
	for range len(whole) + 1 {
		kd, more, err := e.LeafKeysAfter(0, leaves, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, kd...)
		if !more {
			break
		}
		after = kd[len(kd)-1].Key
	}
	if len(paged) != len(whole) {
		t.Fatalf("pages listed %d keys, one call %d", len(paged), len(whole))
	}
	for i := range whole {
		if !bytes.Equal(paged[i].Key, whole[i].Key) || paged[i].Digest != whole[i].Digest {
			t.Fatalf("key %d: paged %q, whole %q", i, paged[i].Key, whole[i].Key)
		}
	}
}
