package replica_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
	"github.com/ringkv/ringkv/vclock"
)

// countingSink records the targets it was asked to keep hints for.
type countingSink struct{ n atomic.Int32 }

func (s *countingSink) StoreHint(context.Context, string, []byte, vclock.Siblings) error {
	s.n.Add(1)
	return nil
}

// TestHintOnlyForRingMembers: a peer asking this node to keep hints for a
// made-up node name would make it open one hint log per name (20,500 names
// exhausted the file descriptors, and the node could not restart). A hint
// is accepted only for a current ring member.
func TestHintOnlyForRingMembers(t *testing.T) {
	members := []string{"n1", "n2", "n3", "n4"}
	pl := replicatest.NewPlacement(members, 3, 16)
	hs := &countingSink{}
	cfg := replica.DefaultConfig()
	cfg.Self = "n1"
	cfg.Placement = func() replica.Placement { return pl }
	cfg.Store = replicatest.NewStore("inc-n1")
	cfg.Transport = replica.TransportFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
		return replica.Response{}, errors.New("no network in this test")
	})
	cfg.Hints = hs
	co, err := replica.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = co.Close() })
	_, set := vclock.Mint(nil, "inc-n2", vclock.Write{Value: []byte("v")})
	store := func(target string) error {
		_, err := co.Handle(t.Context(), "n2", replica.Request{Kind: replica.KindStore, Key: []byte("k"), Siblings: set, HintFor: target})
		return err
	}
	for _, name := range []string{"made-up", "n5", "n1x"} {
		if err := store(name); !errors.Is(err, replica.ErrBadRequest) {
			t.Errorf("hint for %q: err = %v, want ErrBadRequest", name, err)
		}
	}
	if n := hs.n.Load(); n != 0 {
		t.Fatalf("%d hints kept for non-members", n)
	}
	for _, name := range members[1:] {
		if err := store(name); err != nil {
			t.Errorf("hint for member %s: %v", name, err)
		}
	}
	if n := hs.n.Load(); n != 3 {
		t.Fatalf("%d hints kept for members, want 3", n)
	}
}
