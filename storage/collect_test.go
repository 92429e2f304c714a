package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// gcEngine opens an engine with one partition, a fake clock and a 24h
// grace.
func gcEngine(t *testing.T, dir string, clk *fakeClock) *Engine {
	t.Helper()
	cfg := testConfig(t, dir)
	cfg.Partitions = 1
	cfg.Partitioner = func([]byte) int { return 0 }
	cfg.SnapshotBytes = -1
	cfg.TombstoneGC = 24 * time.Hour
	cfg.Now = clk.Now
	return openT(t, cfg)
}

// applyT applies s to key.
func applyT(t *testing.T, e *Engine, key string, s vclock.Siblings) {
	t.Helper()
	if _, err := e.Apply(t.Context(), []byte(key), s); err != nil {
		t.Fatal(err)
	}
}

// tombstone is a tombstone minted elsewhere with the given wall time.
func tombstone(actor string, wall time.Time) vclock.Siblings {
	_, s := vclock.Mint(nil, actor, vclock.Write{Value: []byte("v")})
	_, s = vclock.Mint(s, actor, vclock.Write{Blind: true, Tombstone: true, WallTime: wall.UnixNano()})
	return s
}

func collectT(t *testing.T, e *Engine) CollectStats {
	t.Helper()
	st, err := e.Collect(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// collectableKeys returns LeafKeys' Collectable flag for every key.
func collectableKeys(t *testing.T, e *Engine) map[string]bool {
	t.Helper()
	all := make([]uint32, TreeLeaves)
	for i := range all {
		all[i] = uint32(i)
	}
	kds, _, err := e.LeafKeys(0, all, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, kd := range kds {
		out[string(kd.Key)] = kd.Collectable
	}
	return out
}

// Collect drops exactly the tombstone-only keys received before the
// partition's sync time and before the grace, by this node's clock, and
// LeafKeys flags exactly those as Collectable.
func TestCollectRule(t *testing.T) {
	clk := newFakeClock()
	t0 := clk.Now()
	dir := t.TempDir()
	e := gcEngine(t, dir, clk)

	// Received at t0.
	applyT(t, e, "foreign", tombstone("coord", t0))
	put(t, e, "ours", "v") // minted by this engine's actor
	del(t, e, "ours", t0)
	put(t, e, "live", "v")
	_, mixed := vclock.Mint(nil, "other", vclock.Write{Tombstone: true, WallTime: t0.UnixNano()})
	_, mixed = vclock.Mint(mixed, "third", vclock.Write{Value: []byte("v")})
	applyT(t, e, "mixed", mixed)
	// A tombstone whose wall time (another node's clock) is far in the
	// future: only the receipt time counts.
	applyT(t, e, "future-wall", tombstone("coord", t0.Add(1000*time.Hour)))

	clk.Advance(10 * time.Hour)
	// Received at t0+10h, with an ancient wall time: still young here.
	applyT(t, e, "young", tombstone("coord", t0.Add(-1000*time.Hour)))

	clk.Advance(time.Hour)
	synced := clk.Now() // t0+11h
	clk.Advance(time.Hour)
	applyT(t, e, "late", tombstone("coord", t0)) // t0+12h, after the sync

	// Past the grace for everything, but no sync yet: nothing goes.
	clk.Advance(30 * time.Hour) // t0+42h
	if st := collectT(t, e); st != (CollectStats{}) {
		t.Fatalf("without a sync Collect changed %+v", st)
	}
	for k, c := range collectableKeys(t, e) {
		if c {
			t.Fatalf("%s collectable before any sync", k)
		}
	}

	// Grace cutoff now t0+18h; sync time t0+11h.
	e.MarkSynced(0, synced)
	e.MarkSynced(0, t0) // an earlier time is ignored
	e.MarkSynced(5, synced)

	want := map[string]bool{"foreign": true, "ours": true, "future-wall": true,
		"live": false, "mixed": false, "young": true, "late": false}
	if got := collectableKeys(t, e); !mapsEqual(got, want) {
		t.Fatalf("Collectable flags %v, want %v", got, want)
	}
	st := collectT(t, e)
	if st.Dropped != 4 {
		t.Fatalf("dropped %d keys, want 4 (%+v)", st.Dropped, st)
	}
	check := func(e *Engine) {
		t.Helper()
		for k, gone := range want {
			if (e.Get([]byte(k)) == nil) != gone {
				t.Errorf("key %s: present %v, want collected %v", k, e.Get([]byte(k)) != nil, gone)
			}
		}
	}
	check(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// The drops were WAL records: they hold after reopen, and the synced
	// time is not kept, so nothing more goes until the next sync.
	e = gcEngine(t, dir, clk)
	defer e.Close()
	check(e)
	clk.Advance(100 * time.Hour)
	if st := collectT(t, e); st.Dropped != 0 {
		t.Fatalf("after reopen, before a sync, dropped %d", st.Dropped)
	}
	e.MarkSynced(0, clk.Now())
	if st := collectT(t, e); st.Dropped != 1 || e.Get([]byte("late")) != nil {
		t.Fatalf("late tombstone after its sync: %+v, %v", st, e.Get([]byte("late")))
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// The grace is measured from the receipt time: a tombstone received
// within TombstoneGC of now stays, even when synced.
func TestCollectWaitsForGrace(t *testing.T) {
	clk := newFakeClock()
	e := gcEngine(t, t.TempDir(), clk)
	defer e.Close()
	applyT(t, e, "k", tombstone("coord", clk.Now().Add(-1000*time.Hour)))
	clk.Advance(24*time.Hour - time.Nanosecond)
	e.MarkSynced(0, clk.Now())
	if st := collectT(t, e); st.Dropped != 0 {
		t.Fatal("tombstone collected within the grace")
	}
	clk.Advance(2 * time.Nanosecond)
	if st := collectT(t, e); st.Dropped != 1 {
		t.Fatal("tombstone not collected after the grace")
	}
}

// A key that changed after Collect read it is left alone, even when the
// change put back an equal set (its receipt time moved).
func TestCollectSkipsKeysChangedSinceRead(t *testing.T) {
	clk := newFakeClock()
	e := gcEngine(t, t.TempDir(), clk)
	defer e.Close()
	old := tombstone("coord", clk.Now())
	applyT(t, e, "rewritten", old)
	applyT(t, e, "revived", old)
	applyT(t, e, "reapplied", old)
	clk.Advance(48 * time.Hour)
	e.MarkSynced(0, clk.Now())
	sh := e.shards[0]
	read := map[string]entry{}
	for _, c := range sh.collectable(e.gcRule(sh)) {
		read[c.key] = c
	}
	// After the read: a new tombstone, a live write, and the same set
	// deleted and applied again (same slice, new receipt time).
	_, newer := vclock.Mint(old, "coord", vclock.Write{Blind: true, Tombstone: true, WallTime: 1})
	applyT(t, e, "rewritten", newer)
	put(t, e, "revived", "back")
	if _, err := e.Update(t.Context(), []byte("reapplied"), func(vclock.Siblings) (vclock.Siblings, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	applyT(t, e, "reapplied", old)
	for k, c := range read {
		if _, ok, err := e.replaceIf(sh, c, c.siblings(), collectChange{}); err != nil || ok {
			t.Errorf("%s changed since read but was dropped (%v)", k, err)
		}
		if e.Get([]byte(k)) == nil {
			t.Errorf("%s gone", k)
		}
	}
	// Unchanged since read: dropped.
	applyT(t, e, "still", old)
	clk.Advance(48 * time.Hour)
	e.MarkSynced(0, clk.Now())
	for _, c := range sh.collectable(e.gcRule(sh)) {
		if c.key == "still" {
			if _, ok, err := e.replaceIf(sh, c, c.siblings(), collectChange{}); err != nil || !ok {
				t.Fatalf("unchanged key not dropped: %v, %v", ok, err)
			}
		}
	}
	if e.Get([]byte("still")) != nil {
		t.Fatal("still present")
	}
}

// Collect prunes contexts naming actors with no version in the set, for
// keys received before the sync time and before the grace; dots, values,
// receipt time, digest and tree stay as they were.
func TestCollectPrunesContexts(t *testing.T) {
	clk := newFakeClock()
	dir := t.TempDir()
	e := gcEngine(t, dir, clk)
	_, s := vclock.Mint(nil, "gone1", vclock.Write{Value: []byte("v1")})
	_, s = vclock.Mint(s, "gone2", vclock.Write{Value: []byte("v2"), Context: s.Context()})
	_, s = vclock.Mint(s, "coord", vclock.Write{Value: []byte("v3"), Context: s.Context()})
	if len(s) != 1 || len(s[0].Context) != 2 {
		t.Fatalf("setup: %v", s)
	}
	applyT(t, e, "k", s)
	recv := recvOf(e, "k")
	clk.Advance(time.Minute)
	e.MarkSynced(0, clk.Now())
	clk.Advance(time.Minute)
	// Received after the sync: not touched, although its context names
	// an actor with no version.
	_, late := vclock.Mint(nil, "gone3", vclock.Write{Value: []byte("x")})
	_, late = vclock.Mint(late, "coord2", vclock.Write{Value: []byte("y"), Context: late.Context()})
	applyT(t, e, "after-sync", late)
	// Synced but within the grace: a hint still queued somewhere could
	// carry (gone2,1); with the context pruned it would come back. (Too
	// few actors for a candidate: candidate.go.)
	if st := collectT(t, e); st != (CollectStats{}) {
		t.Fatalf("within the grace: %+v, want nothing", st)
	}
	clk.Advance(48 * time.Hour)
	treeBefore := treeLevels(t, e, 0)
	if st := collectT(t, e); st != (CollectStats{Pruned: 1}) {
		t.Fatalf("stats %+v, want one key pruned", st)
	}
	got := e.Get([]byte("k"))
	if len(got) != 1 || got[0].Context != nil || got[0].Dot != s[0].Dot || string(got[0].Value) != "v3" {
		t.Fatalf("pruned set %v", got)
	}
	if recvOf(e, "k") != recv {
		t.Fatal("pruning changed the receipt time")
	}
	if !sameTrees(treeLevels(t, e, 0), treeBefore) {
		t.Fatal("pruning changed the tree")
	}
	if !e.Get([]byte("after-sync")).Equal(late) {
		t.Fatal("a key received after the sync was pruned")
	}
	if d := Digest([]byte("k"), got); d != Digest([]byte("k"), s) {
		t.Fatal("pruning changed the digest")
	}
	if st := collectT(t, e); st != (CollectStats{}) {
		t.Fatalf("second pass changed %+v", st)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = gcEngine(t, dir, clk)
	defer e.Close()
	if got := e.Get([]byte("k")); len(got) != 1 || got[0].Context != nil || recvOf(e, "k") != recv {
		t.Fatalf("after reopen: %v, recv %d", got, recvOf(e, "k"))
	}
}

func TestCollectArgumentsAndContext(t *testing.T) {
	clk := newFakeClock()
	e := gcEngine(t, t.TempDir(), clk)
	defer e.Close()
	if _, err := e.Collect(t.Context(), 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad partition: %v", err)
	}
	if _, err := e.Collect(t.Context(), -1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad partition: %v", err)
	}
	e.MarkSynced(-1, clk.Now()) // ignored, no panic
	applyT(t, e, "k", tombstone("coord", clk.Now()))
	clk.Advance(48 * time.Hour)
	e.MarkSynced(0, clk.Now())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Collect(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	if e.Get([]byte("k")) == nil {
		t.Fatal("collected under a cancelled ctx")
	}
}

// Collect works through many keys in batches and keeps the tree exact.
func TestCollectManyKeys(t *testing.T) {
	clk := newFakeClock()
	e := gcEngine(t, t.TempDir(), clk)
	defer e.Close()
	const n = 3*collectBatch + 7
	for i := range n {
		k := []byte{byte(i >> 8), byte(i), 'k'}
		if _, err := e.Apply(t.Context(), k, tombstone("coord", clk.Now())); err != nil {
			t.Fatal(err)
		}
	}
	put(t, e, "live", "v")
	clk.Advance(48 * time.Hour)
	e.MarkSynced(0, clk.Now())
	if st := collectT(t, e); st.Dropped != n {
		t.Fatalf("dropped %d of %d", st.Dropped, n)
	}
	if got, want := treeLevels(t, e, 0), refTree(e, 0); !sameTrees(got, want) {
		t.Fatal("tree differs from scratch after Collect")
	}
	if root, _ := e.TreeHashes(0, 0, nil); root[0] != Digest([]byte("live"), e.Get([]byte("live"))) {
		t.Fatal("root is not the one remaining key's digest")
	}
}

// overwritten returns the set of a key written by n actors in turn
// (gone0, gone1, ...), each over the last, and then by coord: n
// context-only actors.
func overwritten(n int) vclock.Siblings {
	var s vclock.Siblings
	for i := range n {
		_, s = vclock.Mint(s, fmt.Sprintf("gone%d", i), vclock.Write{Value: []byte("old"), Context: s.Context()})
	}
	_, s = vclock.Mint(s, "coord", vclock.Write{Value: []byte("v"), Context: s.Context()})
	return s
}

// A key's candidate is persisted: writes of the request path leave it as
// it is, and it survives a crash, a snapshot and a crash after the
// snapshot; deleting the key forgets it.
func TestCandidatePersists(t *testing.T) {
	clk := newFakeClock()
	dir := t.TempDir()
	e := gcEngine(t, dir, clk)
	s := overwritten(candidateMinActors)
	applyT(t, e, "k", s)
	applyT(t, e, "few", overwritten(candidateMinActors-1))
	e.MarkSynced(0, clk.Now())
	if st := collectT(t, e); st != (CollectStats{Noted: 1}) {
		t.Fatalf("collect: %+v, want one candidate noted", st)
	}
	want := e.shards[0].cands["k"]
	if want == nil || !want.upTo.Equal(vclock.ContextOnly(s)) || want.confirmed != 0 {
		t.Fatalf("candidate %+v", want)
	}
	check := func(when string) {
		t.Helper()
		got := e.shards[0].cands["k"]
		if got == nil || got.at != want.at || got.confirmed != want.confirmed || !got.upTo.Equal(want.upTo) {
			t.Fatalf("%s: candidate %+v, want %+v", when, got, want)
		}
	}
	clk.Advance(time.Second)
	_, s = vclock.Mint(s, "coord", vclock.Write{Value: []byte("v3"), Context: s.Context()})
	applyT(t, e, "k", s)
	check("after a write")
	crash(t, e)
	e = gcEngine(t, dir, clk)
	check("after a crash")
	e.MarkSynced(0, clk.Now())
	if st := collectT(t, e); st != (CollectStats{Noted: 1}) {
		t.Fatalf("collect after a sync: %+v, want the candidate confirmed", st)
	}
	want = e.shards[0].cands["k"]
	if want.confirmed == 0 {
		t.Fatal("not confirmed")
	}
	if err := e.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	crash(t, e)
	e = gcEngine(t, dir, clk)
	defer e.Close()
	check("after a snapshot and a crash")
	if _, err := e.Update(t.Context(), []byte("k"), func(vclock.Siblings) (vclock.Siblings, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if c, ok := e.shards[0].cands["k"]; ok {
		t.Fatalf("deleted key kept its candidate %+v", c)
	}
}

// A hot key is pruned up to its candidate once the candidate was confirmed
// by a full sync more than a grace ago, whatever was written since. A hint
// made after the candidate was noted, by a replica that had not yet seen
// the write the candidate's entries record, still carries an overwritten
// version live: pruning before it expires would bring that value back. So
// the grace counts from the confirmation, not from the candidate.
func TestCollectHotKeyWaitsForLateHints(t *testing.T) {
	clk := newFakeClock() // the grace of gcEngine is 24 h
	e := gcEngine(t, t.TempDir(), clk)
	defer e.Close()
	var old vclock.Siblings
	for i := range candidateMinActors {
		_, old = vclock.Mint(old, fmt.Sprintf("gone%d", i), vclock.Write{Value: []byte("old"), Context: old.Context()})
	}
	_, s := vclock.Mint(old, "coord", vclock.Write{Value: []byte("new"), Context: old.Context()})
	applyT(t, e, "k", s)
	e.MarkSynced(0, clk.Now())
	clk.Advance(time.Second)
	if st := collectT(t, e); st != (CollectStats{Noted: 1}) { // noted at T
		t.Fatalf("collect: %+v, want a candidate", st)
	}
	// T+1s: replica B, which never saw coord's write, takes a write with
	// no context and keeps a hint of its set for this node.
	clk.Advance(time.Second)
	_, hint := vclock.Mint(old, "b", vclock.Write{Value: []byte("b")})
	// T+2s: anti-entropy merges B's set here; then a full sync.
	clk.Advance(time.Second)
	applyT(t, e, "k", hint)
	clk.Advance(time.Second)
	e.MarkSynced(0, clk.Now())
	if st := collectT(t, e); st != (CollectStats{Noted: 1}) {
		t.Fatalf("collect after the sync: %+v, want the candidate confirmed", st)
	}
	confirmed := time.Unix(0, e.shards[0].cands["k"].confirmed)
	// The key stays hot: written every hour; another actor writes once,
	// after the candidate, and is overwritten.
	for h := range 24 {
		clk.Advance(time.Hour)
		actor := "coord"
		if h == 20 {
			actor = "later"
		}
		cur := e.Get([]byte("k"))
		_, next := vclock.Mint(cur, actor, vclock.Write{Value: []byte("hot"), Context: cur.Context()})
		applyT(t, e, "k", next)
		e.MarkSynced(0, clk.Now())
		if st := collectT(t, e); st.Pruned != 0 && clk.Now().Sub(confirmed) <= 24*time.Hour {
			t.Fatalf("pruned less than a grace after the confirmation: %+v", st)
		}
	}
	// The hint, made before the confirmation and less than a grace old
	// had the rule counted from T, arrives now: its overwritten
	// versions must stay overwritten.
	applyT(t, e, "k", hint)
	for _, v := range e.Get([]byte("k")) {
		if string(v.Value) == "old" {
			t.Fatalf("an overwritten value came back: %v", e.Get([]byte("k")))
		}
	}
	clk.Advance(2 * time.Hour)
	e.MarkSynced(0, clk.Now())
	if st := collectT(t, e); st.Pruned != 1 {
		t.Fatalf("collect a grace after the confirmation: %+v, want the key pruned", st)
	}
	got := e.Get([]byte("k"))
	for _, v := range got {
		if v.Context.Get("gone0") != 0 {
			t.Fatalf("pruned set %v: want the gone actors pruned", got)
		}
	}
	if got.Context().Get("later") == 0 {
		t.Fatalf("pruned set %v lost the entry of an actor that wrote after the candidate", got)
	}
}
