package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// recover rebuilds the index: the newest snapshot that decodes, then every
// WAL record after its start, each record replacing its key's set. Replace
// (rather than merge) is exact because a key's records reach the WAL in
// the order its sets were installed, and a snapshot holds for every key a
// state no older than the last record before its start.
func (e *Engine) recover() error {
	names, err := e.fs.List(e.cfg.Dir)
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", e.cfg.Dir, err)
	}
	var snaps []uint64
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			// A snapshot or identity write that a crash interrupted.
			if err := e.fs.Remove(filepath.Join(e.cfg.Dir, n)); err != nil {
				return fmt.Errorf("storage: remove stale %s: %w", n, err)
			}
			continue
		}
		if s, ok := parseSnapshotName(n); ok {
			snaps = append(snaps, s)
		}
	}
	slices.Sort(snaps)
	segs := e.log.Segments()
	first, last := segs[0], segs[len(segs)-1]

	from := uint64(0)
	var damaged error
	for i := len(snaps) - 1; i >= 0 && from == 0; i-- {
		start := snaps[i]
		name := filepath.Join(e.cfg.Dir, snapshotName(start))
		err := e.loadSnapshot(name, start, first, last)
		if err == nil {
			from = start
			e.snapshots = snaps[:i+1]
			break
		}
		e.resetIndex()
		e.logger.Warn("skipping damaged snapshot", "file", name, "err", err)
		damaged = errors.Join(damaged, err)
		// Keep the file for inspection, out of the way of later recoveries
		// and of snapshot retention.
		if rerr := e.fs.Rename(name, name+".damaged"); rerr != nil {
			return fmt.Errorf("storage: set aside damaged snapshot: %w", rerr)
		}
	}
	if from == 0 {
		if first != 1 {
			// Segments before first were deleted because a snapshot
			// covered them; without a usable snapshot they are lost.
			return &CorruptError{File: filepath.Join(e.cfg.Dir, "wal", segmentName(first)),
				Err: fmt.Errorf("no usable snapshot and the WAL starts at segment %d, not 1: %w", first, errors.Join(damaged, errMissing))}
		}
		from = 1
	}
	dec := newEntryDecoder(e.openedAt)
	return e.log.Replay(Position{Segment: from}, func(pos Position, rec []byte) error {
		ent, err := dec.decode(rec)
		if err != nil {
			return &CorruptError{File: filepath.Join(e.cfg.Dir, "wal", segmentName(pos.Segment)), Offset: pos.Offset, Err: err}
		}
		return e.install(ent)
	})
}

// install puts a recovered entry in the index and raises the minting
// counter to the actor's counters in it (a set later replaced counts too:
// its dots may survive on other replicas), up to vclock.CounterLimit.
func (e *Engine) install(ent decodedEntry) error {
	sh, err := e.shardOf(ent.key)
	if err != nil {
		return err
	}
	key := string(ent.key)
	sh.set(key, ent.s, ent.recv)
	if ent.setsCand && len(ent.s) > 0 {
		sh.setCandidate(key, ent.cand)
	}
	e.raiseCounter(ent.s.MaxCounter(e.actor))
	return nil
}

var errMissing = errors.New("data missing")

// loadSnapshot decodes one snapshot file into the (empty) index.
func (e *Engine) loadSnapshot(name string, start, first, last uint64) error {
	if start < first || start > last {
		return fmt.Errorf("snapshot starts at segment %d but the WAL holds %d..%d", start, first, last)
	}
	data, err := readAll(e.fs, name)
	if err != nil {
		return err
	}
	var serr error
	h, err := decodeSnapshot(data, e.openedAt, func(ent decodedEntry) {
		if err := e.install(ent); err != nil {
			serr = err
		}
	})
	if err != nil {
		return &CorruptError{File: name, Err: err}
	}
	if serr != nil {
		return serr
	}
	if h.StartSegment != start || h.NodeID != e.id.NodeID || h.Incarnation != e.id.Incarnation {
		return &CorruptError{File: name, Err: fmt.Errorf("snapshot header (node %q, incarnation %q, segment %d) does not match its directory",
			h.NodeID, h.Incarnation, h.StartSegment)}
	}
	e.lastSnap = time.Unix(0, h.Created)
	return nil
}
