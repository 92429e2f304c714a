package storagetest_test

import (
	"testing"

	"github.com/ringkv/ringkv/internal/vfs/vfstest"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/storage/storagetest"
)

func TestMemConformance(t *testing.T) {
	storagetest.RunStoreTests(t, func(*testing.T) storagetest.Store {
		return storagetest.NewMem(storagetest.Partitions, storagetest.Partitioner)
	})
}

func TestEngineConformance(t *testing.T) {
	storagetest.RunStoreTests(t, func(t *testing.T) storagetest.Store {
		cfg := storage.DefaultConfig()
		cfg.Dir = t.TempDir()
		cfg.NodeID = "n1"
		cfg.Partitions = storagetest.Partitions
		cfg.Partitioner = storagetest.Partitioner
		e, err := storage.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	})
}

// The engine on the crash-simulating filesystem keeps the same contract,
// so recovery tests that run on it test the real thing.
func TestEngineOnCrashFSConformance(t *testing.T) {
	storagetest.RunStoreTests(t, func(t *testing.T) storagetest.Store {
		cfg := storage.DefaultConfig()
		cfg.Dir = "/data"
		cfg.FS = vfstest.NewCrashFS()
		cfg.NodeID = "n1"
		cfg.Partitions = storagetest.Partitions
		cfg.Partitioner = storagetest.Partitioner
		e, err := storage.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	})
}
