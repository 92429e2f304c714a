package replica

import (
	"context"

	"github.com/ringkv/ringkv/vclock"
)

// Get reads key from its replicas (this node's store included when it is
// one) in parallel, and answers once R have replied, with the merge of
// their sets. With ReadRepair, it then waits in the background, until the
// request's deadline, for the other replicas, and sends the merge of
// everything received to each replica that answered with less.
func (c *Coordinator) Get(ctx context.Context, key []byte, o ReadOptions) (Result, error) {
	c.stats.gets.Add(1)
	if c.closed.Load() {
		return Result{}, ErrClosed
	}
	rt, err := c.route(key)
	if err != nil {
		return Result{}, err
	}
	reps, epoch := rt.reps, rt.epoch // copied: the goroutines below must not capture rt
	need, err := need(o.R, c.cfg.DefaultR, c.cfg.N, len(reps))
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()

	targets := plan(reps, c.cfg.Self, c.alive)
	if reach := upCount(targets); reach < need {
		c.stats.quorumFailures.Add(1)
		return Result{}, unavailable("get", need, reach, targets)
	}
	t := newTally(need, reps)
	sets := make(map[string]vclock.Siblings, len(reps))
	results := make(chan reply, len(reps))
	callCtx, callCancel := c.detached(ctx)
	launched := 0
	for _, tg := range targets {
		switch tg.act {
		case actLocal:
			sets[tg.node] = c.cfg.Store.Get(key)
			t.ack(tg.node)
		case actDown:
			c.stats.replicaFailures.Add(1)
			t.fail(tg.node, downErr(tg.node))
		case actSend:
			launched++
			c.bg.Go(func() {
				resp, err := c.cfg.Transport.Call(callCtx, tg.node, Request{Kind: KindRead, Key: key, Epoch: epoch})
				results <- reply{node: tg.node, set: resp.Siblings, err: err}
			})
		}
	}
	received := 0
	record := func(r reply) {
		received++
		if r.err != nil {
			c.stats.replicaFailures.Add(1)
			t.fail(r.node, r.err)
			return
		}
		sets[r.node] = r.set
		t.ack(r.node)
	}
	for t.state() == pending {
		select {
		case r := <-results:
			record(r)
		case <-ctx.Done():
			t.expire(reps, ctx.Err())
		}
	}
	var merged vclock.Siblings
	for _, n := range reps {
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
	// From here on sets and results belong to the repair goroutine.
	outstanding := launched - received
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
		c.repair(callCtx, key, reps, sets, epoch)
	})
	return res, qerr
}

// repair sends the merge of every set received to each replica that
// answered with less. The local store is repaired directly.
func (c *Coordinator) repair(ctx context.Context, key []byte, reps []string, sets map[string]vclock.Siblings, epoch uint64) {
	var final vclock.Siblings
	for _, n := range reps {
		final = vclock.Merge(final, sets[n])
	}
	for _, n := range repairs(reps, sets, final) {
		var err error
		if n == c.cfg.Self {
			_, err = c.cfg.Store.Apply(ctx, key, final)
		} else {
			err = c.sendCopy(ctx, n, key, final, epoch)
		}
		if err != nil {
			c.stats.readRepairFailures.Add(1)
			c.log.Debug("read repair failed", "peer", n, "key", key, "err", err)
			continue
		}
		c.stats.readRepairs.Add(1)
	}
}
