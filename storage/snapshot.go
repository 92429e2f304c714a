package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
	"unsafe"
)

// snapshotsKept is how many snapshot files are kept: the newest and the
// one before it, so that a newest snapshot that fails its checksum can be
// skipped for the previous one; WAL segments from the older one's start on
// are kept with them.
const snapshotsKept = 2

// Snapshot writes a snapshot now and deletes the WAL segments and older
// snapshots it makes unnecessary. Writes continue meanwhile: the WAL rolls
// to a new segment first, and recovery replays from that segment.
func (e *Engine) Snapshot(ctx context.Context) error {
	e.closeMu.RLock()
	closed := e.closed
	e.closeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	// Close may have begun while this call waited for a running snapshot;
	// it waits for snapMu only once, so check again now that it is held.
	e.closeMu.RLock()
	closed = e.closed
	e.closeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	start := time.Now()
	err := e.snapshot(ctx)
	e.publishSnapStats() // even after a failure: retain may have dropped files
	d := time.Since(start)
	if err != nil {
		e.logger.Warn("snapshot failed", "err", err, "duration", d)
	} else {
		e.logger.Info("snapshot written", "duration", d)
	}
	if e.cfg.OnSnapshot != nil {
		e.cfg.OnSnapshot(d, err)
	}
	return err
}

// snapshot does the work of Snapshot; snapMu is held.
func (e *Engine) snapshot(ctx context.Context) error {
	written := e.log.Written()
	pos, err := e.log.Roll()
	if err != nil {
		return fmt.Errorf("storage: snapshot: roll wal: %w", err)
	}
	e.snapAt.Store(written)
	now := e.cfg.Now()
	name := filepath.Join(e.cfg.Dir, snapshotName(pos.Segment))
	tmp := name + ".tmp"
	f, err := e.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("storage: snapshot: %w", err)
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = e.fs.Remove(tmp)
		return fmt.Errorf("storage: snapshot %s: %w", name, err)
	}
	sw, err := newSnapshotWriter(f, snapHeader{NodeID: e.id.NodeID, Incarnation: e.id.Incarnation,
		StartSegment: pos.Segment, Created: now.UnixNano()})
	if err != nil {
		return fail(err)
	}
	for _, sh := range e.shards {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		for _, ent := range sh.entries() {
			if err := sw.add(unsafe.Slice(unsafe.StringData(ent.key), len(ent.key)), ent.siblings(), ent.recv(), ent.cand); err != nil {
				return fail(err)
			}
		}
	}
	if err := sw.finish(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = e.fs.Remove(tmp)
		return fmt.Errorf("storage: snapshot %s: %w", name, err)
	}
	if err := e.fs.Rename(tmp, name); err != nil {
		_ = e.fs.Remove(tmp)
		return fmt.Errorf("storage: snapshot %s: %w", name, err)
	}
	if err := e.fs.SyncDir(e.cfg.Dir); err != nil {
		return fmt.Errorf("storage: snapshot %s: sync dir: %w", name, err)
	}
	e.lastSnap = now
	e.snapshots = append(e.snapshots, pos.Segment)
	return e.retain()
}

// retain deletes snapshots beyond the newest snapshotsKept and the WAL
// segments before the oldest snapshot kept. snapMu is held.
func (e *Engine) retain() error {
	if len(e.snapshots) < snapshotsKept {
		return nil
	}
	drop := e.snapshots[:len(e.snapshots)-snapshotsKept]
	for _, s := range drop {
		if err := e.fs.Remove(filepath.Join(e.cfg.Dir, snapshotName(s))); err != nil {
			return fmt.Errorf("storage: remove old snapshot: %w", err)
		}
	}
	e.snapshots = append([]uint64(nil), e.snapshots[len(drop):]...)
	if len(drop) > 0 {
		if err := e.fs.SyncDir(e.cfg.Dir); err != nil {
			return fmt.Errorf("storage: sync dir: %w", err)
		}
	}
	return e.log.DeleteBefore(e.snapshots[0])
}

// maybeSnapshot starts a background snapshot once SnapshotBytes of WAL were
// written since the last one began.
func (e *Engine) maybeSnapshot() {
	if e.cfg.SnapshotBytes < 0 || e.log.Written()-e.snapAt.Load() < e.cfg.SnapshotBytes {
		return
	}
	if !e.snapRunning.CompareAndSwap(false, true) {
		return
	}
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		e.snapRunning.Store(false)
		return
	}
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		defer e.snapRunning.Store(false)
		// The error is logged and reported to OnSnapshot by Snapshot.
		_ = e.Snapshot(context.Background())
	}()
}
