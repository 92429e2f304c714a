package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/ringkv/ringkv/vclock"
)

// Put writes value under key. With o.HasContext the new version
// supersedes exactly what o.Context covers; without, it supersedes what
// the coordinator holds (a blind write). The write is coordinated here when
// this node is one of the key's replicas, else forwarded to the first live
// one. It answers once W replicas, the coordinator included, have the new
// version durably; fewer by the deadline is a *QuorumError (the write may
// still have reached some replicas, as in Dynamo).
func (c *Coordinator) Put(ctx context.Context, key, value []byte, o WriteOptions) (Result, error) {
	c.stats.puts.Add(1)
	if value == nil {
		// A live value is never nil on the wire or in storage: nil is how a
		// tombstone looks, and an empty value is a legitimate value.
		value = []byte{}
	}
	return c.write(ctx, "put", key, &ForwardWrite{Value: value, Context: o.Context, HasContext: o.HasContext, W: o.W, Strict: o.Strict}, false)
}

// Delete writes a tombstone for key. With o.HasContext it supersedes
// exactly what o.Context covers, as Put. Without one it first reads the key
// at R (o.R) and writes the tombstone with the merged context of that read,
// so it removes every version such a read returns, not only what the
// coordinator happens to hold (a replica that missed writes may coordinate
// it). A read that misses its quorum fails the delete; nothing is written.
// A read then reports no live sibling (not found); a later write carrying
// the returned context brings the key back.
func (c *Coordinator) Delete(ctx context.Context, key []byte, o WriteOptions) (Result, error) {
	c.stats.deletes.Add(1)
	fw := &ForwardWrite{Delete: true, Context: o.Context, HasContext: o.HasContext, W: o.W, Strict: o.Strict}
	if !o.HasContext {
		// One deadline covers the read and the write.
		var cancel context.CancelFunc
		ctx, cancel = c.withDeadline(ctx)
		defer cancel()
		read, err := c.Get(ctx, key, ReadOptions{R: o.R})
		if err != nil {
			var qe *QuorumError
			if errors.As(err, &qe) {
				qe.Op = "delete (read before delete)"
			}
			return Result{}, err
		}
		fw.Context, fw.HasContext = read.Context(), true
	}
	return c.write(ctx, "delete", key, fw, false)
}

