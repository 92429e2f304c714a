package replicatest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/replica"
)

// Network is an in-memory replica transport between named nodes, with
// fault injection. Every call is encoded and decoded with the same codec
// as the TCP transport, so sender and receiver never share memory and a
// message the wire cannot carry fails here too.
//
// Faults, all between ordered pairs of nodes ("" in Drop and Delay matches
// any node):
//   - Cut(from, to): calls from -> to fail at once with ErrUnreachable, as a
//     refused connection does; calls to -> from are delivered and run, but
//     the answer is lost, so the caller waits for its deadline (an
//     asymmetric partition). Partition cuts both ways; Isolate cuts a node
//     from every other.
//   - Drop: the request is lost with probability p; the caller waits for
//     its deadline, as with a lost packet.
//   - Delay: the request is held for d before delivery.
//   - BreakAfter(from, to): the call runs on to, then the caller gets
//     ErrConnLost instead of the answer, as when the target crashes (or
//     its connection breaks) after it acted but before it replied.
//
// Heal removes every fault. Handlers keep running after their caller gave
// up, bounded by the caller's deadline, as on a real server; Wait waits for
// them.
type Network struct {
	mu       sync.Mutex // guards every field below except calls and running
	handlers map[string]replica.Handler
	cut      map[link]bool
	drop     map[link]float64
	delay    map[link]time.Duration
	broken   map[link]bool
	rng      *rand.Rand
	calls    atomic.Uint64
	running  sync.WaitGroup
}

// link is an ordered pair of node names.
type link struct{ from, to string }

// NewNetwork returns an empty network whose random drops use seed.
func NewNetwork(seed uint64) *Network {
	return &Network{
		handlers: map[string]replica.Handler{},
		cut:      map[link]bool{},
		drop:     map[link]float64{},
		delay:    map[link]time.Duration{},
		broken:   map[link]bool{},
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Register makes h serve calls addressed to node (replacing any earlier).
func (n *Network) Register(node string, h replica.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[node] = h
}

// Unregister removes node: calls to it fail with ErrUnknownPeer.
func (n *Network) Unregister(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.handlers, node)
}

// Transport returns node's endpoint for calling others.
func (n *Network) Transport(node string) *Endpoint { return &Endpoint{net: n, self: node} }

// Cut blocks traffic from one node to another (one direction): see
// Network.
func (n *Network) Cut(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[link{from, to}] = true
}

// Partition blocks calls between a and b in both directions.
func (n *Network) Partition(a, b string) {
	n.Cut(a, b)
	n.Cut(b, a)
}

// Isolate partitions node from every node registered now.
func (n *Network) Isolate(node string) {
	n.mu.Lock()
	var others []string
	for o := range n.handlers {
		if o != node {
			others = append(others, o)
		}
	}
	n.mu.Unlock()
	for _, o := range others {
		n.Partition(node, o)
	}
}

// Drop loses calls from one node to another with probability p (0..1).
func (n *Network) Drop(from, to string, p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop[link{from, to}] = p
}

// Delay holds calls from one node to another for d before delivery.
func (n *Network) Delay(from, to string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delay[link{from, to}] = d
}

// BreakAfter makes calls from one node to another run on the target and
// then fail with ErrConnLost, the answer lost: see Network.
func (n *Network) BreakAfter(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.broken[link{from, to}] = true
}

// Heal removes every cut, drop, delay and break.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.broken)
	clear(n.cut)
	clear(n.drop)
	clear(n.delay)
}

// Calls is the number of calls attempted so far.
func (n *Network) Calls() uint64 { return n.calls.Load() }

// Wait blocks until every handler started by a call has returned.
func (n *Network) Wait() { n.running.Wait() }

// faults looks up the handler and faults for a call.
func (n *Network) faults(from, to string) (h replica.Handler, cut, replyLost, dropped, broken bool, delay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h = n.handlers[to]
	broken = n.broken[link{from, to}]
	cut = n.cut[link{from, to}]
	replyLost = n.cut[link{to, from}]
	p := 0.0
	for _, l := range []link{{from, to}, {from, ""}, {"", to}, {"", ""}} {
		if v, ok := n.drop[l]; ok {
			p = v
			break
		}
	}
	dropped = p > 0 && n.rng.Float64() < p
	for _, l := range []link{{from, to}, {from, ""}, {"", to}, {"", ""}} {
		if v, ok := n.delay[l]; ok {
			delay = v
			break
		}
	}
	return h, cut, replyLost, dropped, broken, delay
}

// Endpoint is one node's side of a Network; it implements
// replica.Transport.
type Endpoint struct {
	net  *Network
	self string
}

var (
	_ replica.Transport   = (*Endpoint)(nil)
	_ replica.AsyncCaller = (*Endpoint)(nil)
)

// Go runs Call in a goroutine of the network's (Wait waits for it too)
// and hands its result to done, so that coordinators take their
// asynchronous path over this transport as over TCP.
func (e *Endpoint) Go(ctx context.Context, to string, req replica.Request, done func(replica.Response, error)) {
	e.net.running.Add(1)
	go func() {
		defer e.net.running.Done()
		done(e.Call(ctx, to, req))
	}()
}

// Call delivers req to node to through the network's faults.
func (e *Endpoint) Call(ctx context.Context, to string, req replica.Request) (replica.Response, error) {
	e.net.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return replica.Response{}, fmt.Errorf("replicatest: %v to %s: %w", req.Kind, to, err)
	}
	body, err := replica.MarshalRequest(req)
	if err != nil {
		return replica.Response{}, err
	}
	h, cut, replyLost, dropped, broken, delay := e.net.faults(e.self, to)
	switch {
	case h == nil:
		return replica.Response{}, fmt.Errorf("%w: %s", replica.ErrUnknownPeer, to)
	case cut:
		return replica.Response{}, fmt.Errorf("%w: %s -> %s is partitioned", replica.ErrUnreachable, e.self, to)
	case dropped:
		<-ctx.Done()
		return replica.Response{}, fmt.Errorf("replicatest: %v to %s dropped: %w", req.Kind, to, ctx.Err())
	}
	// The server side runs under the caller's deadline but not its
	// cancellation, as the TCP server does with the frame's budget.
	sctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if d, ok := ctx.Deadline(); ok {
		sctx, cancel = context.WithDeadline(sctx, d)
	}
	done := make(chan []byte, 1)
	e.net.running.Add(1)
	go func() {
		defer e.net.running.Done()
		defer cancel()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-sctx.Done():
				t.Stop()
				done <- nil
				return
			}
		}
		in, err := replica.UnmarshalRequest(body)
		var resp replica.Response
		if err == nil {
			resp, err = h.Handle(sctx, e.self, in)
		}
		out, merr := replica.MarshalReply(resp, err)
		if merr != nil {
			out, _ = replica.MarshalReply(replica.Response{}, fmt.Errorf("%w: encode reply: %v", replica.ErrInternal, merr))
		}
		if replyLost {
			return // the caller waits for its deadline
		}
		done <- out
	}()
	select {
	case out := <-done:
		if out == nil {
			// The delay outlasted the caller's deadline.
			return replica.Response{}, fmt.Errorf("replicatest: %v to %s delayed: %w", req.Kind, to, context.DeadlineExceeded)
		}
		if broken {
			return replica.Response{}, fmt.Errorf("replicatest: %v to %s ran, then: %w", req.Kind, to, replica.ErrConnLost)
		}
		return replica.UnmarshalReply(to, out)
	case <-ctx.Done():
		return replica.Response{}, fmt.Errorf("replicatest: %v to %s: %w", req.Kind, to, ctx.Err())
	}
}
