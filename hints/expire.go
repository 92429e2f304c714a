package hints

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringkv/ringkv/storage"
)

// Forgetting and expiry.
//
// A key leaves a target's index when its target acknowledged it, when it
// is too large to ever deliver, or when it expired. Each time a forget
// record is appended under t.mu, so the log replays to the index: without
// it the log would hand the key back after a restart, and a hint delivered
// after the target collected the tombstone that superseded it would
// resurrect a deleted value.
//
// Expiry bounds that risk for hints that are never delivered: a key whose
// oldest pending hint (entry.since) is older than Config.Grace, the
// target's tombstone GC grace, is dropped and left to anti-entropy. The
// queue sweeps at Open, before every delivery round and on every retry
// tick (targets that are down included), and batches skip expired keys,
// so an expired hint is never sent.

// cutoff is the newest since that is expired at now: a key whose oldest
// hint was stored at or before it has been pending for Grace or longer.
func (q *Queue) cutoff(now time.Time) int64 {
	return now.UnixNano() - int64(q.cfg.Grace)
}

// forgetLocked removes key's entry e from t's index and queues a forget
// record, so that replay removes it too. It returns the record's Pending
// for the caller to wait on outside t.mu. If the record cannot be queued
// (the log failed or is closed) the entry stays, so the index still
// matches what a replay rebuilds. t.mu must be held.
func (t *target) forgetLocked(key string, e entry) (storage.Pending, error) {
	rec, err := encodeForget([]byte(key), e.since)
	if err != nil {
		return storage.Pending{}, err
	}
	p, err := t.wal.AppendAsync(rec)
	if err != nil {
		return storage.Pending{}, fmt.Errorf("hints: forget %q for %s: %w", key, t.name, err)
	}
	delete(t.index, key)
	t.bytes -= e.size
	return p, nil
}

// expire drops every key of ts pending for Grace or longer, makes the
// forget records durable, and logs one warning with the count. It returns
// how many keys it dropped.
func (q *Queue) expire(ctx context.Context, ts []*target) (int, error) {
	cutoff := q.cutoff(q.clock.Now())
	total := 0
	var peers []string
	var errs []error
	for _, t := range ts {
		n, err := q.expireTarget(ctx, t, cutoff)
		if n > 0 {
			total += n
			peers = append(peers, t.name)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if total > 0 {
		q.log.Warn("expired hints dropped", "hints", total, "peers", peers, "grace", q.cfg.Grace)
	}
	return total, errors.Join(errs...)
}

// expireTarget drops t's keys whose since is at or before cutoff, waits for
// their forget records (one wait for all) and reclaims the log if nothing
// is left pending.
func (q *Queue) expireTarget(ctx context.Context, t *target, cutoff int64) (int, error) {
	t.mu.Lock()
	if t.removed {
		t.mu.Unlock()
		return 0, nil
	}
	n := 0
	var last storage.Pending
	var err error
	for k, e := range t.index {
		if e.since > cutoff {
			continue
		}
		var p storage.Pending
		if p, err = t.forgetLocked(k, e); err != nil {
			break
		}
		last = p
		n++
	}
	empty := len(t.index) == 0
	t.mu.Unlock()
	q.st.droppedExpired.Add(uint64(n))
	if n > 0 {
		// Records complete in order: the last one durable means all are.
		if _, werr := last.Wait(ctx); werr != nil && err == nil {
			err = fmt.Errorf("hints: forget expired hints for %s: %w", t.name, werr)
		}
	}
	if err != nil {
		return n, err
	}
	if n > 0 && empty {
		return n, q.reclaim(t)
	}
	return n, nil
}
