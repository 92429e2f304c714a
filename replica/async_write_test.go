package replica_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/vclock"
)

// syncGatedStore is a Store whose writes become durable only when the test
// says so (replica.AsyncUpdater), or fail to.
type syncGatedStore struct {
	replica.Store
	gate chan error // one value per write made durable (nil) or failed
	// returned, when not nil, is closed as the wait of the (one) write
	// returns.
	returned chan struct{}
}

func (g syncGatedStore) UpdateAsync(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, func(context.Context) error, error) {
	next, err := g.Update(ctx, key, fn)
	if err != nil {
		return nil, nil, err
	}
	return next, func(ctx context.Context) error {
		if g.returned != nil {
			defer close(g.returned)
		}
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
// replicas before its own copy is durable, yet answers only once its own
// copy is durable too (it is always among the W), and a failed local sync
// fails the write.
func TestAsyncLocalWriteOverlapsSends(t *testing.T) {
	synctest.Test(t, testAsyncLocalWriteOverlapsSends)
}

func testAsyncLocalWriteOverlapsSends(t *testing.T) {
	gate := make(chan error)
	c := newCluster(t, 3, 3, func(cfg *replica.Config) {
		if cfg.Self == "n1" {
			cfg.Store = syncGatedStore{Store: cfg.Store, gate: gate}
		}
	})
	key := c.keyOn("async", "n1")

	done := make(chan error, 1)
	go func() {
		_, err := c.put("n1", key, "x", replica.WriteOptions{W: 2})
		done <- err
	}()
	synctest.Wait()
	// Sent while n1's own sync is pending: n2 and n3 hold it...
	for _, n := range []string{"n2", "n3"} {
		if got := values(c.stores[n].Get(key)); !slices.Contains(got, "x") {
			t.Fatalf("%s lacks the write while n1 syncs: %v", n, got)
		}
	}
	// ...but W=2 met by them is not an answer without n1's copy.
	select {
	case err := <-done:
		t.Fatalf("answered before the coordinator's copy was durable: %v", err)
	default:
	}
	gate <- nil
	if err := <-done; err != nil {
		t.Fatalf("W=2 after the local sync: %v", err)
	}

	// A local sync that fails fails the write, though n2 and n3 acked.
	go func() {
		_, err := c.put("n1", key, "y", replica.WriteOptions{W: 2})
		done <- err
	}()
	synctest.Wait()
	gate <- errors.New("disk full")
	err := <-done
	var qe *replica.QuorumError
	if !errors.As(err, &qe) || qe.Failures["n1"] == nil {
		t.Fatalf("a failed local sync: %v; want a quorum error naming n1", err)
	}
}

// TestAsyncLocalWriteAlone: with one replica (N=1) the coordinator sends
// nothing and waits for its own copy in line; it still answers only once
// the copy is durable, and a failed or late sync is a quorum error naming
// the node, as with replicas to send to.
func TestAsyncLocalWriteAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan error)
		c := newCluster(t, 1, 1, func(cfg *replica.Config) {
			cfg.Store = syncGatedStore{Store: cfg.Store, gate: gate}
		})
		key := []byte("alone")
		type outcome struct {
			res replica.Result
			err error
		}
		done := make(chan outcome, 1)
		put := func(ctx context.Context, v string) {
			go func() {
				res, err := c.nodes["n1"].Put(ctx, key, []byte(v), replica.WriteOptions{})
				done <- outcome{res, err}
			}()
			synctest.Wait()
		}
		put(context.Background(), "x")
		select {
		case o := <-done:
			t.Fatalf("answered before the copy was durable: %v", o.err)
		default:
		}
		gate <- nil
		if o := <-done; o.err != nil || o.res.Replies != 1 || !slices.Equal(values(o.res.Siblings), []string{"x"}) {
			t.Fatalf("put after the sync: %+v, %v; want x with 1 reply", o.res, o.err)
		}

		put(context.Background(), "y")
		gate <- errors.New("disk full")
		var qe *replica.QuorumError
		if o := <-done; !errors.As(o.err, &qe) || qe.Need != 1 || qe.Got != 0 || qe.Failures["n1"] == nil {
			t.Fatalf("a failed sync: %v; want a quorum error naming n1, need 1, got 0", o.err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		put(ctx, "z")
		// Waiting here blocks the whole bubble: its clock jumps to the deadline.
		if o := <-done; !errors.As(o.err, &qe) || !errors.Is(qe.Failures["n1"], context.DeadlineExceeded) ||
			!strings.Contains(qe.Failures["n1"].Error(), "no answer before the deadline") {
			t.Fatalf("a sync past the deadline: %v; want a quorum error naming n1's deadline", o.err)
		}
		if got := c.nodes["n1"].Stats().QuorumFailures; got != 2 {
			t.Errorf("%d quorum failures counted, want 2", got)
		}
	})
}

