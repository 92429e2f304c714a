package replica

import (
	"context"
	"errors"
	"testing"
)

// TestClientFailsUnsentCallsAsNotSent: the calls whose frames the writer
// reports unsent fail with ErrNotSent (a forward may then try another
// replica), a late frame's as its deadline; the others keep waiting.
func TestClientFailsUnsentCallsAsNotSent(t *testing.T) {
	c := &clientConn{p: &peer{name: "n2"}, pending: map[uint64]waiter{}}
	chs := map[uint64]chan callResult{}
	for id := uint64(1); id <= 3; id++ {
		chs[id] = make(chan callResult, 1)
		c.pending[id] = waiter{ch: chs[id]}
	}
	c.failUnsent([]uint64{1}, errSendDeadline)
	c.failUnsent([]uint64{2, 99}, errors.New("connection reset")) // 99 gave up already
	for id, wantDeadline := range map[uint64]bool{1: true, 2: false} {
		select {
		case r := <-chs[id]:
			if !errors.Is(r.err, ErrNotSent) || !errors.Is(r.err, ErrConnLost) || errors.Is(r.err, context.DeadlineExceeded) != wantDeadline {
				t.Fatalf("call %d failed with %v", id, r.err)
			}
		default:
			t.Fatalf("call %d not answered", id)
		}
	}
	if _, ok := c.pending[3]; !ok || len(c.pending) != 1 {
		t.Fatalf("pending after: %v, want only call 3", c.pending)
	}
}
