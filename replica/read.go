package replica

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// Get reads key from its replicas and answers once R have replied, with
// the merge of their sets. It asks first only what R needs: this node's
// store when it is a replica (read in line), then the first live replicas
// of the preference list until R are asked. When one of those fails, it
// asks the others at once; when they have not all answered after
// Config.ReadHedge, it asks the others too (speculative retry). ReadHedge 0
// asks every replica at once. During a membership change it needs R of
// the current replicas and R of the replicas after the change (joint
// quorum, see quorumsFor), and asks first what each side needs. With
// ReadRepair, it then waits in the background, until the request's
// deadline, for the other nodes asked, and sends the merge of everything
// received to each one that answered with less; replicas never asked are
// left to anti-entropy.
func (c *Coordinator) Get(ctx context.Context, key []byte, o ReadOptions) (Result, error) {
	c.stats.gets.Add(1)
	if c.closed.Load() {
		return Result{}, ErrClosed
	}
	rt, err := c.route(key)
	if err != nil {
		return Result{}, err
	}
	q, err := quorumsFor(o.R, c.cfg.DefaultR, c.cfg.N, rt.reps, rt.pending, rt.targets)
	if err != nil {
		return Result{}, err
	}
	if res, ok := c.readLocal(key, q); ok {
		return res, nil
	}
	// callCtx bounds the calls, which may outlive the answer (read
	// repair); it is canceled only once they are collected.
	callCtx, callCancel := c.detached(ctx)
	ctx, cancel := c.requestCtx(ctx, callCtx)
	defer cancel()
	targets := plan(q.nodes, c.cfg.Self, c.alive)
	if qe := checkReach("get", q, targets, nil, false, c.alive); qe != nil {
		callCancel()
		c.stats.quorumFailures.Add(1)
		return Result{}, qe
	}
	// t and targets are kept out of r, so that they stay on this stack.
	t := q.tally()
	r := readRun{c: c, key: key, nodes: q.nodes, epoch: rt.epoch,
		sets: make(map[string]vclock.Siblings, len(q.nodes)), results: make(chan reply, len(q.nodes)), callCtx: callCtx}
	if c.cfg.ReadHedge > 0 {
		r.held = holdBack(q, targets)
	}
	r.start(targets, t)
	r.collect(ctx, targets, t)
	var merged vclock.Siblings
	for _, n := range r.nodes {
		merged = vclock.Merge(merged, r.sets[n])
	}
	res := Result{Siblings: merged, Replies: len(t.acks)}
	var qerr error
	if t.state() == lost {
		c.stats.quorumFailures.Add(1)
		res, qerr = Result{}, t.err("get")
	}
	r.repairLater(merged, callCancel)
	return res, qerr
}

// readLocal answers a read that this node's store alone satisfies and
// that would ask no other node at first: R is one, this node is a replica,
// no membership change is in progress, and the others would be held back
// (ReadHedge) or there are none. The general path would then read the
// store in line, meet its quorum at once, start no call and repair nothing
// (the merge of one set is that set); skipping it saves the contexts,
// tally, map and channel it sets up, most of a local read's cost. Replicas
// known down are counted as the general path counts them.
func (c *Coordinator) readLocal(key []byte, q quorums) (Result, bool) {
	if q.joint() || q.cur.need != 1 || !slices.Contains(q.nodes, c.cfg.Self) ||
		(len(q.nodes) > 1 && c.cfg.ReadHedge == 0) {
		return Result{}, false
	}
	for _, n := range q.nodes {
		if n != c.cfg.Self && !c.alive(n) {
			c.stats.replicaFailures.Add(1)
		}
	}
	set := c.cfg.Store.Get(key)
	return Result{Siblings: set, Replies: 1}, true
}

// readRun is one quorum read in flight: whom it asks, what they answered.
type readRun struct {
	c       *Coordinator
	key     []byte
	nodes   []string // q.nodes, copied: the callbacks must not capture the route
	epoch   uint64
	sets    map[string]vclock.Siblings // the answers, by node
	results chan reply                 // buffered for every node
	callCtx context.Context            // bounds the calls (see Get)
	// held is how many replicas wait for the speculative retry;
	// launched and received count the calls sent and answered.
	held, launched, received int
}

// ask sends a replica read to node; its answer lands in results.
func (r *readRun) ask(node string) {
	r.launched++
	results := r.results // the callback holds the channel, not r: r stays on Get's stack
	r.c.callAsync(r.callCtx, node, Request{Kind: KindRead, Key: r.key, Epoch: r.epoch}, func(resp Response, err error) {
		results <- reply{node: node, set: resp.Siblings, err: err} // buffered for every node
	})
}

