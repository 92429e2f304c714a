package replica_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// TestAAERestoresWipedReplica: a replica whose store was wiped gets every
// key back from one pass of its own driver; the next exchanges find the
// trees equal and cost one call each.
func TestAAERestoresWipedReplica(t *testing.T) { synctest.Test(t, testAAERestoresWipedReplica) }

func testAAERestoresWipedReplica(t *testing.T) {
	c := newAECluster(t, 3, 3, func(cfg *replica.AEConfig) { cfg.Interval = time.Minute })
	var keys, deleted [][]byte
	want := map[string]vclock.Siblings{}
	for i := range 500 {
		k := []byte(fmt.Sprintf("key-%d", i))
		var res replica.Result
		if i%7 == 0 { // some deletes too
			c.mustPut("n1", k, "v", replica.WriteOptions{W: replica.QuorumAll})
			r, err := c.nodes["n2"].Delete(t.Context(), k, replica.WriteOptions{W: replica.QuorumAll})
			if err != nil {
				t.Fatal(err)
			}
			res = r
		} else {
			res = c.mustPut("n1", k, fmt.Sprint("v", i), replica.WriteOptions{W: replica.QuorumAll})
		}
		if i%7 == 0 {
			// Tombstones alone are not sent to a replica lacking the key:
			// there is no value there for them to delete.
			deleted = append(deleted, k)
			continue
		}
		keys, want[string(k)] = append(keys, k), res.Siblings
	}
	c.drain()
	c.wipe(t, "n3")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.ae["n3"].Run(ctx) }()
	time.Sleep(time.Minute - time.Millisecond) // one pass, spread over the interval
	synctest.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := c.stores["n3"].Len(); n != len(keys) {
		t.Fatalf("n3 holds %d keys after a pass, want %d", n, len(keys))
	}
	c.sameEverywhere(t, keys, want)
	for _, k := range deleted {
		if got := c.stores["n3"].Get(k); got != nil {
			t.Fatalf("tombstones of %s sent to the wiped replica: %v", k, got)
		}
	}
	st := c.ae["n3"].Stats()
	t.Logf("stats after the pass: %+v", st)
	if st.KeysRepaired != uint64(len(keys)) || st.ExchangeFailures != 0 || st.Exchanges != 2*aeParts || st.LastFullPass.IsZero() {
		t.Fatalf("stats %+v: want %d keys repaired, %d exchanges, a full pass", st, len(keys), 2*aeParts)
	}
	if st.PartitionsSynced != aeParts || st.Partitions != aeParts {
		t.Fatalf("%d of %d partitions synced, want all %d", st.PartitionsSynced, st.Partitions, aeParts)
	}
	for _, s := range c.ae["n3"].Status() {
		if s.LastFull.IsZero() || s.LastError != "" || s.Synced.IsZero() {
			t.Fatalf("partition status %+v", s)
		}
	}

	before := c.calls.count("n1", "", 0)
	for _, res := range c.exchangeAll(t, "n1") {
		if !res.InSync || res.Calls != 1 || res.KeysRepaired != 0 {
			t.Fatalf("exchange after repair: %+v, want in sync in one call", res)
		}
	}
	if got := c.calls.count("n1", "", 0) - before; got != 2*aeParts {
		t.Fatalf("%d calls for %d in-sync exchanges", got, 2*aeParts)
	}
}

// TestAAEMissingKeysBothWays: each side lacks keys the other has, and
// holds its own concurrent version of some: one exchange leaves both with
// the merge of both sides.
func TestAAEMissingKeysBothWays(t *testing.T) { synctest.Test(t, testAAEMissingKeysBothWays) }

