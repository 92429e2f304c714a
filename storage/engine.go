package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/vclock"
)

// Engine is one node's storage: an in-memory index of sibling sets sharded
// by partition, made durable by a write-ahead log with group commit and
// periodic snapshots. Safe for concurrent use; reads never wait for disk.
type Engine struct {
	cfg    Config
	fs     FS
	logger *slog.Logger
	id     identity
	actor  string // vclock actor for minted dots; see actorFile
	// openedAt is when Open began (Unix nanoseconds by Config.Now): the
	// receipt time of recovered entries that carry none.
	openedAt int64
	// counter is the highest minting counter handed out or seen for
	// actor; see ReserveCounter.
	counter atomic.Uint64
	lock    io.Closer
	log     *Log
	shards  []*shard

	// snapMu serialises snapshots; it guards lastSnap and snapshots.
	snapMu    sync.Mutex
	lastSnap  time.Time
	snapshots []uint64 // start segments of the snapshot files kept, ascending
	// snapStats is a copy of lastSnap and len(snapshots) for Stats,
	// published under snapMu whenever they change, so that Stats never
	// waits for a snapshot in flight (it may take seconds).
	snapStats atomic.Pointer[snapStats]

	snapAt      atomic.Int64 // log.Written() when the last snapshot rolled
	snapRunning atomic.Bool  // a background snapshot is in flight
	bg          sync.WaitGroup

	// closeMu guards closed; writers hold it shared so Close can wait
	// for them to have queued their records before closing the log.
	closeMu sync.RWMutex
	closed  bool
}

// shard is the index of one partition.
type shard struct {
	// mu guards m, cands, tree and scratch. Writers hold it exclusively while
	// they compute the new set, queue its WAL record and install it, so a
	// key's records reach the WAL in the order its sets were installed;
	// they release it before waiting for the fsync.
	mu      sync.RWMutex
	m       map[string]item
	cands   map[string]*candidate // pruning candidates (candidate.go); nil until one is noted
	tree    tree                  // hash tree of the entries of m, see tree.go
	scratch []byte                // record encoding buffer
	keys    atomic.Int64
	bytes   atomic.Int64
	// synced is the latest time (Unix nanoseconds, this node's clock)
	// anti-entropy saw every replica of the partition hold everything this
	// node received before it (MarkSynced); 0 until the first full sync
	// after open.
	synced atomic.Int64
}

// set installs s (nil deletes) for key with receipt time recv, and
// updates the hash tree and the stats. mu must be held exclusively.
func (sh *shard) set(key string, s vclock.Siblings, recv int64) {
	it, had := sh.m[key]
	sh.replace(key, oldOf(key, it.siblings()), had, s, recv)
}

// oldSet is what replace takes away for key's current set: its hash tree
// digest and its size in the stats.
type oldSet struct {
	digest uint64
	size   int64
}

func oldOf(key string, cur vclock.Siblings) oldSet {
	return oldSet{digest: digestString(key, cur), size: int64(len(key) + cur.Size())}
}

// replace is set for a caller that has already decoded key's current set
// (old, from oldOf; had: the key is present), saving a second decoding.
func (sh *shard) replace(key string, old oldSet, had bool, s vclock.Siblings, recv int64) {
	if delta := old.digest ^ digestString(key, s); delta != 0 {
		sh.tree.add(leafString(key), delta)
	}
	if had {
		sh.bytes.Add(-old.size)
	}
	if len(s) == 0 {
		if had {
			delete(sh.m, key)
			delete(sh.cands, key)
			sh.keys.Add(-1)
		}
		return
	}
	if !had {
		sh.keys.Add(1)
	}
	// The map keeps the key string of the new blob (an assignment to a
	// present string key replaces the stored key too), so the old blob
	// is released.
	it, k := newItem(key, s, recv)
	sh.m[k] = it
	sh.bytes.Add(int64(len(key) + s.Size()))
}

