package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests of this file check that replicas converge on their own: a node
// killed with SIGKILL gets every write it missed (coordinator-kept hints,
// 3 nodes and N=3, where no stand-in is free); a node whose data directory
// was wiped is restored by anti-entropy; a delete a replica missed is not
// undone when that replica comes back after the tombstone grace; and a
// stand-in restarted after its hint was delivered does not bring a deleted
// value back. They read the counters of GET /v1/stats ("aae", "hints"),
// documented in docs/http-api.md.

// TestKilledNodeGetsMissedWrites kills n2 of the README's 3-node cluster
// (configs/dev-node*.yaml: N=3, so no node is free to stand in), writes
// 10,000 keys with W=2 through n1 and n3, restarts n2 on its data, and
// requires n2 to hold every key within 60 s, through the hints its
// coordinators kept for it (anti-entropy runs at its default 30 s).
func TestKilledNodeGetsMissedWrites(t *testing.T) {
	deadline := testDeadline(t, 3*time.Minute)
	servers := startCluster(t, deadline)
	n1, n2, n3 := servers[0], servers[1], servers[2]
	for _, s := range []*server{n1, n3} {
		waitMembers(t, deadline, s, map[string]string{"n1": "alive", "n2": "alive", "n3": "alive"})
	}
	n2.kill(t)
	for _, s := range []*server{n1, n3} {
		waitMembers(t, deadline, s, map[string]string{"n1": "alive", "n2": "dead", "n3": "alive"})
	}

	const n = 10_000
	ks := newKeySet("mw", 100)
	began := time.Now()
	o := putAll(ks, n, []string{n1.addrs["http"], n3.addrs["http"]}, "2")
	took := time.Since(began)
	t.Logf("wrote %d keys with W=2 through n1 and n3 while n2 was down in %s (%.0f keys/s): %s", n, took.Round(time.Millisecond), n/took.Seconds(), o)
	if o.failures() > 0 {
		t.Fatalf("writes with one replica down were refused: %s", o)
	}

	restartedAt := time.Now()
	n2 = startServer(t, "n2-restarted", n2.args...)
	n2.waitReady(t, deadline)
	t.Logf("n2 restarted: serving clients after %s", time.Since(restartedAt).Round(time.Millisecond))
	addr := n2.addrs["http"]
	var last convergeStats
	err := poll(earliest(restartedAt.Add(60*time.Second), deadline), func() error {
		st, err := statsOf(addr)
		if err != nil {
			return err
		}
		last = st
		if st.Keys != n {
			return fmt.Errorf("n2 holds %d of the %d keys written while it was down", st.Keys, n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("60 s after its restart: %v", err)
	}
	held := time.Since(restartedAt)
	o = readAll(ks, upTo(n), []string{addr}, "one")
	t.Logf("n2 held all %d keys %s after its restart; R=one reads of every key through n2 (done %s after the restart): %s",
		n, held.Round(time.Millisecond), time.Since(restartedAt).Round(time.Millisecond), o)
	if o.failures() > 0 {
		t.Errorf("R=one reads through the restarted n2: %s", o)
	}

	var kept, delivered int64
	for _, s := range []*server{n1, n3} {
		st, err := statsWithAAE(s.addrs["http"])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s hints %+v, aae %+v", s.name, *st.Hints, *st.AAE)
		kept += st.Hints.KeptByCoordinator
		delivered += st.Hints.Delivered
	}
	if last.AAE != nil {
		t.Logf("n2 aae %+v", *last.AAE)
	}
	t.Logf("n1 and n3 kept %d hints for n2 as coordinators and delivered %d", kept, delivered)
	if kept == 0 {
		t.Errorf("n1 and n3 report hints.kept_by_coordinator 0: n2 was restored by something else")
	}
	for _, s := range []*server{n3, n2, n1} {
		if code := s.stop(t, 30*time.Second); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", s.name, code)
		}
	}
}

// aaeKeys is the number of keys TestWipedNodeRestoredByAntiEntropy loads:
// 10,000, or RINGKV_E2E_AAE_KEYS (100000 for the figure in the docs).
func aaeKeys(t *testing.T) int {
	t.Helper()
	v := os.Getenv("RINGKV_E2E_AAE_KEYS")
	if v == "" {
		return 10_000
	}
	k, err := strconv.Atoi(v)
	if err != nil || k < 1 || k > 10_000_000 {
		t.Fatalf("RINGKV_E2E_AAE_KEYS=%q: want a count of keys, 1..10000000", v)
	}
	return k
}

// TestWipedNodeRestoredByAntiEntropy loads K keys into 3 nodes (N=3,
// aae.interval 2s), stops n3, deletes its data directory and starts it
// again under the same name and config: anti-entropy restores every key
// to it within a time proportional to K. The restore rate is logged.
func TestWipedNodeRestoredByAntiEntropy(t *testing.T) {
	k := aaeKeys(t)
	restoreLimit := 30*time.Second + time.Duration(k)*2*time.Millisecond
	deadline := testDeadline(t, 2*time.Minute+restoreLimit+time.Duration(k)*time.Millisecond)
	fsync := "interval"
	if v := os.Getenv("E2E_FSYNC"); v != "" {
		fsync = v
	}
	const interval = 2 * time.Second
	names := []string{"n1", "n2", "n3"}
	c := newElasticCluster(t, names, aaeConfig(fsync, interval, 0))
	t.Logf("storage.fsync %s, aae.interval %s, aae.rate_mb default, %d keys", fsync, interval, k)
	sw := newStopwatch(t)
	c.form(t, deadline, names...)
	sw.lap("3 nodes formed a cluster")

	ks := newKeySet("wk", 100)
	if err := setPipelined(ks, k, []string{c.respAddr("n1"), c.respAddr("n2"), c.respAddr("n3")}, 24); err != nil {
		t.Fatalf("loading %d keys: %v", k, err)
	}
	c.loaded(t, deadline, names, ks, k)
	sw.lap(fmt.Sprintf("%d keys loaded, 3 copies each", k))

	if code := c.server("n3").stop(t, 30*time.Second); code != 0 {
		t.Fatalf("n3 exited with %d after SIGTERM, want 0", code)
	}
	if err := os.RemoveAll(filepath.Join(c.dir, "n3")); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	c.restart(t, deadline, "n3").waitReady(t, deadline)
	ready := time.Since(began)
	sw.lap("n3 stopped, wiped and restarted")
	addr := c.httpAddr("n3")
	var held int64
	err := poll(earliest(began.Add(restoreLimit), deadline), func() error {
		st, err := statsOf(addr)
		if err != nil {
			return err
		}
		held = st.Keys
		if st.Keys != int64(k) {
			return fmt.Errorf("the wiped n3 holds %d of %d keys", st.Keys, k)
		}
		return nil
	})
	restored := time.Since(began)
	if err != nil {
		t.Fatalf("%s after its restart (limit %s): %v", restored.Round(time.Millisecond), restoreLimit, err)
	}
	t.Logf("wiped n3 restored: serving clients after %s, all %d keys after %s: %.0f keys/s from the restart (%.0f keys/s from serving)",
		ready.Round(time.Millisecond), held, restored.Round(time.Millisecond), float64(k)/restored.Seconds(), float64(k)/(restored-ready).Seconds())
	sw.lap("n3 holds every key")

	nodes := map[string]string{"n1": c.httpAddr("n1"), "n2": c.httpAddr("n2"), "n3": addr}
	st, err := statsAll(nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("aae after the restore: %s", aaeSummary(st))
	t.Logf("n3 transfer after the restore: %+v", st["n3"].Transfer)
	var repaired, repairedBytes int64
	for _, s := range st {
		repaired = max(repaired, s.AAE.KeysRepaired)
		repairedBytes += s.AAE.BytesRepaired
	}
	t.Logf("anti-entropy repaired %d bytes in all (%.1f MB/s over the restore)", repairedBytes, float64(repairedBytes)/mb/restored.Seconds())
	if repaired == 0 {
		t.Errorf("no node reports aae.keys_repaired > 0: n3 was restored by something else")
	}

	idx := upTo(k)
	if k > 10_000 {
		seed := rand.Uint64()
		t.Logf("sample seed %d", seed)
		r := rand.New(rand.NewPCG(seed, 0))
		r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		idx = idx[:1000]
	}
	o := readAll(ks, idx, []string{addr}, "one")
	t.Logf("R=one reads of %d keys through n3: %s", len(idx), o)
	if o.failures() > 0 {
		t.Errorf("R=one reads through the restored n3: %s", o)
	}

	cmd := exec.Command(binary, "ring", "--aae", "--node", addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	head, _, _ := strings.Cut(out.String(), "\n")
	t.Logf("ringkv ring --aae on n3: %v; %d lines, the first %q", err, strings.Count(out.String(), "\n"), head)
	if err != nil || !strings.Contains(out.String(), "KEYS REPAIRED") {
		t.Errorf("ringkv ring --aae --node n3: %v\n%.2000s", err, out.String())
	}
	c.stopAll(t, names...)
}

// TestMissedDeleteNotResurrected: a key is written to all 3 replicas, n3
// is killed, the key is deleted with W=2, and n3 comes back, still holding
// the old value, only after several tombstone graces (storage.tombstone_gc
// 3s) of anti-entropy between the two others. The tombstone must still be
// there (anti-entropy could not see n3 in sync), and once n3 has done a
// full pass the key is gone through every node.
func TestMissedDeleteNotResurrected(t *testing.T) {
	deadline := testDeadline(t, 3*time.Minute)
	const grace, interval = 3 * time.Second, time.Second
	names := []string{"n1", "n2", "n3"}
	c := newElasticCluster(t, names, aaeConfig("always", interval, grace))
	c.partitions = 31 // one anti-entropy pass a second: keep it cheap
	sw := newStopwatch(t)
	c.form(t, deadline, names...)
	sw.lap("3 nodes formed a cluster")
	nodes := map[string]string{}
	for _, n := range names {
		nodes[n] = c.httpAddr(n)
	}
	survivors := map[string]string{"n1": nodes["n1"], "n2": nodes["n2"]}

	const key = "deleted-while-n3-was-down"
	old := "old value " + newKeySet("x", 0).token
	sendKV(t, nodes["n1"], key, []byte(old), "all")
	waitKeys(t, deadline, nodes, 1, "every node holds the key")
	_, _, absentCtx, err := getKey(nodes["n1"], "never-written", "quorum")
	if err != nil {
		t.Fatal(err)
	}

	c.server("n3").kill(t)
	for _, n := range []string{"n1", "n2"} {
		waitMembers(t, deadline, c.server(n), map[string]string{"n1": "alive", "n2": "alive", "n3": "dead"})
	}
	sendKV(t, nodes["n1"], key, nil, "2")
	deletedAt := time.Now()
	base, err := statsAll(survivors)
	if err != nil {
		t.Fatal(err)
	}
	sw.lap("n3 killed, the key deleted with W=2")

	// Past the grace three times over (wall time: the grace is wall
	// time), with anti-entropy between n1 and n2 running all along: each
	// completes at least three exchanges per partition.
	var waited map[string]convergeStats
	eventuallyAAE(t, deadline, "three graces and three anti-entropy passes on n1 and n2", func() error {
		st, err := statsAll(survivors)
		if err != nil {
			return err
		}
		waited = st
		if d := time.Since(deletedAt); d < 3*grace {
			return fmt.Errorf("%s since the delete", d.Round(time.Millisecond))
		}
		for n, s := range st {
			if grew := s.AAE.Exchanges - base[n].AAE.Exchanges; grew < int64(3*s.AAE.Partitions) {
				return fmt.Errorf("%s: %d exchanges since the delete, want %d (3 x %d partitions)", n, grew, 3*s.AAE.Partitions, s.AAE.Partitions)
			}
		}
		return nil
	})
	t.Logf("%s after the delete: aae %s", time.Since(deletedAt).Round(time.Millisecond), aaeSummary(waited))
	// The key is the only one: "keys" counts its tombstone until it is
	// collected, which must wait for n3.
	for _, n := range []string{"n1", "n2"} {
		if waited[n].Keys != 1 {
			t.Errorf("%s holds %d keys: the tombstone was collected while n3 could not be synced", n, waited[n].Keys)
		}
	}
	code, body, ctx, err := getKey(nodes["n1"], key, "quorum")
	if err != nil || code != 404 || ctx == "" || ctx == absentCtx {
		t.Errorf("GET %s r=quorum via n1 with n3 down: %d %.200q context %q (a never-written key's is %q) %v; want 404 with the tombstone's context",
			key, code, body, ctx, absentCtx, err)
	}
	sw.lap("three graces passed; n1 and n2 still hold the tombstone")

	restartedAt := time.Now()
	c.restart(t, deadline, "n3").waitReady(t, deadline)
	sw.lap("n3 restarted, holding the old value")
	st := waitFullPassAfter(t, deadline, map[string]string{"n3": nodes["n3"]}, restartedAt.Truncate(time.Second), "n3 completes a full anti-entropy pass after its restart")
	t.Logf("n3 completed a full pass %s after its restart: aae %+v", time.Since(restartedAt).Round(time.Millisecond), *st["n3"].AAE)
	checkGone(t, nodes, key, old)
	sw.lap("the key is gone through every node")

	// Once every replica has held the tombstone in sync past the grace it
	// may be collected. Logged, not required: how soon depends on when
	// each replica received it.
	err = poll(earliest(time.Now().Add(20*time.Second), deadline), func() error {
		st, err := statsAll(nodes)
		if err != nil {
			return err
		}
		for _, n := range names {
			if st[n].Keys != 0 {
				return fmt.Errorf("keys per node %s", keyCounts(st))
			}
		}
		return nil
	})
	if err != nil {
		t.Logf("tombstone not collected everywhere 20 s after n3's full pass: %v", err)
	} else {
		t.Logf("tombstone collected on every node %s after n3's restart", time.Since(restartedAt).Round(time.Millisecond))
	}
	checkGone(t, nodes, key, old)
	c.stopAll(t, names...)
}

// TestStandInRestartDoesNotResurrect: 4 nodes, N=3. Key k's replicas are
// a, b, c and its stand-in is d. c is killed and k=v1 written with W=2, so
// d keeps a hint for c; c comes back and d delivers it. k is deleted with
// W=all and every replica collects the tombstone (grace 10s); then d is
// killed with SIGKILL and restarted: the hint it acknowledged must not be
// replayed (nor, being older than the grace, delivered), so k stays gone
// on every node through later anti-entropy passes.
func TestStandInRestartDoesNotResurrect(t *testing.T) {
	deadline := testDeadline(t, 3*time.Minute)
	const grace, interval = 10 * time.Second, 2 * time.Second
	names := []string{"n1", "n2", "n3", "n4"}
	c := newElasticCluster(t, names, aaeConfig("always", interval, grace))
	c.partitions = 61 // one anti-entropy pass every 2s: keep it cheap
	sw := newStopwatch(t)
	c.form(t, deadline, names...)
	sw.lap("4 nodes formed a cluster")
	nodes := map[string]string{}
	for _, n := range names {
		nodes[n] = c.httpAddr(n)
	}

	// n1 started the cluster and drives changes; it is never killed here.
	key, kp := pickKey(t, nodes["n1"], "stand-in", func(kp keyPlacementFB) bool {
		return len(kp.Replicas) == 3 && len(kp.Fallbacks) >= 1 && kp.Replicas[2] != "n1" && kp.Fallbacks[0] != "n1"
	})
	a, b, cn, d := kp.Replicas[0], kp.Replicas[1], kp.Replicas[2], kp.Fallbacks[0]
	t.Logf("key %s: partition %d, replicas %v, stand-in %s", key, kp.Partition, kp.Replicas, d)
	replicas := map[string]string{a: nodes[a], b: nodes[b], cn: nodes[cn]}
	alive := map[string]string{}
	for _, n := range names {
		alive[n] = "alive"
	}

	c.server(cn).kill(t)
	down := map[string]string{}
	for n, l := range alive {
		down[n] = l
	}
	down[cn] = "dead"
	for _, n := range []string{a, d} {
		waitMembers(t, deadline, c.server(n), down)
	}
	v1 := "v1 " + newKeySet("x", 0).token
	sendKV(t, nodes[a], key, []byte(v1), "2")
	eventually(t, deadline, d+" keeps a hint for "+cn, func() error {
		p, err := pendingHintsFor(nodes[d], cn)
		if err == nil && p == 0 {
			err = fmt.Errorf("%s holds no hint for %s", d, cn)
		}
		return err
	})
	dst, err := statsWithAAE(nodes[d])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s hints after the write: %+v", d, *dst.Hints)
	if dst.Hints.Pending < 1 {
		t.Errorf("%s reports hints.pending %d in /v1/stats while /v1/members lists a hint for %s", d, dst.Hints.Pending, cn)
	}
	sw.lap(cn + " killed; " + key + " written with W=2; " + d + " keeps a hint")

	c.restart(t, deadline, cn).waitReady(t, deadline)
	eventually(t, deadline, d+" delivers its hint to "+cn, func() error {
		p, err := pendingHintsFor(nodes[d], cn)
		if err == nil && p != 0 {
			err = fmt.Errorf("%s holds %d hints for %s", d, p, cn)
		}
		return err
	})
	st, err := statsWithAAE(nodes[d])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s hints after delivery: %+v", d, *st.Hints)
	if st.Hints.Delivered == 0 || st.Hints.DroppedExpired != 0 {
		t.Fatalf("%s hints %+v: the hint expired (grace %s) instead of being delivered; this test needs it delivered", d, *st.Hints, grace)
	}
	waitKeys(t, deadline, replicas, 1, "every replica holds "+key)
	sw.lap(cn + " restarted; the hint delivered")

	sendKV(t, nodes[a], key, nil, "all")
	deletedAt := time.Now()
	waitKeys(t, earliest(deletedAt.Add(grace+time.Minute), deadline), replicas, 0, "every replica collects the tombstone of "+key)
	t.Logf("every replica collected the tombstone %s after the delete (grace %s)", time.Since(deletedAt).Round(time.Millisecond), grace)
	sw.lap(key + " deleted with W=all; its tombstone collected")

	c.server(d).kill(t)
	c.restart(t, deadline, d).waitReady(t, deadline)
	dBack := time.Now()
	eventually(t, deadline, "the restarted "+d+" holds no hint for "+cn, func() error {
		p, err := pendingHintsFor(nodes[d], cn)
		if err == nil && p != 0 {
			err = fmt.Errorf("%s holds %d hints for %s", d, p, cn)
		}
		return err
	})
	if st, err := statsOf(nodes[d]); err == nil && st.Hints != nil {
		t.Logf("restarted %s hints: %+v", d, *st.Hints)
	}
	// Passes whose time is two intervals after d came back began after
	// it, whether last_full_pass is when a pass began or ended.
	st2 := waitFullPassAfter(t, deadline, replicas, dBack.Add(2*interval), "full anti-entropy passes on the replicas after "+d+" came back")
	t.Logf("aae after %s's restart: %s", d, aaeSummary(st2))
	sw.lap(d + " killed and restarted; replicas did full passes since")
	for _, n := range sortedNames(st2) {
		if st2[n].Keys != 0 {
			t.Errorf("%s holds %d keys after %s's restart: the deleted key came back", n, st2[n].Keys, d)
		}
	}
	checkGone(t, nodes, key, v1)
	c.stopAll(t, names...)
}