func testAAEMissingKeysBothWays(t *testing.T) {
	c := newAECluster(t, 2, 2, nil)
	const p = 5
	keys := keysIn(t, c.place, "k", p, 60)
	want := map[string]vclock.Siblings{}
	for i, k := range keys {
		a, b := set("inc-n1", fmt.Sprint("a", i)), set("inc-n2", fmt.Sprint("b", i))
		switch i % 3 {
		case 0: // only on n1
			c.apply(t, "n1", k, a)
			want[string(k)] = a
		case 1: // only on n2
			c.apply(t, "n2", k, b)
			want[string(k)] = b
		default: // concurrent versions: siblings after the merge
			c.apply(t, "n1", k, a)
			c.apply(t, "n2", k, b)
			want[string(k)] = vclock.Merge(a, b)
		}
	}
	res, err := c.ae["n1"].Exchange(t.Context(), p, "n2")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	// Pulled: n2-only keys and the divergent ones; pushed: n1-only keys
	// and the divergent ones, merged.
	if res.InSync || res.KeysPulled != 40 || res.KeysPushed != 40 || res.KeysRepaired != 80 {
		t.Fatalf("result %+v, want 40 pulled and 40 pushed", res)
	}
	c.sameEverywhere(t, keys, want)
	for i, k := range keys {
		if i%3 == 2 && len(c.stores["n2"].Get(k)) != 2 {
			t.Fatalf("%s: want two siblings", k)
		}
	}
	res, err = c.ae["n2"].Exchange(t.Context(), p, "n1")
	if err != nil || !res.InSync || res.Calls != 1 {
		t.Fatalf("second exchange: %+v, %v; want in sync in one call", res, err)
	}
}

// TestAAETombstonesNotSentWhereKeyAbsent: a set of tombstones alone is
// neither pushed to a replica that lacks the key nor pulled by one, however
// fresh (there is no value there for it to delete, and a replica that
// collected it would get it back from one whose grace ends later, for
// good); a tombstone whose key the other replica holds alive is repaired
// like any set.
func TestAAETombstonesNotSentWhereKeyAbsent(t *testing.T) {
	synctest.Test(t, testAAETombstonesNotSentWhereKeyAbsent)
}

func testAAETombstonesNotSentWhereKeyAbsent(t *testing.T) {
	c := newAECluster(t, 2, 2, nil)
	const p = 9
	keys := keysIn(t, c.place, "t", p, 2)
	absent, held := keys[0], keys[1]
	_, live := vclock.Mint(nil, "inc-n1", vclock.Write{Value: []byte("v")})
	_, tomb := vclock.Mint(live, "inc-n1", vclock.Write{Tombstone: true, Context: live.Context()})
	c.apply(t, "n1", absent, tomb)
	c.apply(t, "n1", held, tomb)
	c.apply(t, "n2", held, live)

	for _, dir := range [][2]string{{"n1", "n2"}, {"n2", "n1"}, {"n1", "n2"}} {
		if _, err := c.ae[dir[0]].Exchange(t.Context(), p, dir[1]); err != nil {
			t.Fatal(err)
		}
		if got := c.stores["n2"].Get(absent); got != nil {
			t.Fatalf("after %s exchanged with %s: tombstones sent where the key was absent: %v", dir[0], dir[1], got)
		}
		if got := c.stores["n2"].Get(held); !got.Equal(tomb) {
			t.Fatalf("after %s exchanged with %s: n2 holds %v for a deleted key, want the tombstone", dir[0], dir[1], got)
		}
	}
	// The other way: n2 holds the tombstones, n1 lacks the key.
	c2 := newAECluster(t, 2, 2, nil)
	c2.apply(t, "n2", absent, tomb)
	res, err := c2.ae["n1"].Exchange(t.Context(), p, "n2")
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.stores["n1"].Get(absent); got != nil || res.KeysRepaired != 0 || c2.calls.count("n1", "n2", replica.KindFetch) != 0 {
		t.Fatalf("tombstones pulled where the key was absent: %v (%+v)", got, res)
	}
}

// TestAAEPeerDown: a pass skips a peer that liveness reports down, sends
// it nothing, and marks none of its partitions synced; once it is back,
// the next pass marks each partition with the earliest start of its
// exchanges.
func TestAAEPeerDown(t *testing.T) { synctest.Test(t, testAAEPeerDown) }

