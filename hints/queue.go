package hints

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// Queue keeps hints for the nodes this node stands in for: one durable
// hint log per target under Config.Dir, and in memory, per target, each
// key's merged pending set (so 10,000 writes to one key are one pending
// hint). It implements replica.HintSink. After Start it delivers hints to
// targets that are not known to be down, in batches and rate limited, and
// forgets them once acknowledged. Safe for concurrent use.
type Queue struct {
	cfg   Config
	log   *slog.Logger
	clock Clock

	// mu guards the fields below it. Lock order: Queue.mu before
	// target.mu, never the other way.
	mu        sync.Mutex
	targets   map[string]*target
	downSince map[string]time.Time // targets liveness reports down, and since when
	// rerouting holds targets whose re-route is under way: their log
	// directory is about to be deleted, so they take no hints until it is.
	rerouting map[string]bool
	// members is the latest ring snapshot (RingChanged, RingSnapshot); nil
	// until the first. left holds the names that have left the ring since
	// (see ring.go): the retry timer re-routes any hints held for them.
	members  map[string]bool
	left     map[string]bool
	closed   bool
	life     context.Context // delivery lifetime; nil until Start
	stopLife context.CancelFunc

	workers sync.WaitGroup // target workers and the retry ticker
	st      counters
}

// target is the hint state kept for one target node.
type target struct {
	name string
	dir  string
	wal  *storage.Log
	// wake asks the worker for a delivery round; compact asks it to check
	// whether the log should be rewritten. Both buffered 1.
	wake, compact chan struct{}
	// stop ends the worker and done is closed when it has; nil until the
	// worker starts.
	stop context.CancelFunc
	done chan struct{}

	// mu guards index, bytes and removed, and orders appends to wal with
	// index changes: a record is queued under mu, so the log's order is
	// the index's order.
	mu      sync.Mutex
	index   map[string]entry
	bytes   int64 // sum of index sizes
	removed bool  // rerouted: takes no more hints
}

// entry is one key's pending hint.
type entry struct {
	sibs  vclock.Siblings
	size  int64 // bytes of its record in the log, framing included
	since int64 // Unix ns when the oldest undelivered hint for it was stored
}

// recordOverhead is the log's framing per record (storage's header).
const recordOverhead = 12

// counters are the monotonic numbers behind Stats.
type counters struct {
	stored, delivered, failures, rerouted  atomic.Uint64
	droppedWindow, droppedCap, droppedGone atomic.Uint64
	droppedLarge, droppedExpired           atomic.Uint64
	lagTotal, lagLast                      atomic.Int64 // ns
	rounds                                 atomic.Uint64
}

// Open opens (creating if needed) the hint logs under cfg.Dir and rebuilds
// each target's pending index by replaying its log, so hints held by a
// node killed with SIGKILL survive its restart. It then drops every key
// whose oldest hint is past Config.Grace, with durable forget records. A
// damaged record before a log's tail fails Open with an error naming file
// and offset (delete that target's directory to discard its hints); a torn
// tail is cut off. A hint record of more than vclock.MaxSiblings versions
// (which only an older binary writes) is skipped and counted in
// DroppedTooLarge.
func Open(cfg Config) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	fsys := cfg.logFS()
	if err := vfs.MkdirAllSynced(fsys, cfg.Dir); err != nil {
		return nil, fmt.Errorf("hints: create %s: %w", cfg.Dir, err)
	}
	q := &Queue{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "hints"),
		clock:     cfg.Clock,
		targets:   map[string]*target{},
		downSince: map[string]time.Time{},
		rerouting: map[string]bool{},
		left:      map[string]bool{},
	}
	dirs, err := fsys.ListDirs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("hints: list %s: %w", cfg.Dir, err)
	}
	for _, d := range dirs {
		name, ok := targetName(d)
		if !ok {
			q.log.Warn("ignoring unknown directory in hints dir", "dir", d)
			continue
		}
		t, err := q.openTarget(name)
		if err != nil {
			return nil, errors.Join(err, q.closeLogs())
		}
		q.targets[name] = t
	}
	if _, err := q.expire(context.Background(), q.snapshot()); err != nil {
		return nil, errors.Join(err, q.closeLogs())
	}
	for _, t := range q.targets {
		if len(t.index) > 0 {
			q.log.Info("hints recovered", "peer", t.name, "hints", len(t.index), "bytes", t.bytes)
		}
	}
	return q, nil
}

