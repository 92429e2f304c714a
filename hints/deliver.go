package hints

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ringkv/ringkv/storage"
)

// Start begins delivery under ctx, the node's lifetime context: every
// Config.RetryInterval, and at once when SetAlive reports a target back,
// each target not known to be down is sent its pending hints. It returns
// at once; Close (or ctx ending) stops delivery.
func (q *Queue) Start(ctx context.Context) error {
	if q.cfg.Deliverer == nil {
		return errors.New("hints: start: Config.Deliverer is required for delivery")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return ErrClosed
	case q.life != nil:
		return errors.New("hints: start: already started")
	}
	q.life, q.stopLife = context.WithCancel(ctx)
	for _, t := range q.targets {
		q.spawn(t)
	}
	q.workers.Go(q.retryLoop)
	return nil
}

// spawn starts t's worker and asks it for a first round (hints recovered
// from disk are delivered without waiting for the timer). q.mu must be
// held and q.life set.
func (q *Queue) spawn(t *target) {
	ctx, stop := context.WithCancel(q.life)
	t.stop, t.done = stop, make(chan struct{})
	signal(t.wake)
	q.workers.Go(func() {
		defer close(t.done)
		q.work(ctx, t)
	})
}

// retryLoop, once per RetryInterval, drops the expired hints of every
// target (those liveness reports down included: no round would otherwise
// look at them), wakes every target, and re-routes the hints held for
// nodes that have left the ring: a coordinator with an older ring view can
// still hint for a node after its re-route finished, and nothing else
// would ever move those hints.
func (q *Queue) retryLoop() {
	for {
		select {
		case <-q.life.Done():
			return
		case <-q.clock.After(q.cfg.RetryInterval):
		}
		if _, err := q.expire(q.life, q.snapshot()); err != nil && q.life.Err() == nil {
			q.log.Warn("dropping expired hints failed", "err", err)
		}
		q.mu.Lock()
		for _, t := range q.targets {
			signal(t.wake)
		}
		q.mu.Unlock()
		if err := q.rerouteLeft(q.life); err != nil && q.life.Err() == nil {
			q.log.Warn("re-routing hints of nodes that left the ring failed", "err", err)
		}
	}
}

// work is one target's worker: it compacts the log when asked and runs a
// delivery round whenever woken while the target is not known down. One
// worker per target means one delivery to a target at a time, while
// targets deliver in parallel.
func (q *Queue) work(ctx context.Context, t *target) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.compact:
			if err := q.compactLog(t); err != nil {
				q.log.Warn("hint log compaction failed", "peer", t.name, "err", err)
			}
		case <-t.wake:
			if q.isDown(t.name) {
				continue
			}
			q.deliverRound(ctx, t)
		}
	}
}

// deliverRound sends t every key pending when the round began, in batches
// paced to Config.DeliveryRate, oldest first. It stops at the first
// transient failure; the next wake-up retries. A batch the Deliverer calls
// too large (ErrTooLarge) is split, and a hint too large alone is dropped
// (see deliverBatch), so one oversized set never holds back the others.
// Keys hinted again during the round keep their newer set pending and go
// in the next round, so a round always ends. Expired keys are dropped
// first, and a batch never takes a key that expired since.
func (q *Queue) deliverRound(ctx context.Context, t *target) {
	q.st.rounds.Add(1)
	if _, err := q.expire(ctx, []*target{t}); err != nil {
		if ctx.Err() == nil {
			q.log.Warn("dropping expired hints failed", "peer", t.name, "err", err)
		}
		return
	}
	keys := t.pendingKeys()
	sent := 0
	for len(keys) > 0 {
		var batch []Hint
		batch, keys = t.batch(keys, q.cfg.BatchSize, q.cfg.BatchBytes, q.cutoff(q.clock.Now()))
		if len(batch) == 0 {
			continue
		}
		n, err := q.deliverBatch(ctx, t, batch)
		sent += n
		if err != nil {
			if ctx.Err() == nil {
				q.log.Warn("hint delivery failed", "peer", t.name, "batch", len(batch), "err", err)
			}
			return
		}
	}
	if sent > 0 {
		q.log.Info("hints delivered", "peer", t.name, "hints", sent)
	}
	if err := q.reclaim(t); err != nil {
		q.log.Warn("hint log reclaim failed", "peer", t.name, "err", err)
	}
}