func testAAEPeerDown(t *testing.T) {
	var mu sync.Mutex
	synced := map[int]int{}
	c := newAECluster(t, 3, 3, func(cfg *replica.AEConfig) {
		cfg.Interval = 640 * time.Millisecond
		if cfg.Self == "n1" {
			cfg.OnSynced = func(_ context.Context, p int) {
				mu.Lock()
				synced[p]++
				mu.Unlock()
			}
		}
	})
	c.mustPut("n1", []byte("k"), "v", replica.WriteOptions{W: replica.QuorumAll})
	c.drain()
	c.live.SetAlive("n3", false)
	t0 := time.Now()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.ae["n1"].Run(ctx) }()
	time.Sleep(639 * time.Millisecond) // the first pass: one partition every 10ms
	synctest.Wait()
	if n := c.calls.count("n1", "n3", 0); n != 0 {
		t.Fatalf("%d calls to the down peer", n)
	}
	if n := c.calls.count("n1", "n2", replica.KindTree); n != aeParts {
		t.Fatalf("%d tree calls to n2, want %d", n, aeParts)
	}
	for p := range aeParts {
		if m := c.stores["n1"].Marks(p); len(m) != 0 {
			t.Fatalf("partition %d marked synced with n3 down: %v", p, m)
		}
	}
	for _, s := range c.ae["n1"].Status() {
		if !s.LastFull.IsZero() || s.LastExchange.IsZero() {
			t.Fatalf("partition %d: LastFull %v, LastExchange %v; want no full exchange, one exchange", s.Partition, s.LastFull, s.LastExchange)
		}
	}
	if st := c.ae["n1"].Stats(); !st.LastFullPass.IsZero() || st.PartitionsSynced != 0 {
		t.Fatalf("stats with a peer down: %+v", st)
	}

	c.live.SetAlive("n3", true)
	time.Sleep(640 * time.Millisecond) // the second pass
	synctest.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for p := range aeParts {
		m := c.stores["n1"].Marks(p)
		// The partition's exchanges of the second pass start at one fake
		// instant, so the round they complete is marked with it. When the
		// pass did n3 first, that exchange had already completed a round
		// with n2's exchange of the first pass, marked with its start.
		first := t0.Add(time.Duration(p) * 10 * time.Millisecond)
		second := first.Add(640 * time.Millisecond)
		switch {
		case len(m) == 1 && m[0].Equal(second):
		case len(m) == 2 && m[0].Equal(first) && m[1].Equal(second) && c.place.Replicas(p)[0] == "n3":
		default:
			t.Fatalf("partition %d (replicas %v) marked at %v; want %v (after %v if n3 came first)", p, c.place.Replicas(p), m, second, first)
		}
		mu.Lock()
		n := synced[p]
		mu.Unlock()
		if n != len(m) {
			t.Fatalf("OnSynced ran %d times for partition %d, want %d", n, p, len(m))
		}
	}
}

// TestAAEMarkSyncedMinStart: MarkSynced is called only once every other
// replica completed an exchange, with the earliest of their starts, and
// again only when that advances; a failed exchange does not count.
func TestAAEMarkSyncedMinStart(t *testing.T) { synctest.Test(t, testAAEMarkSyncedMinStart) }

