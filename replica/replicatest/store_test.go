package replicatest_test

import (
	"context"
	"errors"
	"fmt"

	"testing"

	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/storage/storagetest"
	"github.com/ringkv/ringkv/vclock"
)

// conformingStore presents a replicatest.Store as a storagetest.Store so
// that the storage conformance suite holds the fake to the engine's
// contract. Range and PartitionStats are computed from the fake's own Scan
// (the view replica uses), and its invalid-argument error, which stands
// for storage.ErrInvalid in a layer that may not import storage, is
// reported as that.
type conformingStore struct{ *replicatest.Store }

var _ storagetest.Store = conformingStore{}

func (s conformingStore) Apply(ctx context.Context, key []byte, set vclock.Siblings) (vclock.Siblings, error) {
	out, err := s.Store.Apply(ctx, key, set)
	return out, asStorageErr(err)
}

func (s conformingStore) Update(ctx context.Context, key []byte, fn func(vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, error) {
	out, err := s.Store.Update(ctx, key, fn)
	return out, asStorageErr(err)
}

func asStorageErr(err error) error {
	if errors.Is(err, replicatest.ErrInvalid) {
		return fmt.Errorf("%w: %w", storage.ErrInvalid, err)
	}
	return err
}

// Range walks partition through Scan, a page of 7 keys at a time, so the
// paging is exercised too.
func (s conformingStore) Range(partition int, fn func(key []byte, set vclock.Siblings) bool) {
	var after []byte
	for {
		keys, sets, more := s.Scan(partition, after, 7, 1<<20)
		for i, k := range keys {
			if !fn(k, sets[i]) {
				return
			}
		}
		if !more || len(keys) == 0 {
			return
		}
		after = keys[len(keys)-1]
	}
}

func (s conformingStore) PartitionStats() []storage.PartitionStat {
	stats := make([]storage.PartitionStat, storagetest.Partitions)
	for p := range stats {
		s.Range(p, func(k []byte, set vclock.Siblings) bool {
			stats[p].Keys++
			stats[p].Bytes += int64(len(k) + set.Size())
			return true
		})
	}
	return stats
}

func TestStoreConformance(t *testing.T) {
	storagetest.RunStoreTests(t, func(*testing.T) storagetest.Store {
		s := replicatest.NewStore("n1")
		s.Partitioner = storagetest.Partitioner
		s.Partitions = storagetest.Partitions
		return conformingStore{s}
	})
}