// snapStats is what Stats reports of the snapshots; see Engine.snapStats.
type snapStats struct {
	last  time.Time
	count int
}

// publishSnapStats copies lastSnap and the snapshot count for Stats.
// snapMu must be held, or the engine not yet shared (open).
func (e *Engine) publishSnapStats() {
	e.snapStats.Store(&snapStats{last: e.lastSnap, count: len(e.snapshots)})
}

// PartitionStat is the size of one partition's index.
type PartitionStat struct {
	Keys  int64
	Bytes int64 // approximate: keys plus vclock.Siblings.Size
}

// Stats are engine totals.
type Stats struct {
	Keys         int64
	Bytes        int64     // approximate bytes of keys and sibling sets
	WALBytes     int64     // bytes in WAL segments on disk
	Segments     int       // WAL segment files on disk
	Snapshots    int       // snapshot files kept
	LastSnapshot time.Time // zero if none was written since open
	Failed       bool      // a disk error happened; writes are refused
	// Actors is the fill of the table of actors that index entries refer
	// to: one table per process, shared by its engines.
	Actors ActorTableStats
}

// Open opens or creates the data directory and recovers its contents: the
// newest valid snapshot, then the WAL after it. It refuses a directory of
// another node (ErrWrongNode) and damaged data (a *CorruptError, which
// matches ErrCorrupt and names file and offset).
func Open(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{cfg: cfg, fs: cfg.FS, logger: discardIfNil(cfg.Logger).With("component", "storage", "node", cfg.NodeID)}
	if e.fs == nil {
		e.fs = OSFS{FileMode: cfg.FileMode}
	}
	cfg.Logger = e.logger
	e.cfg.Logger = e.logger
	if err := vfs.MkdirAllSynced(e.fs, cfg.Dir); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", cfg.Dir, err)
	}
	// The lock first: tightening a directory another process owns would
	// change modes under a running node, and then be refused anyway.
	lock, err := e.fs.Lock(filepath.Join(cfg.Dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	e.lock = lock
	if t, ok := e.fs.(tightener); ok {
		res, err := t.Tighten(cfg.Dir)
		if err != nil {
			_ = lock.Close()
			return nil, err
		}
		mode := fmt.Sprintf("%#o", cfg.FileMode)
		if res.ChangedTotal > 0 {
			e.logger.Warn("took permissions away from data directory entries more open than storage.file_mode allows",
				"dir", cfg.Dir, "file_mode", mode, "changed", res.ChangedTotal, "first", res.Changed)
		}
		if res.SkippedTotal > 0 {
			e.logger.Warn("left data directory entries more open than storage.file_mode allows as they are: another user owns them or the node may not change them",
				"dir", cfg.Dir, "file_mode", mode, "skipped", res.SkippedTotal, "first", res.Skipped)
		}
	}
	if err := e.open(); err != nil {
		if e.log != nil {
			_ = e.log.Close()
		}
		_ = lock.Close()
		return nil, err
	}
	return e, nil
}

func (e *Engine) open() error {
	start := time.Now()
	id, created, err := loadIdentity(e.fs, e.cfg.Dir, e.cfg.NodeID, e.cfg.Now())
	if err != nil {
		return err
	}
	e.id = id
	cs, err := readClean(e.fs, e.cfg.Dir)
	if err != nil {
		return err
	}
	lc := e.cfg.logConfig()
	lc.FS = e.fs
	lc.Expect = cs.end
	if e.log, err = OpenLog(lc); err != nil {
		return err
	}
	actor, counter, err := loadActor(e.fs, e.cfg.Dir, id, created, cs.clean, e.log.Truncated() > 0)
	if err != nil {
		return err
	}
	e.actor = actor
	e.counter.Store(counter)
	e.openedAt = e.cfg.Now().UnixNano()
	e.resetIndex()
	if err := e.recover(); err != nil {
		return err
	}
	if cs.clean {
		if err := removeClean(e.fs, e.cfg.Dir); err != nil {
			return err
		}
	}
	e.snapAt.Store(0)
	e.publishSnapStats()
	var keys int64
	for _, sh := range e.shards {
		keys += sh.keys.Load()
	}
	e.logger.Info("storage opened", "incarnation", id.Incarnation, "actor", e.actor, "keys", keys,
		"wal_bytes", e.log.Size(), "duration", time.Since(start))
	return nil
}

func (e *Engine) resetIndex() {
	e.shards = make([]*shard, e.cfg.Partitions)
	for i := range e.shards {
		e.shards[i] = &shard{m: make(map[string]item)}
	}
}

// NodeID returns the node name the data directory belongs to.
func (e *Engine) NodeID() string { return e.id.NodeID }

// Incarnation returns the vclock actor for dots minted on this node: the ID
// created with the data directory, renewed after every unclean shutdown
// (see actorFile for why). It is fixed while the engine is open.
func (e *Engine) Incarnation() string { return e.actor }

// shardOf returns the shard of key, or an error if the partitioner
// misbehaves.
func (e *Engine) shardOf(key []byte) (*shard, error) {
	p := e.cfg.Partitioner(key)
	if p < 0 || p >= len(e.shards) {
		return nil, fmt.Errorf("%w: partitioner returned %d for a key, want [0,%d)", ErrInvalid, p, len(e.shards))
	}
	return e.shards[p], nil
}

// Get returns key's sibling set, nil if absent. It never waits for disk.
// The result is shared: the caller must not modify it.
func (e *Engine) Get(key []byte) vclock.Siblings {
	sh, err := e.shardOf(key)
	if err != nil {
		return nil
	}
	sh.mu.RLock()
	it := sh.m[string(key)]
	sh.mu.RUnlock()
	return it.siblings() // the blob is immutable: decoded outside the lock
}

// Apply merges s into key's sibling set, persists the result per the fsync
// policy and returns it. Applying a set already covered is a no-op that
// still waits until the covering state is durable.
func (e *Engine) Apply(ctx context.Context, key []byte, s vclock.Siblings) (vclock.Siblings, error) {
	// Whatever Merge cannot repair in a non-canonical s stays in the
	// result, which Update's check refuses with ErrInvalid: one Valid pass
	// per write instead of two.
	return e.Update(ctx, key, func(cur vclock.Siblings) (vclock.Siblings, error) {
		return vclock.Merge(cur, s), nil
	})
}

// Update runs fn on key's current sibling set under the key's lock and
// installs fn's result in its place (fn must merge itself; a nil or empty
// result deletes the key). Two concurrent Updates of one key see each
// other's results, so a coordinator can vclock.Mint atomically. If fn
// fails, nothing is written. A change sets the key's receipt time to
// Config.Now (see Collect). The lock is released before waiting for the
// fsync, so group commit batches concurrent writers of any keys.
//
// fn must be quick and must not call back into the Engine (the lock is the
// partition's), except ReserveCounter, which takes no lock. fn must not
// modify cur, its values or its contexts: the values point into the
// index's own copy. If ctx ends while waiting for disk,
// Update returns ctx's error and the write may still become durable.
func (e *Engine) Update(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, error) {
	next, p, err := e.queue(ctx, key, fn)
	if err != nil {
		return nil, err
	}
	if _, err := p.Wait(ctx); err != nil {
		return nil, fmt.Errorf("storage: update key %q: %w", key, err)
	}
	e.maybeSnapshot()
	return next, nil
}

// UpdateAsync is Update without the wait for disk: the result is installed
// (readers see it) and its record queued when it returns, and durable
// reports when the record is durable per the fsync policy (it may be
// called once). A coordinator uses it to send a new version to the other
// replicas while its own copy is being synced. A crash before durable
// returns loses the version here; the node then renews its minting actor
// (an unclean stop), so the dot it held is never minted again.
func (e *Engine) UpdateAsync(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (next vclock.Siblings, durable func(context.Context) error, err error) {
	next, p, err := e.queue(ctx, key, fn)
	if err != nil {
		return nil, nil, err
	}
	return next, func(ctx context.Context) error {
		if _, err := p.Wait(ctx); err != nil {
			return fmt.Errorf("storage: update key %q: %w", key, err)
		}
		e.maybeSnapshot()
		return nil
	}, nil
}

// queue checks an update's arguments, then stages it (stage).
func (e *Engine) queue(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, Pending, error) {
	if len(key) == 0 {
		return nil, Pending{}, fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if err := CheckKeySize(e.cfg.MaxKeyBytes, key); err != nil {
		return nil, Pending{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, Pending{}, err
	}
	sh, err := e.shardOf(key)
	if err != nil {
		return nil, Pending{}, err
	}
	next, p, err := e.stage(sh, key, fn)
	if err != nil {
		return nil, Pending{}, fmt.Errorf("storage: update key %q: %w", key, err)
	}
	return next, p, nil
}

// stage runs fn under the shard lock, queues the record (or a barrier if
// nothing changes) and installs the result. The deferred unlocks keep the
// locks from leaking if fn panics.
func (e *Engine) stage(sh *shard, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (next vclock.Siblings, p Pending, err error) {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return nil, p, ErrClosed
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it, had := sh.m[string(key)]
	cur := it.siblings()
	// What the hash tree and the stats subtract is taken before fn runs:
	// fn must not modify cur, but should one, the tree stays right.
	old := oldOf(string(key), cur)
	if next, err = fn(cur); err != nil {
		return nil, p, err
	}
	switch {
	case !next.Valid():
		return nil, p, fmt.Errorf("%w: update produced a non-canonical sibling set", ErrInvalid)
	case next.Equal(cur):
		// Nothing changes, but cur itself may not be durable yet.
		p, err = e.log.Barrier()
		return cur, p, err
	}
	if err := CheckNewValues(e.cfg.MaxValueBytes, cur, next); err != nil {
		return nil, p, err
	}
	recv := e.cfg.Now().UnixNano()
	sh.scratch = appendEntry(sh.scratch[:0], key, next, recv)
	if p, err = e.log.AppendAsync(sh.scratch); err != nil {
		return nil, p, err
	}
	sh.replace(string(key), old, had, next, recv)
	return next, p, nil
}

// CheckKeySize refuses a key longer than maxKey bytes with an error
// wrapping ErrTooLarge: the key limit of Update, shared with whatever keeps
// keys for the store (the hint queue).
func CheckKeySize(maxKey int, key []byte) error {
	if len(key) > maxKey {
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrTooLarge, len(key), maxKey)
	}
	return nil
}

// CheckNewValues refuses next, with an error wrapping ErrTooLarge, if a
// version in it that cur does not hold has a value over maxValue bytes.
// Versions already stored are not checked again, so a lowered limit never
// makes a key unwritable; with cur nil every version is checked. Both sets
// are sorted by dot.
func CheckNewValues(maxValue int, cur, next vclock.Siblings) error {
	i := 0
	for k := range next {
		v := &next[k]
		for i < len(cur) && cur[i].Dot.Compare(v.Dot) < 0 {
			i++
		}
		if i < len(cur) && cur[i].Dot == v.Dot {
			continue
		}
		if len(v.Value) > maxValue {
			return fmt.Errorf("%w: value of %d bytes, limit %d", ErrTooLarge, len(v.Value), maxValue)
		}
	}
	return nil
}

// Range calls fn for each key of partition in no particular order until fn
// returns false. It works on a copy of the partition's entries taken at
// the start, so fn may call the Engine; writes made during the walk may or
// may not be seen. key and s must not be modified.
func (e *Engine) Range(partition int, fn func(key []byte, s vclock.Siblings) bool) {
	if partition < 0 || partition >= len(e.shards) {
		return
	}
	for _, ent := range e.shards[partition].entries() {
		if !fn([]byte(ent.key), ent.siblings()) {
			return
		}
	}
}

// Scan returns, in key order, up to maxKeys entries of partition whose
// keys sort after after (from the first key when after is empty). It stops
// early once the keys and sets collected reach maxBytes (by
// vclock.Siblings.Size), but always returns at least one entry when any
// remains. more reports that keys remain after the last one returned. It
// is the cursor a partition transfer pages with: keys written during a
// scan after the cursor are seen by a later call. The sets are shared and
// must not be modified.
func (e *Engine) Scan(partition int, after []byte, maxKeys int, maxBytes int64) (keys [][]byte, sets []vclock.Siblings, more bool) {
	if partition < 0 || partition >= len(e.shards) || maxKeys <= 0 {
		return nil, nil, false
	}
	sh := e.shards[partition]
	sh.mu.RLock()
	cands := make([]entry, 0, len(sh.m))
	for k, it := range sh.m {
		if k > string(after) {
			cands = append(cands, entry{key: k, item: it})
		}
	}
	sh.mu.RUnlock()
	slices.SortFunc(cands, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	var size int64
	for i, c := range cands {
		if i == maxKeys || (i > 0 && size >= maxBytes) {
			return keys, sets, true
		}
		keys = append(keys, []byte(c.key))
		s := c.siblings()
		sets = append(sets, s)
		size += int64(len(c.key) + s.Size())
	}
	return keys, sets, false
}

type entry struct {
	key string
	item
	cand *candidate // the key's pruning candidate, nil when none
}

// entries copies out the shard's entries; the sibling sets and candidates
// are shared (they are immutable).
func (sh *shard) entries() []entry {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	out := make([]entry, 0, len(sh.m))
	for k, it := range sh.m {
		out = append(out, entry{k, it, sh.cands[k]})
	}
	return out
}

// PartitionStats returns the keys and bytes of each partition; index i is
// partition i.
func (e *Engine) PartitionStats() []PartitionStat {
	out := make([]PartitionStat, len(e.shards))
	for i, sh := range e.shards {
		out[i] = PartitionStat{Keys: sh.keys.Load(), Bytes: sh.bytes.Load()}
	}
	return out
}

// Stats returns engine totals. It takes no lock that a snapshot or a WAL
// fsync holds, so it answers at once whatever the disk is doing.
func (e *Engine) Stats() Stats {
	var st Stats
	for _, sh := range e.shards {
		st.Keys += sh.keys.Load()
		st.Bytes += sh.bytes.Load()
	}
	st.WALBytes = e.log.Size()
	st.Segments = len(e.log.Segments())
	st.Failed = e.log.Err() != nil
	st.Actors = actors.stats()
	if ss := e.snapStats.Load(); ss != nil {
		st.LastSnapshot, st.Snapshots = ss.last, ss.count
	}
	return st
}

// Close waits for a running snapshot, writes and fsyncs the WAL whatever
// the policy, and releases the directory. Later calls return ErrClosed.
func (e *Engine) Close() error {
	e.closeMu.Lock()
	if e.closed {
		e.closeMu.Unlock()
		return ErrClosed
	}
	e.closed = true
	e.closeMu.Unlock()
	e.bg.Wait()
	// Wait for an explicit Snapshot in flight: the empty section is the wait.
	e.snapMu.Lock()
	e.snapMu.Unlock() //nolint:staticcheck // SA2001: deliberate, see above
	err := e.log.Close()
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	if err == nil && e.log.Err() == nil {
		// Every dot handed out is now on disk: the next open may keep
		// minting under the same actor, from the counter saved first.
		err = writeActor(e.fs, e.cfg.Dir, e.actor, e.counter.Load())
		if err == nil {
			err = markClean(e.fs, e.cfg.Dir, e.log.End())
		}
	}
	return errors.Join(err, e.lock.Close())
}