// write validates a write, then coordinates it here or forwards it.
// forwarded is true when another node sent it here; it is then never
// forwarded again (one hop).
func (c *Coordinator) write(ctx context.Context, op string, key []byte, fw *ForwardWrite, forwarded bool) (Result, error) {
	if c.closed.Load() {
		return Result{}, ErrClosed
	}
	if fw.HasContext {
		if err := fw.Context.Check(); err != nil {
			return Result{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	// A request context that can never end (the RESP front end's) is
	// replaced by one that ends at the deadline and at Close, which then
	// bounds the sends too: one timer for both, and no detached context.
	// Any other gets the deadline, and a detached context for the sends
	// only once prepare has decided that there are sends.
	endless := ctx.Done() == nil
	var cancel context.CancelFunc
	if endless {
		ctx, cancel = context.WithTimeout(c.life, c.cfg.Timeout)
	} else {
		ctx, cancel = c.withDeadline(ctx)
	}
	handed := false // coordinate took cancel over
	defer func() {
		if !handed {
			cancel()
		}
	}()
	lw, err := c.prepare(ctx, op, key, fw, forwarded)
	if err != nil {
		return Result{}, err
	}
	if lw.forward {
		return c.forward(ctx, op, key, lw.rt, lw.q.cur.need, fw)
	}
	if lw.alone() {
		if endless {
			return c.commitLocal(ctx, nil, op, lw) // ctx ends at Close
		}
		return c.commitLocal(ctx, cancel, op, lw)
	}
	if endless {
		// ctx, bounded by the deadline and Close alone, is a detached
		// context already: coordinate ends it once every send has.
		handed = true
		return c.coordinate(ctx, op, key, lw, ctx, cancel)
	}
	sendCtx, sendCancel := c.detached(ctx)
	return c.coordinate(ctx, op, key, lw, sendCtx, sendCancel)
}

// localWrite is a write decided from one placement snapshot and, unless
// it is to be forwarded, applied here: ready to be sent to the others.
type localWrite struct {
	rt       route
	q        quorums
	forward  bool     // this node is no replica: forward to one
	targets  []target // q.nodes, each local, to send, or down
	standIns []string // fallbacks that may keep hints
	sloppy   bool     // stand-ins' hints count toward W
	merged   vclock.Siblings
	// durable, when set, waits until merged is durable here
	// (AsyncUpdater); nil: it already is.
	durable func(context.Context) error
}

// alone reports whether this node is the write's only recipient (N=1, or
// a one-node ring): nothing is sent. A Placement that keeps its contract
// (Pending is Targets minus Replicas) never gives a joint write a single
// recipient; the joint check keeps one that does from skipping the
// targets' quorum.
func (lw *localWrite) alone() bool {
	return !lw.q.joint() && len(lw.targets) == 1 && lw.targets[0].act == actLocal
}

// forgedCounterGap is how far above the store's minting counter a context
// or stored set may name a dot of this node before the write is refused as
// forged. Genuine ones stay at or below the counter, except dots minted by
// a binary from before the counter existed on keys this node no longer
// held when it was upgraded: per-key counters, far below this gap.
const forgedCounterGap = 1 << 32

// prepare reads the placement, decides the write's recipients and quorums,
// refuses it if liveness already says they cannot be met, and mints and
// stores the new version locally, all under the fence's read lock, so
// that a placement swap (Fence) waits until the write is in the local
// store. The lock is released before anything is sent.
func (c *Coordinator) prepare(ctx context.Context, op string, key []byte, fw *ForwardWrite, forwarded bool) (localWrite, error) {
	c.fence.RLock()
	defer c.fence.RUnlock()
	rt, err := c.route(key)
	if err != nil {
		return localWrite{}, err
	}
	q, err := quorumsFor(fw.W, c.cfg.DefaultW, c.cfg.N, rt.reps, rt.pending, rt.targets)
	if err != nil {
		return localWrite{}, err
	}
	lw := localWrite{rt: rt, q: q}
	if !slices.Contains(rt.reps, c.cfg.Self) {
		// A pending replica does not coordinate either: it lacks part of
		// the key's history until its transfer is done.
		if forwarded {
			return localWrite{}, fmt.Errorf("%w: %s is not in %v", ErrNotReplica, c.cfg.Self, rt.reps)
		}
		lw.forward = true
		return lw, nil
	}
	w := vclock.Write{
		Context:   fw.Context,
		Blind:     !fw.HasContext,
		Value:     fw.Value,
		Tombstone: fw.Delete,
		WallTime:  c.cfg.Now().UnixNano(),
	}
	lw.sloppy = c.cfg.Sloppy && !fw.Strict
	lw.targets = plan(q.nodes, c.cfg.Self, c.alive)
	lw.standIns = standInPool(rt.fallbacks, q.nodes)
	// Refuse before writing anything when liveness already says W cannot be
	// met: a write stored here and then answered 503 would come back as a
	// sibling once the cut heals, though nobody was told it succeeded.
	if qe := checkReach(op, q, lw.targets, lw.standIns, lw.sloppy, c.alive); qe != nil {
		c.stats.quorumFailures.Add(1)
		return localWrite{}, qe
	}
	mint := c.minter(key, w)
	if async, ok := c.cfg.Store.(AsyncUpdater); ok {
		lw.merged, lw.durable, err = async.UpdateAsync(ctx, key, mint)
	} else {
		lw.merged, err = c.cfg.Store.Update(ctx, key, mint)
	}
	if errors.Is(err, ErrTooManySiblings) || errors.Is(err, ErrBadRequest) {
		return localWrite{}, err
	}
	if err != nil {
		c.stats.quorumFailures.Add(1)
		return localWrite{}, &QuorumError{Op: op, Need: q.cur.need, Got: 0,
			Failures: map[string]error{c.cfg.Self: fmt.Errorf("local write: %w", err)}}
	}
	return lw, nil
}

// minter returns the function that mints w's version from a key's
// current set inside the store's Update. Minting inside Update makes
// read-mint-store atomic per key. Update returns only once the set is
// durable, and AsyncUpdater's store renews its incarnation after a crash
// that lost a version: either way a crash cannot let this node re-mint a
// dot the other replicas hold.
func (c *Coordinator) minter(key []byte, w vclock.Write) func(vclock.Siblings) (vclock.Siblings, error) {
	actor := c.cfg.Store.Incarnation()
	reserver, _ := c.cfg.Store.(CounterReserver)
	return func(cur vclock.Siblings) (vclock.Siblings, error) {
		if err := vclock.CheckMintable(cur, w.Context); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		w := w
		if reserver != nil {
			// Reserved under the key's lock, after CheckMintable: a refused
			// write wastes no counter, and a counter reserved is used at
			// once. Counters only grow, so a gap from an aborted write
			// (sibling cap) costs nothing.
			next := vclock.NextCounter(cur, actor, w)
			if next > reserver.Counter()+forgedCounterGap {
				// A context or stored set naming a dot of this node far
				// above its counter was forged: minting from it would raise
				// the counter for every key, toward vclock.CounterLimit.
				return nil, fmt.Errorf("%w: the context or the stored versions name dot (%s, %d) of this node, which it never minted",
					ErrBadRequest, actor, next-1)
			}
			w.MinCounter = reserver.ReserveCounter(next)
		}
		_, m := vclock.Mint(cur, actor, w)
		return m, c.capSiblings(key, cur, m)
	}
}

// forward sends the write to the first live replica, which coordinates it.
// The next live replica is tried only when the first certainly ran nothing:
// it could not be reached, the request never left this node, or it refused
// as no replica of the key under its newer plan. A forward whose
// connection broke after the request was sent is not retried: the target
// may have minted and stored a version, and a second coordinator would mint
// another, so the client's context (naming only the second) could not
// cover the first, which would come back beside the client's next write.
// That write's outcome is unknown to the client (a 503 without
// unavailable), as in Dynamo. A quorum error or a bad request ends the
// attempt, as does the deadline.
func (c *Coordinator) forward(ctx context.Context, op string, key []byte, rt route, need int, fw *ForwardWrite) (Result, error) {
	failures := map[string]error{}
	asked := 0
	for _, n := range rt.reps {
		if !c.alive(n) {
			failures[n] = downErr(n)
			continue
		}
		asked++
		c.stats.forwards.Add(1)
		resp, err := c.cfg.Transport.Call(ctx, n, Request{Kind: KindForward, Key: key, Write: fw, Epoch: rt.epoch})
		if err == nil {
			return Result{Siblings: resp.Siblings, Replies: resp.Replies, Hinted: resp.Hinted}, nil
		}
		var qe *QuorumError
		if errors.As(err, &qe) || errors.Is(err, ErrBadRequest) || errors.Is(err, ErrBadQuorum) || errors.Is(err, ErrTooManySiblings) {
			if qe != nil {
				c.stats.quorumFailures.Add(1)
			}
			return Result{}, err
		}
		failures[n] = fmt.Errorf("forward to coordinator: %w", err)
		if !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	c.stats.quorumFailures.Add(1)
	qe := &QuorumError{Op: op, Need: need, Got: 0, Failures: failures}
	if asked == 0 {
		qe.Unavailable = true
	}
	return Result{}, qe
}

// retryable reports whether a forward that failed with err certainly
// never ran on its target (no connection, the request never sent, the
// target down or unknown, or it refused before minting anything: as no
// replica of the key, or because it is shutting down), so that the next
// replica may coordinate it.
func retryable(err error) bool {
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrNotSent) ||
		errors.Is(err, ErrUnknownPeer) || errors.Is(err, ErrReplicaDown) ||
		errors.Is(err, ErrNotReplica) || errors.Is(err, ErrClosed)
}

// coordinate sends the merged set of a write prepared here to the other
// replicas, current and pending, in parallel and answers once each side
// has W acknowledgements (the coordinator's own among them). Sends still in
// flight when it answers go on in the background until the request's
// deadline, so slow replicas still converge without holding up the
// client.
//
// sendCtx (from detached, or ctx itself when the request's own context
// could never end: see write) bounds the sends; coordinate cancels it
// through sendCancel once every send has ended.
func (c *Coordinator) coordinate(ctx context.Context, op string, key []byte, lw localWrite, sendCtx context.Context, sendCancel context.CancelFunc) (Result, error) {
	t := lw.q.tally()
	if lw.durable == nil {
		t.ack(c.cfg.Self)
	}
	f := &fanOut{results: make(chan reply, len(lw.targets)), cancel: sendCancel}
	// Held until coordinate returns: ctx may be sendCtx itself (write),
	// which must not end while the answers are counted.
	f.inflight.Store(1)
	defer f.release()
	c.sendAll(sendCtx, key, lw, f)
	hinted, selfErr := c.countAcks(ctx, lw, t, f.results)
	if t.state() == lost {
		c.stats.quorumFailures.Add(1)
		return Result{}, t.err(op)
	}
	if selfErr != nil {
		c.stats.quorumFailures.Add(1)
		c.log.Warn("local write failed after the other replicas were sent the version", "key", key, "err", selfErr)
		return Result{}, &QuorumError{Op: op, Need: lw.q.cur.need, Got: len(t.acks), Failures: map[string]error{c.cfg.Self: selfErr}}
	}
	return Result{Siblings: lw.merged, Replies: len(t.acks), Hinted: hinted}, nil
}

// commitLocal answers a write whose only replica is this node (N=1, or a
// one-node ring): nothing is sent, so the wait for the local copy's
// durability runs in line rather than on a goroutine that reports to a
// channel, one wake-up per write fewer. Its outcomes and errors are those
// countAcks gives a write of one replica. The wait is counted in c.bg and
// ends at Close, as the general path's wait on the detached context does:
// cancel, when not nil, ends ctx, which Close would not end otherwise.
func (c *Coordinator) commitLocal(ctx context.Context, cancel context.CancelFunc, op string, lw localWrite) (Result, error) {
	t := lw.q.tally()
	if lw.durable != nil {
		c.bg.add()
		defer c.bg.done()
		if cancel != nil {
			defer context.AfterFunc(c.life, cancel)()
		}
		if err := lw.durable(ctx); err != nil {
			// Only the wait's own end is the deadline's: a disk failure
			// that arrives with it is that failure.
			if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) && c.life.Err() == nil {
				t.expire(lw.q.nodes, cerr)
			} else {
				t.fail(c.cfg.Self, fmt.Errorf("local write: %w", err))
			}
			c.stats.quorumFailures.Add(1)
			return Result{}, t.err(op)
		}
	}
	t.ack(c.cfg.Self)
	return Result{Siblings: lw.merged, Replies: len(t.acks)}, nil
}

// fanOut is a write's sends in flight: their answers, and the count that
// cancels the sends' context once the last has ended.
type fanOut struct {
	results  chan reply // buffered for every send
	inflight atomic.Int32
	cancel   context.CancelFunc
}

// release ends one send (or coordinate's own hold).
func (f *fanOut) release() {
	if f.inflight.Add(-1) == 0 {
		f.cancel()
	}
}

// sendAll starts a write's sends: the wait for the local copy's
// durability, the copies to the other replicas, and, for replicas known
// down, the stand-ins. Each answer lands in f.results.
func (c *Coordinator) sendAll(sendCtx context.Context, key []byte, lw localWrite, f *fanOut) {
	stand := &standIns{list: lw.standIns, alive: c.alive, zoned: lw.rt.zoned}
	// Copied so that the goroutines capture these, not all of lw.
	sloppy, durable := lw.sloppy, lw.durable
	store := storeRequest(key, lw.merged, lw.rt.epoch)
	if durable != nil {
		// The local copy counts once durable; the sends below run
		// meanwhile, so this node's fsync overlaps the others'.
		f.inflight.Add(1)
		c.bg.Go(func() {
			defer f.release()
			err := durable(sendCtx)
			if err != nil {
				err = fmt.Errorf("local write: %w", err)
			}
			f.results <- reply{node: c.cfg.Self, err: err}
		})
	}
	for _, tg := range lw.targets {
		switch tg.act {
		case actLocal:
			continue
		case actDown:
			c.stats.replicaFailures.Add(1)
			f.inflight.Add(1)
			c.bg.Go(func() {
				defer f.release()
				f.results <- c.standIn(sendCtx, tg.node, store, stand, sloppy, downErr(tg.node))
			})
			continue
		}
		f.inflight.Add(1)
		c.callAsync(sendCtx, tg.node, store, func(_ Response, err error) {
			r, final := c.copySent(tg.node, err)
			if final {
				f.results <- r
				f.release()
				return
			}
			// A stand-in is tried with blocking calls: not in the
			// transport's callback, which must not block.
			c.bg.Go(func() {
				defer f.release()
				f.results <- c.standIn(sendCtx, tg.node, store, stand, sloppy, r.err)
			})
		})
	}
}

// countAcks counts a write's answers into t until its quorums are met
// or lost, or ctx ends. The coordinator's own durable copy is always
// among the W (the answer promises it): with an asynchronous local sync,
// the write is answered only once that sync is done too, and fails if it
// failed (selfErr). hinted is how many acknowledgements were stand-ins'.
func (c *Coordinator) countAcks(ctx context.Context, lw localWrite, t *tally, results <-chan reply) (hinted int, selfErr error) {
	selfPending := lw.durable != nil
	for t.state() == pending || (selfPending && t.state() != lost) {
		select {
		case r := <-results:
			switch {
			case r.node == c.cfg.Self:
				selfPending = false
				if r.err != nil {
					selfErr = r.err
					t.fail(r.node, r.err)
				} else {
					t.ack(r.node)
				}
			case r.err != nil:
				t.fail(r.node, r.err)
			case r.via != "":
				hinted++
				t.ack(r.node)
			default:
				t.ack(r.node)
			}
		case <-ctx.Done():
			t.expire(lw.q.nodes, ctx.Err())
			if selfPending {
				selfPending, selfErr = false, fmt.Errorf("local write: %w", ctx.Err())
			}
		}
	}
	return hinted, selfErr
}

// sendCopy delivers a store request (storeRequest: the merged set, encoded
// once, stamped with the epoch of the plan the sender routed by) to one
// replica. It is the per-target seam of the write fan-out: replicate
// (handoff.go) falls back to sendHint, the same set with HintFor, sent to a
// stand-in.
func (c *Coordinator) sendCopy(ctx context.Context, node string, store Request) error {
	_, err := c.cfg.Transport.Call(ctx, node, store)
	return err
}

// storeRequest is the KindStore request that sends set to a replica,
// encoded once for every replica it goes to.
func storeRequest(key []byte, set vclock.Siblings, epoch uint64) Request {
	return prepare(Request{Kind: KindStore, Key: key, Siblings: set, Epoch: epoch})
}

// capSiblings refuses a write that would leave key with more versions
// than Config.MaxSiblings and more than it had (Riak's max_siblings): a
// key's set travels whole on every write and read, so an unbounded one
// makes every request on the key slower. A write carrying the context of
// a read resolves siblings and is never refused. Above WarnSiblings it
// logs a warning.
func (c *Coordinator) capSiblings(key []byte, cur, next vclock.Siblings) error {
	if len(next) <= len(cur) {
		return nil
	}
	if c.cfg.MaxSiblings > 0 && len(next) > c.cfg.MaxSiblings {
		return fmt.Errorf("%w: the key would have %d versions, more than %d; read it and write with the context of that read to resolve them",
			ErrTooManySiblings, len(next), c.cfg.MaxSiblings)
	}
	if c.cfg.WarnSiblings > 0 && len(next) > c.cfg.WarnSiblings {
		c.log.Warn("key has many siblings", "key", key, "siblings", len(next), "max_siblings", c.cfg.MaxSiblings)
	}
	return nil
}
