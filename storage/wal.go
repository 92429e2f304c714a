package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ringkv/ringkv/internal/vfs"
)

// Position names a record in a Log: its segment number and byte offset.
// Positions order records in the order they were appended.
type Position struct {
	Segment uint64
	Offset  int64
}

// Log is a segmented write-ahead log of framed, checksummed records with
// group commit: one writer goroutine takes every record appended since its
// last write, writes them with one write call and, under FsyncAlways,
// makes them durable with one fsync. Safe for concurrent use.
//
// The Engine keeps its WAL in one; hinted handoff keeps one per target.
type Log struct {
	cfg    LogConfig
	fs     FS
	logger *slog.Logger

	// mu guards the fields below it: the batch being filled, the set of
	// segments on disk and the sticky failure.
	mu       sync.Mutex
	cur      *batch
	segments []uint64 // segment numbers on disk, ascending
	failed   error    // first disk error; every later write returns it
	closed   bool

	kick    chan struct{} // wakes the writer; buffered 1
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the writer exits
	written atomic.Int64  // bytes appended since open (for snapshot triggers)
	size    atomic.Int64  // bytes in all segments on disk

	// Writer-goroutine state, touched only by the writer (and by OpenLog
	// before the writer starts).
	file    File
	seg     uint64
	segSize int64
	dirty   bool // written since the last fsync
	// spareBuf and spareOps are a committed batch's buffers, emptied, for
	// the next batch: one that starts from nil grows its buffer by
	// copying, under mu, at every doubling.
	spareBuf []byte
	spareOps []op

	// truncated is the torn tail OpenLog cut off, in bytes; set before
	// the writer starts, read-only after.
	truncated int64
}

// batch is a group of appends committed together. Appenders hold a
// pointer to it and wait on done.
type batch struct {
	buf  []byte
	ops  []op
	pos  []Position // filled by the writer, index = op
	done chan struct{}
	err  error // set before done is closed
}