// openTarget opens one target's log and replays it into a fresh index.
func (q *Queue) openTarget(name string) (*target, error) {
	dir := filepath.Join(q.cfg.Dir, dirName(name))
	wal, err := storage.OpenLog(q.cfg.logConfig(dir))
	if err != nil {
		return nil, fmt.Errorf("hints: open log for %s: %w", name, err)
	}
	t := &target{name: name, dir: dir, wal: wal, index: map[string]entry{},
		wake: make(chan struct{}, 1), compact: make(chan struct{}, 1)}
	err = wal.Replay(storage.Position{}, func(pos storage.Position, rec []byte) error {
		r, err := decodeRecord(rec)
		if errors.Is(err, vclock.ErrTooManySiblings) {
			// Only a binary that did not bound merged sets wrote this:
			// the set could never be delivered (no peer accepts it), so
			// it is skipped rather than read with a looser bound, and the
			// node still starts. The key keeps what its earlier records
			// held, a subset as safe to deliver as it was then;
			// anti-entropy repairs the rest. A compaction is asked for at
			// once, so that the record is dropped from the log rather
			// than skipped (and counted) again at every start.
			q.log.Warn("hint record over the sibling bound skipped", "peer", name,
				"segment", pos.Segment, "offset", pos.Offset, "error", err)
			q.st.droppedLarge.Add(1)
			signal(t.compact)
			return nil
		}
		if err != nil {
			return fmt.Errorf("hints: %s segment %d offset %d: %w", dir, pos.Segment, pos.Offset, err)
		}
		if r.Forget {
			// Records were appended under t.mu in the order the index
			// changed, so this reproduces the removal.
			delete(t.index, string(r.Key))
			return nil
		}
		e, ok := t.index[string(r.Key)]
		if ok {
			r.Since = min(r.Since, e.since)
		}
		t.index[string(r.Key)] = entry{sibs: vclock.Merge(e.sibs, r.Siblings), since: r.Since}
		return nil
	})
	if err != nil {
		_ = wal.Close()
		return nil, err
	}
	// Sizes are those of the records a compaction would write: one per key.
	for k, e := range t.index {
		rec, err := encodeRecord([]byte(k), e.sibs, e.since)
		if err != nil {
			_ = wal.Close()
			return nil, err
		}
		e.size = int64(len(rec)) + recordOverhead
		t.index[k] = e
		t.bytes += e.size
	}
	return t, nil
}

// StoreHint durably records s for key on behalf of target and returns once
// the record is durable per the fsync policy. A hint for a target down for
// longer than Config.Window fails with ErrHintWindow, one that would take
// the target past Config.MaxBytesPerTarget with ErrHintCap; both are
// counted and nothing is stored. So is, with ErrTooLarge, a hint that
// would leave the key's pending set with more than vclock.MaxSiblings
// versions. It implements replica.HintSink.
func (q *Queue) StoreHint(ctx context.Context, target string, key []byte, s vclock.Siblings) error {
	switch {
	case target == "":
		return fmt.Errorf("%w: empty target", ErrBadHint)
	case len(key) == 0:
		return fmt.Errorf("%w: empty key", ErrBadHint)
	}
	// The store's own limits: a hint it would refuse is refused here.
	if err := storage.CheckKeySize(q.cfg.MaxKeyBytes, key); err != nil {
		return fmt.Errorf("%w: %w", ErrBadHint, err)
	}
	if len(s) == 0 || !s.Valid() {
		return fmt.Errorf("%w: %w for key %q", ErrBadHint, vclock.ErrBadSiblings, key)
	}
	if err := storage.CheckNewValues(q.cfg.MaxValueBytes, nil, s); err != nil {
		return fmt.Errorf("%w: %w", ErrBadHint, err)
	}
	now := q.clock.Now()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if since, ok := q.downSince[target]; ok && now.Sub(since) > q.cfg.Window {
		q.mu.Unlock()
		q.st.droppedWindow.Add(1)
		return fmt.Errorf("%w: %s down for %v (window %v)", ErrHintWindow, target, now.Sub(since).Round(time.Second), q.cfg.Window)
	}
	t, err := q.targetLocked(target)
	q.mu.Unlock()
	if err != nil {
		return err
	}
	return q.add(ctx, t, key, s, now, now.UnixNano())
}

