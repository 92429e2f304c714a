package replicatest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/replica/replicatest"
)

// TestNetworkFaults checks each fault of the in-memory network against
// what the caller and the handler observe. Each case runs in a synctest
// bubble: the 50 ms deadline is fake time, which passes only once every
// goroutine of the call is blocked, so a loaded machine cannot make a
// healthy call miss it.
func TestNetworkFaults(t *testing.T) {
	ping := replica.Request{Kind: replica.KindPing}
	call := func(ctx context.Context, n *replicatest.Network, from, to string) error {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := n.Transport(from).Call(ctx, to, ping)
		return err
	}
	for _, tc := range []struct {
		name    string
		fault   func(n *replicatest.Network)
		from    string
		want    error // nil = success
		handled int32
	}{
		{"none", func(*replicatest.Network) {}, "a", nil, 1},
		{"cut forward", func(n *replicatest.Network) { n.Cut("a", "b") }, "a", replica.ErrUnreachable, 0},
		{"cut reply", func(n *replicatest.Network) { n.Cut("b", "a") }, "a", context.DeadlineExceeded, 1},
		{"partition", func(n *replicatest.Network) { n.Partition("b", "a") }, "a", replica.ErrUnreachable, 0},
		{"isolate", func(n *replicatest.Network) { n.Isolate("b") }, "a", replica.ErrUnreachable, 0},
		{"other link cut", func(n *replicatest.Network) { n.Partition("c", "b") }, "a", nil, 1},
		{"drop all", func(n *replicatest.Network) { n.Drop("", "", 1) }, "a", context.DeadlineExceeded, 0},
		{"drop to b", func(n *replicatest.Network) { n.Drop("", "b", 1) }, "a", context.DeadlineExceeded, 0},
		{"drop none", func(n *replicatest.Network) { n.Drop("a", "b", 0) }, "a", nil, 1},
		{"delay past deadline", func(n *replicatest.Network) { n.Delay("a", "", time.Hour) }, "a", context.DeadlineExceeded, 0},
		{"delay other sender", func(n *replicatest.Network) { n.Delay("c", "", time.Hour) }, "a", nil, 1},
		{"healed", func(n *replicatest.Network) { n.Isolate("b"); n.Drop("", "", 1); n.Heal() }, "a", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var handled atomic.Int32
				h := replica.HandlerFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
					handled.Add(1)
					return replica.Response{Replies: 1}, nil
				})
				n := replicatest.NewNetwork(7)
				for _, name := range []string{"a", "b", "c"} {
					n.Register(name, h)
				}
				tc.fault(n)
				start := time.Now()
				err := call(t.Context(), n, tc.from, "b")
				waited := time.Since(start)
				n.Wait()
				if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if got := handled.Load(); got != tc.handled {
					t.Errorf("handler ran %d times, want %d", got, tc.handled)
				}
				// In the bubble a call waits only for a deadline (or a
				// delay), never for the scheduler.
				wantWait := time.Duration(0)
				if errors.Is(tc.want, context.DeadlineExceeded) {
					wantWait = 50 * time.Millisecond
				}
				if waited != wantWait {
					t.Errorf("call took %v of bubble time, want %v", waited, wantWait)
				}
			})
		})
	}
}

// TestNetworkDropRate checks that Drop loses about the requested share of
// calls. A dropped call waits for its deadline; in the synctest bubble that
// is fake time, so only a dropped call can time out, whatever the load.
func TestNetworkDropRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := replica.HandlerFunc(func(context.Context, string, replica.Request) (replica.Response, error) {
			return replica.Response{}, nil
		})
		n := replicatest.NewNetwork(42)
		n.Register("b", h)
		n.Drop("a", "b", 0.3)
		lost := 0
		for range 500 {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
			_, err := n.Transport("a").Call(ctx, "b", replica.Request{Kind: replica.KindPing})
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				lost++
			case err != nil:
				t.Fatalf("call failed with %v, want success or a drop", err)
			}
			cancel()
		}
		n.Wait()
		if lost < 100 || lost > 220 {
			t.Errorf("lost %d of 500 calls at p=0.3", lost)
		}
	})
}