// op is one entry of a batch: a record buf[start:end], a roll, or a
// barrier (start == end, no roll) that only waits for earlier records.
type op struct {
	start, end int
	roll       bool
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// Pending is an append or barrier that has been queued but may not be
// durable yet.
type Pending struct {
	b *batch
	i int
}

// Wait blocks until the operation is done per the fsync policy and returns
// its position. If ctx ends first, Wait returns ctx's error; the record
// may still become durable.
func (p Pending) Wait(ctx context.Context) (Position, error) {
	select {
	case <-p.b.done:
	default:
		select {
		case <-p.b.done:
		case <-ctx.Done():
			return Position{}, ctx.Err()
		}
	}
	if p.b.err != nil {
		return Position{}, p.b.err
	}
	return p.b.pos[p.i], nil
}

func segmentName(n uint64) string { return fmt.Sprintf("%016x.wal", n) }

func (l *Log) path(seg uint64) string { return filepath.Join(l.cfg.Dir, segmentName(seg)) }

// OpenLog opens (creating if needed) the log in cfg.Dir. It checks the
// last segment: a torn tail is cut off (and logged); damage before the
// tail returns a *CorruptError. With cfg.Expect, a log that does not end
// exactly there (a segment missing or added, a last segment shorter,
// longer or with a torn tail) returns a *CorruptError and is left as it
// is. Earlier segments are checked by Replay. New records are appended to
// the last segment.
func OpenLog(cfg LogConfig) (*Log, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{
		cfg:    cfg,
		fs:     cfg.FS,
		logger: discardIfNil(cfg.Logger),
		cur:    newBatch(),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if l.fs == nil {
		l.fs = OSFS{}
	}
	// Synced: the directory of a log made at run time (a hints target's)
	// would otherwise vanish in a crash with the records synced in it.
	if err := vfs.MkdirAllSynced(l.fs, cfg.Dir); err != nil {
		return nil, fmt.Errorf("storage: create log dir: %w", err)
	}
	segs, err := listSegments(l.fs, cfg.Dir)
	if err != nil {
		return nil, err
	}
	l.segments = segs
	if len(segs) == 0 {
		if cfg.Expect != nil {
			if err := l.checkEnd(*cfg.Expect, 0, 0); err != nil {
				return nil, err
			}
		}
		if err := l.createSegment(1); err != nil {
			return nil, err
		}
	} else {
		if err := l.openLast(); err != nil {
			return nil, err
		}
	}
	go l.run()
	return l, nil
}

// listSegments returns the segment numbers in dir, ascending, and removes
// nothing: unknown files are left alone.
func listSegments(fs FS, dir string) ([]uint64, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: list %s: %w", dir, err)
	}
	var segs []uint64
	for _, name := range names {
		var n uint64
		if len(name) == 20 && filepath.Ext(name) == ".wal" {
			if _, err := fmt.Sscanf(name, "%016x.wal", &n); err == nil && n > 0 {
				segs = append(segs, n)
			}
		}
	}
	return segs, nil
}

// openLast checks the last segment, truncates a torn tail and opens it for
// appending.
func (l *Log) openLast() error {
	for i, s := range l.segments {
		if i > 0 && s != l.segments[i-1]+1 {
			return &CorruptError{File: l.path(s), Err: fmt.Errorf("segment %d missing", l.segments[i-1]+1)}
		}
	}
	last := l.segments[len(l.segments)-1]
	name := l.path(last)
	data, err := readAll(l.fs, name)
	if err != nil {
		return err
	}
	end, err := scanSegment(name, data, true, nil)
	if err != nil {
		return err
	}
	if l.cfg.Expect != nil {
		if err := l.checkEnd(*l.cfg.Expect, end, int64(len(data))); err != nil {
			return err
		}
	}
	l.truncated = int64(len(data)) - end
	if end < int64(len(data)) {
		l.logger.Warn("truncating torn wal tail", "file", name, "offset", end, "bytes", int64(len(data))-end)
		if err := l.fs.Truncate(name, end); err != nil {
			return fmt.Errorf("storage: truncate torn tail of %s: %w", name, err)
		}
	}
	f, err := l.fs.OpenAppend(name)
	if err != nil {
		return fmt.Errorf("storage: open %s: %w", name, err)
	}
	if len(data) > 0 {
		// Make the truncation durable before anything is appended after
		// it, and the bytes a killed process left unsynced durable before
		// this one records the segment's length at Close or seals it with
		// a roll: both trust that those bytes survive a power loss, and
		// without a write of our own nothing else would fsync them.
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return fmt.Errorf("storage: sync %s: %w", name, err)
		}
	}
	var total int64
	for _, s := range l.segments[:len(l.segments)-1] {
		sz, err := fileSize(l.fs, l.path(s))
		if err != nil {
			_ = f.Close()
			return err
		}
		total += sz
	}
	l.size.Store(total + end)
	l.file, l.seg, l.segSize = f, last, end
	return nil
}

// createSegment creates segment n, makes its directory entry durable and
// makes it the current segment. Called before the writer starts or by it.
func (l *Log) createSegment(n uint64) error {
	f, err := l.fs.Create(l.path(n))
	if err != nil {
		return fmt.Errorf("storage: create segment %s: %w", l.path(n), err)
	}
	if err := l.fs.SyncDir(l.cfg.Dir); err != nil {
		_ = f.Close()
		return fmt.Errorf("storage: sync log dir: %w", err)
	}
	l.file, l.seg, l.segSize = f, n, 0
	l.mu.Lock()
	l.segments = append(l.segments, n)
	l.mu.Unlock()
	return nil
}