// targetLocked returns target's state, opening its log the first time.
// q.mu must be held.
func (q *Queue) targetLocked(name string) (*target, error) {
	if t, ok := q.targets[name]; ok {
		return t, nil
	}
	if q.rerouting[name] {
		// A new log would share the directory the re-route deletes.
		return nil, fmt.Errorf("%w: %s is being removed from the ring", ErrClosed, name)
	}
	t, err := q.openTarget(name)
	if err != nil {
		return nil, err
	}
	q.targets[name] = t
	if q.life != nil {
		q.spawn(t)
	}
	return t, nil
}

// add merges s, first stored at since (Unix ns), into t's pending set for
// key, appends the merged set to t's log and waits until it is durable.
// The cap is checked against the growth of the pending bytes: a set
// already covered adds nothing. A pending set past the grace at now is
// dropped first (its old versions must not be delivered), so s starts a
// new entry.
func (q *Queue) add(ctx context.Context, t *target, key []byte, s vclock.Siblings, now time.Time, since int64) error {
	t.mu.Lock()
	if t.removed {
		t.mu.Unlock()
		return fmt.Errorf("%w: %s was removed from the ring", ErrClosed, t.name)
	}
	old, had := t.index[string(key)]
	var forgot *storage.Pending
	if had && old.since <= q.cutoff(now) {
		p, err := t.forgetLocked(string(key), old)
		if err != nil {
			t.mu.Unlock()
			return fmt.Errorf("hints: store hint for %s: %w", t.name, err)
		}
		forgot = &p
		q.st.droppedExpired.Add(1)
		q.log.Debug("expired hint replaced by a new one", "peer", t.name, "key", fmt.Sprintf("%q", key))
		old, had = entry{}, false
	}
	merged := vclock.Merge(old.sibs, s)
	if had && merged.Equal(old.sibs) {
		// Nothing new. Its record may still be on its way to disk under
		// another caller, so wait for everything queued so far.
		p, err := t.wal.Barrier()
		t.mu.Unlock()
		if err == nil {
			_, err = p.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("hints: store hint for %s: %w", t.name, err)
		}
		q.st.stored.Add(1)
		return nil
	}
	if len(merged) > vclock.MaxSiblings {
		// No peer accepts a set this large and no record of one loads, so
		// it could never be delivered: what is pending stays, and
		// anti-entropy repairs the rest.
		t.mu.Unlock()
		return q.refuse(ctx, t, forgot, &q.st.droppedLarge, fmt.Errorf("%w: %s: key %q would hold %d versions, at most %d",
			ErrTooLarge, t.name, key, len(merged), vclock.MaxSiblings))
	}
	if had {
		since = min(since, old.since)
	}
	rec, err := encodeRecord(key, merged, since)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	size := int64(len(rec)) + recordOverhead
	if t.bytes-old.size+size > q.cfg.MaxBytesPerTarget {
		pending := t.bytes
		t.mu.Unlock()
		return q.refuse(ctx, t, forgot, &q.st.droppedCap, fmt.Errorf("%w: %s holds %d bytes, hint of %d bytes, cap %d",
			ErrHintCap, t.name, pending, size, q.cfg.MaxBytesPerTarget))
	}
	p, err := t.wal.AppendAsync(rec)
	if err != nil {
		t.mu.Unlock()
		return fmt.Errorf("hints: store hint for %s: %w", t.name, err)
	}
	t.index[string(key)] = entry{sibs: merged, size: size, since: since}
	t.bytes += size - old.size
	needCompact := t.wal.Size() > q.compactAt(t.bytes)
	t.mu.Unlock()
	if needCompact {
		signal(t.compact)
	}
	if _, err := p.Wait(ctx); err != nil {
		return fmt.Errorf("hints: store hint for %s: %w", t.name, err)
	}
	q.st.stored.Add(1)
	return nil
}

// refuse ends an add that stores nothing: it waits for forgot, the
// expired entry's removal (durable like any other), then counts the hint
// in dropped and returns why. t.mu must not be held.
func (q *Queue) refuse(ctx context.Context, t *target, forgot *storage.Pending, dropped *atomic.Uint64, why error) error {
	if forgot != nil {
		if _, err := forgot.Wait(ctx); err != nil {
			return fmt.Errorf("hints: store hint for %s: %w", t.name, err)
		}
	}
	dropped.Add(1)
	return why
}