func testAAEMarkSyncedMinStart(t *testing.T) {
	c := newAECluster(t, 3, 3, nil)
	const p = 3
	st := c.stores["n1"]
	ex := func(peer string) error {
		_, err := c.ae["n1"].Exchange(t.Context(), p, peer)
		return err
	}
	t1 := time.Now()
	if err := ex("n2"); err != nil {
		t.Fatal(err)
	}
	if m := st.Marks(p); len(m) != 0 {
		t.Fatalf("marked after one of two peers: %v", m)
	}
	time.Sleep(time.Second)
	c.net.Partition("n1", "n3")
	if err := ex("n3"); !errors.Is(err, replica.ErrUnreachable) {
		t.Fatalf("exchange with a cut-off peer: %v", err)
	}
	if m := st.Marks(p); len(m) != 0 {
		t.Fatalf("marked after a failed exchange: %v", m)
	}
	c.net.Heal()
	time.Sleep(time.Second)
	if err := ex("n3"); err != nil {
		t.Fatal(err)
	}
	if m := st.Marks(p); len(m) != 1 || !m[0].Equal(t1) {
		t.Fatalf("marks %v, want one at the first exchange's start %v", m, t1)
	}
	t3 := time.Now()
	time.Sleep(time.Second)
	if err := ex("n2"); err != nil {
		t.Fatal(err)
	}
	if m := st.Marks(p); len(m) != 2 || !m[1].Equal(t3) {
		t.Fatalf("marks %v, want a second at n3's exchange start %v", m, t3)
	}
	if s := c.ae["n1"].Stats(); s.ExchangeFailures != 1 || s.Exchanges != 4 || s.PartitionsSynced != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestAAEOneExchangePerPartition: a second exchange of a partition waits
// for the first; another partition's runs meanwhile.
func TestAAEOneExchangePerPartition(t *testing.T) { synctest.Test(t, testAAEOneExchangePerPartition) }

func testAAEOneExchangePerPartition(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	inflight, peak := map[int32]int{}, map[int32]int{}
	c := newAECluster(t, 3, 3, nil)
	inner := replica.Transport(c.net.Transport("n1"))
	a, err := replica.NewAntiEntropy(replica.AEConfig{
		Self: "n1", Partitions: aeParts, Placement: func() replica.Placement { return c.place },
		Store: c.stores["n1"], Tree: c.stores["n1"],
		Transport: replica.TransportFunc(func(ctx context.Context, to string, req replica.Request) (replica.Response, error) {
			mu.Lock()
			inflight[req.Partition]++
			peak[req.Partition] = max(peak[req.Partition], inflight[req.Partition])
			mu.Unlock()
			defer func() {
				mu.Lock()
				inflight[req.Partition]--
				mu.Unlock()
			}()
			<-gate
			return inner.Call(ctx, to, req)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, run := range []struct {
		p    int
		peer string
	}{{1, "n2"}, {1, "n3"}, {1, "n2"}, {2, "n2"}} {
		wg.Go(func() {
			if _, err := a.Exchange(t.Context(), run.p, run.peer); err != nil {
				t.Error(err)
			}
		})
	}
	synctest.Wait()
	mu.Lock()
	if inflight[1] != 1 || inflight[2] != 1 {
		t.Errorf("in flight: partition 1 %d, partition 2 %d; want 1 and 1", inflight[1], inflight[2])
	}
	mu.Unlock()
	close(gate)
	wg.Wait()
	if peak[1] != 1 || peak[2] != 1 {
		t.Fatalf("peak concurrent calls per partition %v, want 1", peak)
	}
	if s := a.Stats(); s.Exchanges != 4 {
		t.Fatalf("%d exchanges, want 4", s.Exchanges)
	}
}

// TestAAERateLimit: repairs go no faster than RateBytes (fake time), and
// not much slower.
func TestAAERateLimit(t *testing.T) { synctest.Test(t, testAAERateLimit) }

func testAAERateLimit(t *testing.T) {
	const rateBytes = 50_000
	c := newAECluster(t, 2, 2, func(cfg *replica.AEConfig) {
		cfg.RateBytes = rateBytes
		cfg.BatchBytes = 16 << 10
	})
	const p = 11
	val := string(make([]byte, 2000))
	for i, k := range keysIn(t, c.place, "big", p, 200) {
		if i%2 == 0 {
			c.apply(t, "n1", k, set("inc-n1", val))
		} else {
			c.apply(t, "n2", k, set("inc-n2", val))
		}
	}
	start := time.Now()
	res, err := c.ae["n1"].Exchange(t.Context(), p, "n2")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	want := time.Duration(float64(res.Bytes) / rateBytes * float64(time.Second))
	t.Logf("%d bytes repaired in %v (%.0f B/s); at the rate %v", res.Bytes, took, float64(res.Bytes)/took.Seconds(), want)
	if res.KeysRepaired != 200 {
		t.Fatalf("%d keys repaired, want 200", res.KeysRepaired)
	}
	// The bucket starts empty, so the whole amount waits for the rate.
	if took < want-time.Second/10 || took > want+2*time.Second {
		t.Fatalf("took %v for %d bytes at %d B/s (want about %v)", took, res.Bytes, rateBytes, want)
	}
}

// TestAAELargeLeaves: with a small MaxKeysPerCall, groups of leaves split
// and a leaf holding more keys than one call carries is compared page by
// page; everything converges.
func TestAAELargeLeaves(t *testing.T) { synctest.Test(t, testAAELargeLeaves) }

func testAAELargeLeaves(t *testing.T) {
	c := newAECluster(t, 2, 2, func(cfg *replica.AEConfig) { cfg.MaxKeysPerCall = 3 })
	const p = 4
	// Ten keys in one leaf, alternating sides, and a spread of others.
	var keys [][]byte
	leaf := uint32(0)
	for _, k := range keysIn(t, c.place, "spread", p, 300) {
		if len(keys) == 0 {
			leaf = replicatest.Leaf(k)
		}
		keys = append(keys, k)
	}
	same := 0
	for i := 0; same < 10; i++ {
		k := []byte(fmt.Sprintf("leaf-%d", i))
		if c.place.Partition(k) == p && replicatest.Leaf(k) == leaf {
			keys = append(keys, k)
			same++
		}
	}
	for i, k := range keys {
		node := []string{"n1", "n2"}[i%2]
		c.apply(t, node, k, set("inc-"+node, "v"))
	}
	res, err := c.ae["n1"].Exchange(t.Context(), p, "n2")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.KeysRepaired != len(keys) {
		t.Fatalf("%d keys repaired, want %d", res.KeysRepaired, len(keys))
	}
	c.sameEverywhere(t, keys, nil)
	if res, err := c.ae["n2"].Exchange(t.Context(), p, "n1"); err != nil || !res.InSync {
		t.Fatalf("after repair: %+v, %v", res, err)
	}
}

// TestAAEExchangeRefusals: an exchange needs a partition of the ring and
// two of its replicas; a peer without a tree refuses with ErrNoTree.
func TestAAEExchangeRefusals(t *testing.T) { synctest.Test(t, testAAEExchangeRefusals) }

func testAAEExchangeRefusals(t *testing.T) {
	c := newAECluster(t, 4, 2, nil)
	a := c.ae["n1"]
	var notMine, mine int
	for p := range aeParts {
		if slices.Contains(c.place.Replicas(p), "n1") {
			mine = p
		} else {
			notMine = p
		}
	}
	other := c.place.Replicas(mine)[1]
	if other == "n1" {
		other = c.place.Replicas(mine)[0]
	}
	for _, tc := range []struct {
		p    int
		peer string
		want error
	}{
		{-1, other, replica.ErrBadRequest},
		{aeParts, other, replica.ErrBadRequest},
		{notMine, c.place.Replicas(notMine)[0], replica.ErrNotReplica},
		{mine, "n1", replica.ErrNotReplica},
	} {
		if _, err := a.Exchange(t.Context(), tc.p, tc.peer); !errors.Is(err, tc.want) {
			t.Errorf("exchange of %d with %s: %v, want %v", tc.p, tc.peer, err, tc.want)
		}
	}
	// A peer whose coordinator has no tree.
	noTree := newCluster(t, 2, 2)
	b, err := replica.NewAntiEntropy(replica.AEConfig{Self: "n1", Partitions: aeParts,
		Placement: func() replica.Placement { return noTree.place }, Store: noTree.stores["n1"],
		Tree: noTree.stores["n1"], Transport: noTree.net.Transport("n1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exchange(t.Context(), 0, "n2"); !errors.Is(err, replica.ErrNoTree) {
		t.Fatalf("exchange with a peer without a tree: %v, want ErrNoTree", err)
	}
}