// start reads the local store in line, counts the replicas down, and asks
// those first in line.
func (r *readRun) start(targets []target, t *tally) {
	for _, tg := range targets {
		switch tg.act {
		case actLocal:
			r.sets[tg.node] = r.c.cfg.Store.Get(r.key)
			t.ack(tg.node)
		case actDown:
			r.c.stats.replicaFailures.Add(1)
			t.fail(tg.node, downErr(tg.node))
		case actSend:
			r.ask(tg.node)
		}
	}
}

// askHeld asks the replicas held back, once: one of those asked failed,
// or they were slower than ReadHedge.
func (r *readRun) askHeld(targets []target) {
	if r.held == 0 {
		return
	}
	r.c.stats.readHedges.Add(1)
	for _, tg := range targets {
		if tg.act == actLater {
			r.ask(tg.node)
		}
	}
	r.held = 0
}

// collect counts answers until the quorum is met or lost, or ctx ends.
func (r *readRun) collect(ctx context.Context, targets []target, t *tally) {
	var hedge <-chan time.Time
	if r.held > 0 && t.state() == pending {
		timer := r.c.hedgeTimer()
		defer r.c.putHedgeTimer(timer)
		hedge = timer.C
	}
	for t.state() == pending {
		select {
		case rep := <-r.results:
			r.received++
			if rep.err != nil {
				r.c.stats.replicaFailures.Add(1)
				t.fail(rep.node, rep.err)
				r.askHeld(targets)
				hedge = nil
				continue
			}
			r.sets[rep.node] = rep.set
			t.ack(rep.node)
		case <-hedge:
			r.askHeld(targets)
			hedge = nil
		case <-ctx.Done():
			for _, tg := range targets {
				if r.held > 0 && tg.act == actLater {
					// Only when ReadHedge is not shorter than the deadline.
					t.fail(tg.node, fmt.Errorf("not asked: the deadline came before the read's speculative retry (%v): %w", r.c.cfg.ReadHedge, ctx.Err()))
				}
			}
			t.expire(r.nodes, ctx.Err())
		}
	}
}

// repairLater ends the read: with ReadRepair, and unless every node
// asked answered with the same versions, a goroutine waits for the
// outstanding answers until the request's deadline, merges them into
// merged (the answer's merge of the sets received in time) and repairs
// the nodes that answered with less. callCancel ends the calls once that
// is done.
func (r *readRun) repairLater(merged vclock.Siblings, callCancel context.CancelFunc) {
	c := r.c
	outstanding := r.launched - r.received
	if !c.cfg.ReadRepair || (outstanding == 0 && len(repairs(r.nodes, r.sets, merged)) == 0) {
		// Nothing to wait for or repair.
		callCancel()
		return
	}
	// From here on sets and results belong to the repair goroutine, which
	// holds copies of r's fields, not r: r stays on Get's stack.
	key, nodes, sets, results, callCtx, epoch := r.key, r.nodes, r.sets, r.results, r.callCtx, r.epoch
	c.bg.Go(func() {
		defer callCancel()
	collect:
		for ; outstanding > 0; outstanding-- {
			select {
			case rep := <-results:
				if rep.err == nil {
					sets[rep.node] = rep.set
					merged = vclock.Merge(merged, rep.set)
				}
			case <-callCtx.Done():
				break collect // answers after the deadline are not repaired
			}
		}
		c.repair(callCtx, key, nodes, sets, merged, epoch)
	})
}

// repair sends final, the merge of every set received, to each node asked
// (a current or, during a change, pending replica) that answered with
// less. The local store is repaired directly. Repairing a pending replica
// is harmless: it is a replica after the change, and gets every write
// anyway.
func (c *Coordinator) repair(ctx context.Context, key []byte, nodes []string, sets map[string]vclock.Siblings, final vclock.Siblings, epoch uint64) {
	var store Request
	for _, n := range repairs(nodes, sets, final) {
		var err error
		if n == c.cfg.Self {
			_, err = c.cfg.Store.Apply(ctx, key, final)
		} else {
			if store.Kind == 0 {
				store = storeRequest(key, final, epoch)
			}
			err = c.sendCopy(ctx, n, store)
		}
		if err != nil {
			c.stats.readRepairFailures.Add(1)
			c.log.Debug("read repair failed", "peer", n, "key", key, "err", err)
			continue
		}
		c.stats.readRepairs.Add(1)
	}
}

// hedgeTimer returns a timer that fires after Config.ReadHedge, reused
// from earlier reads when one is free.
func (c *Coordinator) hedgeTimer() *time.Timer {
	if t, ok := c.hedgeTimers.Get().(*time.Timer); ok {
		t.Reset(c.cfg.ReadHedge)
		return t
	}
	return time.NewTimer(c.cfg.ReadHedge)
}

// putHedgeTimer stops t and keeps it for a later read. After Stop no
// stale tick can be received from t.C (Go 1.23 timers, which this
// module's go version selects), so the next Reset starts clean.
func (c *Coordinator) putHedgeTimer(t *time.Timer) {
	t.Stop()
	c.hedgeTimers.Put(t)
}
