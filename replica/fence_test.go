package replica_test

import (
	"bytes"
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// gatedStore is a Store whose writes of one key, the first time, call
// hold before touching the data: a test uses it to stop a request in the
// middle and act at that exact point.
type gatedStore struct {
	*replicatest.Store
	key  []byte
	once atomic.Bool
	hold func()
}

func (s *gatedStore) gate(key []byte) {
	if bytes.Equal(key, s.key) && s.once.CompareAndSwap(false, true) {
		s.hold()
	}
}

func (s *gatedStore) Apply(ctx context.Context, key []byte, set vclock.Siblings) (vclock.Siblings, error) {
	s.gate(key)
	return s.Store.Apply(ctx, key, set)
}

func (s *gatedStore) Update(ctx context.Context, key []byte, fn func(vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, error) {
	s.gate(key)
	return s.Store.Update(ctx, key, fn)
}

// TestFence: a placement swap through Fence waits for every store and
// local write that read the old placement: once Fence returns, they are in
// the local store, so a transfer that scans the store after the swap
// cannot miss them. The store is stopped mid-Apply while Fence is called.
func TestFence(t *testing.T) {
	for _, op := range []string{"store", "put"} {
		t.Run("op="+op, func(t *testing.T) {
			key := []byte("fenced")
			entered, release := make(chan struct{}), make(chan struct{})
			st := &gatedStore{Store: replicatest.NewStore("inc-n1"), key: key, hold: func() {
				close(entered)
				<-release
			}}
			old := replicatest.NewTransitionPlacement([]string{"n1", "n2", "n3"}, nil, 3, 8, 1)
			next := replicatest.NewTransitionPlacement([]string{"n1", "n2", "n3"}, []string{"n1", "n2", "n3", "n4"}, 3, 8, 2)
			var place atomic.Pointer[replicatest.Placement]
			place.Store(old)
			cfg := replica.DefaultConfig()
			cfg.Self, cfg.Store = "n1", st
			cfg.Placement = func() replica.Placement { return place.Load() }
			cfg.Transport = replica.TransportFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
				return replica.Response{}, nil // every peer acknowledges
			})
			co, err := replica.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = co.Close() })

			done := make(chan error, 1)
			go func() {
				if op == "store" {
					_, set := vclock.Mint(nil, "inc-n2", vclock.Write{Value: []byte("v")})
					_, err := co.Handle(context.Background(), "n2", replica.Request{Kind: replica.KindStore, Key: key, Siblings: set, Epoch: 1})
					done <- err
					return
				}
				_, err := co.Put(context.Background(), key, []byte("v"), replica.WriteOptions{W: 1})
				done <- err
			}()
			<-entered // the request read the old placement and is inside the store

			var swapped atomic.Bool
			var sawKey atomic.Bool
			fenced := make(chan struct{})
			go func() {
				co.Fence(func() {
					sawKey.Store(st.Get(key) != nil)
					place.Store(next)
					swapped.Store(true)
				})
				close(fenced)
			}()
			// Give a broken fence every chance to run swap early.
			for i := 0; i < 1000 && !swapped.Load(); i++ {
				runtime.Gosched()
			}
			if swapped.Load() {
				t.Fatal("Fence swapped the placement while a request under the old one was writing")
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			<-fenced
			if !sawKey.Load() {
				t.Fatal("when the placement was swapped the store lacked the write made under the old one")
			}
		})
	}
}