// TestLocalWriteWaitEndsAtClose: a write whose only replica is this node,
// waiting for its copy to become durable, ends with a quorum error naming
// the node when the coordinator closes, and Close returns only once it
// has: under a request context that can never end (the RESP front end's)
// and under one with a deadline (the HTTP front end's), which Close does
// not end by itself.
func TestLocalWriteWaitEndsAtClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"endless", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Hour)
		}},
	} {
		t.Run(tc.name, inBubble(func(t *testing.T) {
			gate, returned := make(chan error), make(chan struct{})
			c := newCluster(t, 1, 1, func(cfg *replica.Config) {
				cfg.Store = syncGatedStore{Store: cfg.Store, gate: gate, returned: returned}
			})
			ctx, cancel := tc.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := c.nodes["n1"].Put(ctx, []byte("k"), []byte("v"), replica.WriteOptions{})
				done <- err
			}()
			synctest.Wait()
			closed := make(chan error, 1)
			go func() { closed <- c.nodes["n1"].Close() }()
			if err := <-closed; err != nil {
				t.Fatal(err)
			}
			// The wait itself has returned by the time Close does; the
			// write then still unwinds to its answer.
			select {
			case <-returned:
			default:
				t.Fatal("Close returned while a local write still waited for its copy")
			}
			err := <-done
			var qe *replica.QuorumError
			if !errors.As(err, &qe) || !errors.Is(qe.Failures["n1"], context.Canceled) ||
				strings.Contains(err.Error(), "deadline") {
				t.Fatalf("a write whose wait Close ended: %v; want a quorum error naming n1's canceled local write", err)
			}
		}))
	}
}

// deadlineFailStore is a Store whose writes fail, as a disk failure,
// exactly when the wait for them ends.
type deadlineFailStore struct {
	replica.Store
	fail error
}

func (s deadlineFailStore) UpdateAsync(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, func(context.Context) error, error) {
	next, err := s.Update(ctx, key, fn)
	if err != nil {
		return nil, nil, err
	}
	return next, func(ctx context.Context) error {
		<-ctx.Done()
		return s.fail
	}, nil
}

// TestLocalWriteDiskFailureAtDeadline: a disk failure that arrives as the
// request's deadline passes is reported as that failure, not as the
// deadline.
func TestLocalWriteDiskFailureAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errDisk := errors.New("disk failed")
		c := newCluster(t, 1, 1, func(cfg *replica.Config) {
			cfg.Store = deadlineFailStore{Store: cfg.Store, fail: errDisk}
		})
		for _, ctx := range []context.Context{context.Background(), t.Context()} {
			_, err := c.nodes["n1"].Put(ctx, []byte("k"), []byte("v"), replica.WriteOptions{})
			var qe *replica.QuorumError
			if !errors.As(err, &qe) || !errors.Is(qe.Failures["n1"], errDisk) {
				t.Fatalf("a disk failure at the deadline: %v; want a quorum error naming n1's disk failure", err)
			}
		}
	})
}
