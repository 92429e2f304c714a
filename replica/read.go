package replica

import (
	"context"
	"fmt"
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
	nodes, epoch := q.nodes, rt.epoch // copied: the callbacks below must not capture rt
	// callCtx bounds the calls, which may outlive the answer (read
	// repair); it is canceled only once they are collected.
	callCtx, callCancel := c.detached(ctx)
	ctx, cancel := c.requestCtx(ctx, callCtx)
	defer cancel()

	targets := plan(nodes, c.cfg.Self, c.alive)
	if qe := checkReach("get", q, targets, nil, false, c.alive); qe != nil {
		callCancel()
		c.stats.quorumFailures.Add(1)
		return Result{}, qe
	}
	held := 0
	if c.cfg.ReadHedge > 0 {
		held = holdBack(q, targets)
	}
	t := q.tally()
	sets := make(map[string]vclock.Siblings, len(nodes))
	results := make(chan reply, len(nodes))
	launched := 0
	ask := func(node string) {
		launched++
		c.callAsync(callCtx, node, Request{Kind: KindRead, Key: key, Epoch: epoch}, func(resp Response, err error) {
			results <- reply{node: node, set: resp.Siblings, err: err} // buffered for every node
		})
	}
	for _, tg := range targets {
		switch tg.act {
		case actLocal:
			sets[tg.node] = c.cfg.Store.Get(key)
			t.ack(tg.node)
		case actDown:
			c.stats.replicaFailures.Add(1)
			t.fail(tg.node, downErr(tg.node))
		case actSend:
			ask(tg.node)
		}
	}
	var hedge <-chan time.Time
	if held > 0 && t.state() == pending {
		timer := time.NewTimer(c.cfg.ReadHedge)
		defer timer.Stop()
		hedge = timer.C
	}
	askHeld := func() {
		if held == 0 {
			return
		}
		c.stats.readHedges.Add(1)
		for _, tg := range targets {
			if tg.act == actLater {
				ask(tg.node)
			}
		}
		held, hedge = 0, nil
	}
	received := 0
	for t.state() == pending {
		select {
		case r := <-results:
			received++
			if r.err != nil {
				c.stats.replicaFailures.Add(1)
				t.fail(r.node, r.err)
				askHeld()
				continue
			}
			sets[r.node] = r.set
			t.ack(r.node)
		case <-hedge:
			askHeld()
		case <-ctx.Done():
			for _, tg := range targets {
				if held > 0 && tg.act == actLater {
					// Only when ReadHedge is not shorter than the deadline.
					t.fail(tg.node, fmt.Errorf("not asked: the deadline came before the read's speculative retry (%v): %w", c.cfg.ReadHedge, ctx.Err()))
				}
			}
			t.expire(nodes, ctx.Err())
		}
	}
	var merged vclock.Siblings
	for _, n := range nodes {
		merged = vclock.Merge(merged, sets[n])
	}
	res := Result{Siblings: merged, Context: merged.Context(), Replies: len(t.acks)}
	var qerr error
	if t.state() == lost {
		c.stats.quorumFailures.Add(1)
		res, qerr = Result{}, t.err("get")
	}

	if !c.cfg.ReadRepair {
		callCancel()
		return res, qerr
	}
	outstanding := launched - received
	if outstanding == 0 && len(repairs(nodes, sets, merged)) == 0 {
		// Every node asked answered, with the same versions: a goroutine
		// would have nothing to wait for or repair.
		callCancel()
		return res, qerr
	}
	// From here on sets and results belong to the repair goroutine.
	c.bg.Go(func() {
		defer callCancel()
	collect:
		for ; outstanding > 0; outstanding-- {
			select {
			case r := <-results:
				if r.err == nil {
					sets[r.node] = r.set
				}
			case <-callCtx.Done():
				break collect // answers after the deadline are not repaired
			}
		}
		c.repair(callCtx, key, nodes, sets, epoch)
	})
	return res, qerr
}

// repair sends the merge of every set received to each node asked (a
// current or, during a change, pending replica) that answered with less.
// The local store is repaired directly. Repairing a pending replica is
// harmless: it is a replica after the change, and gets every write anyway.
func (c *Coordinator) repair(ctx context.Context, key []byte, nodes []string, sets map[string]vclock.Siblings, epoch uint64) {
	var final vclock.Siblings
	for _, n := range nodes {
		final = vclock.Merge(final, sets[n])
	}
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
