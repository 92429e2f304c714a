package replica_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// syncGatedStore is a Store whose writes become durable only when the test
// says so (replica.AsyncUpdater), or fail to.
type syncGatedStore struct {
	replica.Store
	gate chan error // one value per write made durable (nil) or failed
}

func (g syncGatedStore) UpdateAsync(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, func(context.Context) error, error) {
	next, err := g.Update(ctx, key, fn)
	if err != nil {
		return nil, nil, err
	}
	return next, func(ctx context.Context) error {
		select {
		case err := <-g.gate:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

// TestAsyncLocalWriteOverlapsSends: with a store that syncs
// asynchronously, the coordinator sends the new version to the other
// replicas before its own copy is durable, and counts its own
// acknowledgement only once it is: W=2 is met by two other replicas while
// the local sync is pending, W=all waits for it, and a failed local sync
// fails a W=all write.
func TestAsyncLocalWriteOverlapsSends(t *testing.T) {
	synctest.Test(t, testAsyncLocalWriteOverlapsSends)
}

func testAsyncLocalWriteOverlapsSends(t *testing.T) {
	gate := make(chan error, 4)
	c := newCluster(t, 3, 3, func(cfg *replica.Config) {
		if cfg.Self == "n1" {
			cfg.Store = syncGatedStore{Store: cfg.Store, gate: gate}
		}
	})
	key := c.keyOn("async", "n1")

	// W=2: answered by n2 and n3 while n1's own copy is not durable.
	res, err := c.put("n1", key, "x", replica.WriteOptions{W: 2})
	if err != nil {
		t.Fatalf("W=2 with the local sync pending: %v", err)
	}
	for _, n := range []string{"n2", "n3"} {
		got := c.stores[n].Get(key)
		if !slices.Contains(values(got), "x") {
			t.Fatalf("%s lacks the write answered at W=2: %v", n, values(got))
		}
	}
	if res.Replies < 2 {
		t.Fatalf("replies %d, want >= 2", res.Replies)
	}
	gate <- nil // the first write's local sync ends

	// W=all waits for the local sync.
	done := make(chan error, 1)
	go func() {
		_, err := c.put("n1", key, "y", withCtx(res.Context, replica.QuorumAll))
		done <- err
	}()
	synctest.Wait()
	select {
	case err := <-done:
		t.Fatalf("W=all answered before the local copy was durable: %v", err)
	default:
	}
	gate <- nil
	if err := <-done; err != nil {
		t.Fatalf("W=all after the local sync: %v", err)
	}

	// A local sync that fails is a failed acknowledgement.
	gate <- errors.New("disk full")
	_, err = c.put("n1", key, "z", replica.WriteOptions{W: replica.QuorumAll})
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || qe.Failures["n1"] == nil {
		t.Fatalf("W=all with a failed local sync: %v; want a quorum error naming n1", err)
	}
}