// AppendAsync queues rec (which is copied) and returns without waiting.
// Records are written in the order AppendAsync was called, which lets a
// caller holding its own lock fix the order of its records and then wait
// outside the lock.
func (l *Log) AppendAsync(rec []byte) (Pending, error) {
	if len(rec) == 0 || len(rec) > MaxRecordBytes {
		return Pending{}, fmt.Errorf("%w: record of %d bytes (need 1..%d)", ErrInvalid, len(rec), MaxRecordBytes)
	}
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return Pending{}, err
	}
	b := l.cur
	start := len(b.buf)
	b.buf = appendRecord(b.buf, rec)
	b.ops = append(b.ops, op{start: start, end: len(b.buf)})
	p := Pending{b: b, i: len(b.ops) - 1}
	l.mu.Unlock()
	l.wake()
	return p, nil
}

// Append writes rec and returns its position once it is durable per the
// fsync policy (on disk for FsyncAlways, handed to the OS otherwise).
func (l *Log) Append(ctx context.Context, rec []byte) (Position, error) {
	p, err := l.AppendAsync(rec)
	if err != nil {
		return Position{}, err
	}
	return p.Wait(ctx)
}

// Barrier returns a Pending that completes once every record queued before
// it is durable per the policy. Its position is where the next record will
// go.
func (l *Log) Barrier() (Pending, error) { return l.queueOp(op{}) }

// Roll closes the current segment (fsyncing it) after every record queued
// before the call and starts a new one. It returns the position of the new
// segment's start: replaying from it sees every record queued after Roll.
func (l *Log) Roll() (Position, error) {
	p, err := l.queueOp(op{roll: true})
	if err != nil {
		return Position{}, err
	}
	return p.Wait(context.Background())
}

func (l *Log) queueOp(o op) (Pending, error) {
	l.mu.Lock()
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return Pending{}, err
	}
	b := l.cur
	o.start, o.end = len(b.buf), len(b.buf)
	b.ops = append(b.ops, o)
	p := Pending{b: b, i: len(b.ops) - 1}
	l.mu.Unlock()
	l.wake()
	return p, nil
}

// usable reports why the log takes no writes. l.mu must be held.
func (l *Log) usable() error {
	if l.failed != nil {
		return l.failed
	}
	if l.closed {
		return ErrClosed
	}
	return nil
}

func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Err returns the sticky disk failure, if any (it wraps ErrFailed).
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Size returns the bytes in the log's segments on disk.
func (l *Log) Size() int64 { return l.size.Load() }

// Written returns the bytes appended since the log was opened, a
// monotonic counter for callers that trigger work on log growth.
func (l *Log) Written() int64 { return l.written.Load() }

// Segments returns the segment numbers on disk, ascending.
func (l *Log) Segments() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint64(nil), l.segments...)
}

// DeleteBefore removes every segment numbered below seg. The current
// segment is never removed.
func (l *Log) DeleteBefore(seg uint64) error {
	l.mu.Lock()
	var victims []uint64
	keep := l.segments[:0:0]
	last := l.segments[len(l.segments)-1]
	for _, s := range l.segments {
		if s < seg && s != last {
			victims = append(victims, s)
		} else {
			keep = append(keep, s)
		}
	}
	l.segments = keep
	l.mu.Unlock()
	var errs []error
	for _, s := range victims {
		sz, _ := fileSize(l.fs, l.path(s))
		if err := l.fs.Remove(l.path(s)); err != nil {
			errs = append(errs, fmt.Errorf("storage: remove segment: %w", err))
			continue
		}
		l.size.Add(-sz)
	}
	if len(victims) > 0 {
		if err := l.fs.SyncDir(l.cfg.Dir); err != nil {
			errs = append(errs, fmt.Errorf("storage: sync log dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close writes everything queued and, whatever the policy, fsyncs the
// current segment if anything was written to it since its last fsync (by
// this process: OpenLog fsyncs what an earlier one left), then closes the
// log. After a disk error nothing more is written and Close returns
// that error. Appends after Close fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.failed
	if l.file != nil {
		if cerr := l.file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("storage: close segment: %w", cerr)
		}
		l.file = nil
	}
	return err
}
