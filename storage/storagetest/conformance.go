package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ringkv/ringkv/internal/fnv1a"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// Partitions is the partition count RunStoreTests expects stores to have.
const Partitions = 4

// Partitioner is the partition function RunStoreTests expects (FNV-1a).
func Partitioner(k []byte) int {
	return int(fnv1a.Sum32(k) % Partitions)
}

// RunStoreTests checks the Store contract on stores made by open, which
// must return an empty store partitioned by Partitioner into Partitions.
func RunStoreTests(t *testing.T, open func(t *testing.T) Store) {
	t.Run("apply merges", func(t *testing.T) { testApplyMerges(t, open(t)) })
	t.Run("bad input", func(t *testing.T) { testBadInput(t, open(t)) })
	t.Run("update replaces, error writes nothing, nil deletes", func(t *testing.T) { testUpdate(t, open(t)) })
	t.Run("concurrent mints see each other", func(t *testing.T) { testConcurrentMints(t, open(t)) })
	t.Run("range and stats by partition", func(t *testing.T) { testRangeStats(t, open(t)) })
}

func testApplyMerges(t *testing.T, s Store) {
	_, a := vclock.Mint(nil, "x", vclock.Write{Value: []byte("a")})
	_, b := vclock.Mint(nil, "y", vclock.Write{Value: []byte("b")})
	if _, err := s.Apply(t.Context(), []byte("k"), a); err != nil {
		t.Fatal(err)
	}
	got, err := s.Apply(t.Context(), []byte("k"), b)
	if err != nil || !got.Equal(vclock.Merge(a, b)) || !s.Get([]byte("k")).Equal(got) {
		t.Fatalf("Apply = %v, %v", got, err)
	}
	if again, err := s.Apply(t.Context(), []byte("k"), a); err != nil || !again.Equal(got) {
		t.Fatalf("re-Apply = %v, %v", again, err)
	}
	if s.Get([]byte("absent")) != nil {
		t.Fatal("absent key has a value")
	}
}

func testBadInput(t *testing.T, s Store) {
	bad := vclock.Siblings{{Dot: vclock.Dot{Actor: "a"}}}
	if _, err := s.Apply(t.Context(), []byte("k"), bad); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("invalid set: %v", err)
	}
	if _, err := s.Apply(t.Context(), nil, nil); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("empty key: %v", err)
	}
}

func testUpdate(t *testing.T, s Store) {
	_, a := vclock.Mint(nil, s.Incarnation(), vclock.Write{Value: []byte("a")})
	if _, err := s.Apply(t.Context(), []byte("k"), a); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err := s.Update(t.Context(), []byte("k"), func(vclock.Siblings) (vclock.Siblings, error) { return nil, boom })
	if !errors.Is(err, boom) || !s.Get([]byte("k")).Equal(a) {
		t.Fatalf("failed Update: %v, key now %v", err, s.Get([]byte("k")))
	}
	if _, err := s.Update(t.Context(), []byte("k"), func(vclock.Siblings) (vclock.Siblings, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if s.Get([]byte("k")) != nil {
		t.Fatal("Update to nil did not delete")
	}
}

func testConcurrentMints(t *testing.T, s Store) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				_, err := s.Update(t.Context(), []byte("hot"), func(cur vclock.Siblings) (vclock.Siblings, error) {
					_, next := vclock.Mint(cur, s.Incarnation(), vclock.Write{Value: fmt.Append(nil, w, i)})
					return next, nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(s.Get([]byte("hot"))); n != 40 {
		t.Fatalf("%d siblings, want 40", n)
	}
}

func testRangeStats(t *testing.T, s Store) {
	want := make([]int64, Partitions)
	for i := range 50 {
		k := fmt.Appendf(nil, "key%d", i)
		_, v := vclock.Mint(nil, "x", vclock.Write{Value: k})
		if _, err := s.Apply(t.Context(), k, v); err != nil {
			t.Fatal(err)
		}
		want[Partitioner(k)]++
	}
	stats := s.PartitionStats()
	for p := range Partitions {
		n := int64(0)
		s.Range(p, func(k []byte, _ vclock.Siblings) bool {
			if Partitioner(k) != p {
				t.Errorf("key %q ranged in partition %d", k, p)
			}
			n++
			return true
		})
		if n != want[p] || stats[p].Keys != want[p] || (n > 0 && stats[p].Bytes <= 0) {
			t.Errorf("partition %d: ranged %d, stats %+v, want %d keys", p, n, stats[p], want[p])
		}
	}
}