// deliverBatch sends batch to t, acknowledges it and paces, and returns how
// many hints were acknowledged. A batch refused with ErrTooLarge is split
// in halves, each sent the same way, and a lone hint refused so is dropped
// (counted in DroppedTooLarge): retrying it could never succeed, and
// delivery is oldest first, so it would block its target for good. Any
// other failure is returned after counting it, ending the round.
func (q *Queue) deliverBatch(ctx context.Context, t *target, batch []Hint) (int, error) {
	start := q.clock.Now()
	dctx, cancel := context.WithTimeout(ctx, q.cfg.DeliveryTimeout)
	err := q.cfg.Deliverer.Deliver(dctx, t.name, batch)
	cancel()
	if errors.Is(err, ErrTooLarge) && ctx.Err() == nil {
		q.st.failures.Add(1)
		if len(batch) == 1 {
			return 0, q.dropTooLarge(ctx, t, batch[0], err)
		}
		half := len(batch) / 2
		n, err := q.deliverBatch(ctx, t, batch[:half])
		if err != nil {
			return n, err
		}
		m, err := q.deliverBatch(ctx, t, batch[half:])
		return n + m, err
	}
	if err != nil {
		q.st.failures.Add(1)
		return 0, err
	}
	now := q.clock.Now()
	if err := q.ack(ctx, t, batch, now); err != nil {
		return 0, err
	}
	if wait := pace(len(batch), q.cfg.DeliveryRate, now.Sub(start)); wait > 0 {
		select {
		case <-ctx.Done():
			return len(batch), ctx.Err()
		case <-q.clock.After(wait):
		}
	}
	return len(batch), nil
}

// dropTooLarge forgets h, which its target can never be sent, with a
// durable forget record (else a restart would bring it back to block the
// target again), unless the key was hinted again since the batch was
// taken: the newer set may be smaller (a write that superseded siblings)
// and gets its own attempt. An error (the record could not be made
// durable) ends the round.
func (q *Queue) dropTooLarge(ctx context.Context, t *target, h Hint, cause error) error {
	t.mu.Lock()
	e, ok := t.index[string(h.Key)]
	if !ok || !e.sibs.Equal(h.Siblings) {
		t.mu.Unlock()
		return nil
	}
	p, err := t.forgetLocked(string(h.Key), e)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	q.st.droppedLarge.Add(1)
	q.log.Error("hint dropped: too large to deliver; anti-entropy repairs the key on the target",
		"peer", t.name, "key", fmt.Sprintf("%q", h.Key), "bytes", e.size, "err", cause)
	if _, err := p.Wait(ctx); err != nil {
		return fmt.Errorf("hints: forget %q for %s: %w", h.Key, t.name, err)
	}
	return nil
}

// pace is how long to wait after sending n hints in elapsed so that a
// target receives at most rate hints per second.
func pace(n, rate int, elapsed time.Duration) time.Duration {
	if rate <= 0 || n <= 0 {
		return 0
	}
	want := time.Duration(n) * time.Second / time.Duration(rate)
	return max(want-elapsed, 0)
}

// pendingKeys returns the pending keys, oldest hint first (ties by key).
func (t *target) pendingKeys() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.index))
	for k := range t.index {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ea, eb := t.index[a].since, t.index[b].since; ea != eb {
			if ea < eb {
				return -1
			}
			return 1
		}
		if a < b {
			return -1
		}
		return 1
	})
	return keys
}