// compactAt is the log size past which a target's log is rewritten with
// one record per pending key: twice the pending bytes, and at least a
// segment, so that rewriting costs at most as much as what it reclaims.
func (q *Queue) compactAt(pending int64) int64 {
	return max(2*pending, q.cfg.SegmentBytes)
}

// SetAlive records a liveness change of target, as gossip reports it. A
// target going down starts its window (a later down report does not
// restart it); a target coming back gets a delivery round at once.
func (q *Queue) SetAlive(target string, alive bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !alive {
		if _, ok := q.downSince[target]; !ok {
			q.downSince[target] = q.clock.Now()
		}
		return
	}
	delete(q.downSince, target)
	if t, ok := q.targets[target]; ok {
		signal(t.wake)
	}
}

// isDown reports whether liveness last said target is down.
func (q *Queue) isDown(target string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.downSince[target]
	return ok
}

// Remove re-routes the hints of targets removed from the ring: each key's
// pending set is hinted to the key's current replicas (Config.Replicas),
// which then get it through normal delivery, and the removed target's log
// is deleted. Targets without hints are ignored.
func (q *Queue) Remove(ctx context.Context, targets ...string) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	var gone []*target
	for _, name := range targets {
		if t, ok := q.targets[name]; ok {
			gone = append(gone, t)
			delete(q.targets, name)
			q.rerouting[name] = true
		}
	}
	q.mu.Unlock()
	var errs []error
	for _, t := range gone {
		errs = append(errs, q.reroute(ctx, t))
	}
	return errors.Join(errs...)
}

// reroute moves t's pending hints to the replicas of each key and deletes
// t's log. t is no longer in q.targets.
func (q *Queue) reroute(ctx context.Context, t *target) error {
	if t.stop != nil {
		t.stop()
		<-t.done
	}
	t.mu.Lock()
	t.removed = true
	pending := make(map[string]entry, len(t.index))
	for k, e := range t.index {
		pending[k] = e
	}
	t.mu.Unlock()
	now := q.clock.Now()
	cutoff := q.cutoff(now)
	var errs []error
	moved, expired := 0, 0
	for k, e := range pending {
		if e.since <= cutoff {
			// Past the grace: delivered to anyone it could resurrect a
			// delete. Its log is deleted below, so no forget record.
			expired++
			q.st.droppedExpired.Add(1)
			continue
		}
		var reps []string
		if q.cfg.Replicas != nil {
			reps = q.cfg.Replicas([]byte(k))
		}
		sent := false
		for _, r := range reps {
			if r == t.name {
				continue
			}
			q.mu.Lock()
			nt, err := q.targetLocked(r)
			q.mu.Unlock()
			if err == nil {
				// The hint keeps its age: re-routing must not extend
				// its life past the grace.
				err = q.add(ctx, nt, []byte(k), e.sibs, now, e.since)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("hints: reroute %q from %s to %s: %w", k, t.name, r, err))
				continue
			}
			sent = true
		}
		if sent {
			moved++
			q.st.rerouted.Add(1)
		} else {
			q.st.droppedGone.Add(1)
		}
	}
	if expired > 0 {
		q.log.Warn("expired hints dropped", "hints", expired, "peers", []string{t.name}, "grace", q.cfg.Grace)
	}
	q.log.Info("hints rerouted from removed node", "peer", t.name, "hints", len(pending), "rerouted", moved)
	if err := t.wal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("hints: close log of %s: %w", t.name, err))
	}
	if err := q.cfg.logFS().RemoveAll(t.dir); err != nil {
		errs = append(errs, fmt.Errorf("hints: remove %s: %w", t.dir, err))
	}
	q.mu.Lock()
	delete(q.rerouting, t.name)
	q.mu.Unlock()
	return errors.Join(errs...)
}

// Close stops delivery, waits for it and closes every hint log (fsyncing
// what was queued). Hints still pending stay on disk for the next Open.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.closed = true
	if q.stopLife != nil {
		q.stopLife()
	}
	q.mu.Unlock()
	q.workers.Wait()
	return q.closeLogs()
}

// closeLogs closes every target's log.
func (q *Queue) closeLogs() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	var errs []error
	for _, t := range q.targets {
		if err := t.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("hints: close log of %s: %w", t.name, err))
		}
	}
	return errors.Join(errs...)
}

// signal does a non-blocking send on a buffered-1 channel.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
