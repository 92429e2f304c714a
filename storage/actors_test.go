package storage

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ringkv/ringkv/vclock"
)

// concurrentSet returns a set of one version per actor, all concurrent,
// each with a context naming ctxActor.
func concurrentSet(ctxActor string, actors ...string) vclock.Siblings {
	var s vclock.Siblings
	for i, a := range actors {
		_, s = vclock.Mint(s, a, vclock.Write{Value: []byte{byte(i)}, WallTime: int64(i)})
	}
	for i := range s {
		s[i].Context = vclock.Clock{{Actor: ctxActor, Counter: 5}}
	}
	return s
}

// checkItem fails unless it gives back key, recv and s under table tab.
func checkItem(t *testing.T, tab *actorTable, it item, k, key string, recv int64, s vclock.Siblings) {
	t.Helper()
	got := it.siblingsIn(tab.table())
	if k != key || it.recv() != recv {
		t.Fatalf("key %q recv %d, want %q %d", k, it.recv(), key, recv)
	}
	if msg := sameItemSet(got, s); msg != "" {
		t.Fatal(msg)
	}
}

// TestActorTableFull fills small tables partway through a set, by count
// and by bytes: the actors past the bounds are written inline, and every
// set comes back exactly, also sets mixing table and inline actors.
func TestActorTableFull(t *testing.T) {
	for _, c := range []struct {
		name               string
		maxActors, maxByte int
	}{{"count", 2, 1 << 20}, {"bytes", 100, 5}} {
		t.Run(c.name, func(t *testing.T) {
			tab := newActorTable(c.maxActors, c.maxByte)
			s1 := concurrentSet("ab", "ab", "cd", "ef") // "ef" does not fit
			it1, k1 := tab.newItem("k1", s1, 10)
			if st := tab.stats(); st.Actors != 2 || st.Bytes != 4 {
				t.Fatalf("after the first set: %+v, want 2 actors of 4 bytes", st)
			}
			s2 := concurrentSet("gh", "ef", "gh", "ab")
			it2, k2 := tab.newItem("k2", s2, 20)
			checkItem(t, tab, it1, k1, "k1", 10, s1)
			checkItem(t, tab, it2, k2, "k2", 20, s2)
			if st := tab.stats(); st.Actors != 2 || st.Bytes != 4 {
				t.Fatalf("a full table took more actors: %+v", st)
			}
			// The same set encoded by a table with room is shorter: the
			// full table's blob holds "ef" and "gh" inline.
			roomy, _ := newActorTable(100, 100).newItem("k2", s2, 20)
			if full, ok := len(it2.bytes()), len(roomy.bytes()); full <= ok {
				t.Fatalf("blob of %d bytes with a full table, %d with room: want actors inline", full, ok)
			}
		})
	}
}

// TestActorTableSkipsContextActors: an actor only a context names stays
// out of the table (a client may name any), and is read back all the
// same; once a dot names it, it enters the table and contexts use it.
func TestActorTableSkipsContextActors(t *testing.T) {
	tab := newActorTable(100, 1<<20)
	s := concurrentSet("client-chosen", "a", "b")
	it, k := tab.newItem("k", s, 1)
	checkItem(t, tab, it, k, "k", 1, s)
	if st := tab.stats(); st.Actors != 2 {
		t.Fatalf("table holds %d actors, want the 2 dots' actors", st.Actors)
	}
	if _, ok := tab.ref("client-chosen", false); ok {
		t.Fatal("a context-only actor entered the table")
	}
	inline := len(it.bytes())
	s = concurrentSet("a", "a", "b") // "a" is in the table now
	it, k = tab.newItem("k", s, 1)
	checkItem(t, tab, it, k, "k", 1, s)
	if got := len(it.bytes()); got >= inline {
		t.Fatalf("blob of %d bytes with the context actor in the table, %d inline", got, inline)
	}
}

// TestActorTableConcurrent adds and looks up actors from many goroutines
// (run with -race): every actor keeps one number, and the table gives it
// back, whether the lookup met it in the published map or pending.
func TestActorTableConcurrent(t *testing.T) {
	const workers, perWorker = 8, 300
	tab := newActorTable(1<<16, 4<<20)
	var wg sync.WaitGroup
	ids := make([]map[string]uint32, workers)
	for w := range workers {
		ids[w] = make(map[string]uint32)
		wg.Go(func() {
			for i := range perWorker {
				// Workers share half the actors: they race to add them.
				a := fmt.Sprintf("actor-%d", i)
				if i%2 == 1 {
					a = fmt.Sprintf("actor-%d-%d", w, i)
				}
				for range 3 {
					id, ok := tab.ref(a, true)
					if !ok {
						t.Errorf("%s refused by a table with room", a)
						return
					}
					if prev, seen := ids[w][a]; seen && prev != id {
						t.Errorf("%s numbered %d, then %d", a, prev, id)
						return
					}
					ids[w][a] = id
				}
			}
		})
	}
	wg.Wait()
	list := tab.table()
	for w := range ids {
		for a, id := range ids[w] {
			if list[id] != a {
				t.Fatalf("%s numbered %d, which the table names %q", a, id, list[id])
			}
			if got, ok := tab.ref(a, false); !ok || got != id {
				t.Fatalf("lookup of %s gives %d %v, want %d", a, got, ok, id)
			}
		}
	}
	want := perWorker/2 + workers*perWorker/2
	if st := tab.stats(); st.Actors != want || len(list) != want {
		t.Fatalf("%d actors (list %d), want %d", st.Actors, len(list), want)
	}
	if _, ok := tab.ref(strings.Repeat("z", maxTableActorBytes+1), true); ok {
		t.Fatal("an actor over maxTableActorBytes entered the table")
	}
}

// TestStatsActors: an engine's Stats report the process's actor table,
// which holds the actor of a version just written.
func TestStatsActors(t *testing.T) {
	e := openT(t, testConfig(t, t.TempDir()))
	defer e.Close()
	_, s := vclock.Mint(nil, "stats-actor", vclock.Write{Value: []byte("v")})
	if _, err := e.Apply(t.Context(), []byte("k"), s); err != nil {
		t.Fatal(err)
	}
	st := e.Stats().Actors
	if st.MaxActors != maxTableActors || st.MaxBytes != maxTableBytes || st.Actors < 1 || st.Bytes < len("stats-actor") {
		t.Fatalf("Stats().Actors = %+v", st)
	}
	if _, ok := actors.ref("stats-actor", false); !ok {
		t.Fatal("the written version's actor is not in the table")
	}
}

// TestUpdateTreeIgnoresChangedCur: should an Update's fn change cur in
// place (which it must not), the hash tree and the stats still take away
// what the key held, not what fn left in cur.
func TestUpdateTreeIgnoresChangedCur(t *testing.T) {
	e := openT(t, testConfig(t, t.TempDir()))
	defer e.Close()
	put(t, e, "k", "one")
	_, err := e.Update(t.Context(), []byte("k"), func(cur vclock.Siblings) (vclock.Siblings, error) {
		next := slices.Clone(cur)
		next[0].Tombstone, next[0].Value = true, nil
		cur[0].Dot.Counter += 1000 // the misuse
		cur[0].Context = vclock.Clock{{Actor: "x", Counter: 1}}
		return next, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p := e.cfg.Partitioner([]byte("k"))
	if !sameTrees(refTree(e, p), treeLevels(t, e, p)) {
		t.Fatal("hash tree differs from one built from the contents")
	}
	if got, want := e.Stats().Bytes, int64(len("k")+e.Get([]byte("k")).Size()); got != want {
		t.Fatalf("stats bytes %d, want %d", got, want)
	}
}