// batch takes keys from the front of keys, up to size hints and maxBytes
// bytes (at least one), and returns their current sets and the keys left.
// Keys no longer pending are skipped, and so are keys expired by cutoff
// (see Queue.cutoff): the next sweep drops them.
func (t *target) batch(keys []string, size, maxBytes int, cutoff int64) ([]Hint, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Hint
	bytes := 0
	i := 0
	for ; i < len(keys) && len(out) < size; i++ {
		e, ok := t.index[keys[i]]
		if !ok || e.since <= cutoff {
			continue
		}
		if len(out) > 0 && bytes+int(e.size) > maxBytes {
			break
		}
		bytes += int(e.size)
		out = append(out, Hint{Key: []byte(keys[i]), Siblings: e.sibs})
	}
	return out, keys[i:]
}

// ack forgets the hints of an acknowledged batch, except keys hinted again
// since the batch was taken: their set grew and is delivered next round.
// Each forgotten key gets a forget record, and ack returns once they are
// durable (one wait per batch), so an acknowledged hint is never resent
// after a restart. An error ends the round; keys whose record could not be
// queued stay pending (a resend is harmless within the grace).
func (q *Queue) ack(ctx context.Context, t *target, batch []Hint, now time.Time) error {
	t.mu.Lock()
	var last *storage.Pending
	var err error
	for _, h := range batch {
		e, ok := t.index[string(h.Key)]
		if !ok || !e.sibs.Equal(h.Siblings) {
			continue
		}
		var p storage.Pending
		if p, err = t.forgetLocked(string(h.Key), e); err != nil {
			break
		}
		last = &p
		lag := now.Sub(time.Unix(0, e.since))
		q.st.delivered.Add(1)
		q.st.lagTotal.Add(int64(lag))
		q.st.lagLast.Store(int64(lag))
	}
	// Forget records grow the log while keys stay pending.
	needCompact := len(t.index) > 0 && t.wal.Size() > q.compactAt(t.bytes)
	t.mu.Unlock()
	if needCompact {
		signal(t.compact)
	}
	if last != nil {
		// Records complete in order: the last one durable means all are.
		if _, werr := last.Wait(ctx); werr != nil && err == nil {
			err = fmt.Errorf("hints: acknowledge batch for %s: %w", t.name, werr)
		}
	}
	return err
}

// reclaim deletes t's log segments once nothing is pending: everything
// they hold was delivered. A record queued concurrently lands after the
// roll and is kept.
func (q *Queue) reclaim(t *target) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.index) > 0 || t.removed || t.wal.Size() == 0 {
		return nil
	}
	pos, err := t.wal.Roll()
	if err != nil {
		return fmt.Errorf("hints: roll log of %s: %w", t.name, err)
	}
	return t.wal.DeleteBefore(pos.Segment)
}

// compactLog rewrites t's log as one record per pending key when it has
// grown past compactAt (many hints to few keys), then deletes the old
// segments. It holds t.mu throughout so that no hint is appended between
// the roll and the rewrite.
func (q *Queue) compactLog(t *target) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.removed || t.wal.Size() <= q.compactAt(t.bytes) {
		return nil
	}
	before := t.wal.Size()
	pos, err := t.wal.Roll()
	if err != nil {
		return fmt.Errorf("hints: roll log of %s: %w", t.name, err)
	}
	for k, e := range t.index {
		rec, err := encodeRecord([]byte(k), e.sibs, e.since)
		if err != nil {
			return err
		}
		if _, err := t.wal.AppendAsync(rec); err != nil {
			return fmt.Errorf("hints: rewrite log of %s: %w", t.name, err)
		}
	}
	p, err := t.wal.Barrier()
	if err == nil {
		_, err = p.Wait(context.Background())
	}
	if err != nil {
		return fmt.Errorf("hints: rewrite log of %s: %w", t.name, err)
	}
	// Roll made the old segments durable; the rewrite is durable per
	// policy. Under FsyncAlways deleting is now safe; under weaker
	// policies a machine crash may lose hints anyway.
	if err := t.wal.DeleteBefore(pos.Segment); err != nil {
		return err
	}
	q.log.Debug("hint log compacted", "peer", t.name, "from_bytes", before, "to_bytes", t.wal.Size())
	return nil
}
