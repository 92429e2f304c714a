package node

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// TestStoreLimitsAreBadRequests: a peer's store of a key over the limit is
// refused by the engine, and replica sees the refusal as a bad request.
func TestStoreLimitsAreBadRequests(t *testing.T) {
	cfg := storage.DefaultConfig()
	cfg.Dir, cfg.NodeID = t.TempDir(), "n1"
	cfg.Partitions, cfg.Partitioner = 1, func([]byte) int { return 0 }
	cfg.MaxKeyBytes = 1024
	e, err := storage.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	_, set := vclock.Mint(nil, "peer", vclock.Write{Value: []byte("v")})
	_, err = limitedStore{e}.Apply(t.Context(), bytes.Repeat([]byte("k"), 5<<20), set)
	if !errors.Is(err, replica.ErrBadRequest) || !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("5 MiB key: %v, want ErrBadRequest wrapping storage.ErrTooLarge", err)
	}
	if _, err := (limitedStore{e}).Apply(t.Context(), []byte("k"), set); err != nil {
		t.Fatalf("small key: %v", err)
	}
}
