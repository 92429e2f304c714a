package storage

import (
	"fmt"
	"time"
	"unsafe"
)

// run is the writer goroutine: it takes the batch being filled, writes it,
// fsyncs per policy and wakes its waiters, until Close.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.cfg.Fsync == FsyncInterval {
		t := time.NewTicker(l.cfg.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.kick:
			l.commit(l.take())
		case <-tick:
			if l.dirty {
				_ = l.sync(0) // a failure is kept by fail: the next append returns it
			}
		case <-l.stop:
			// Close has set closed, so nothing is queued after this take.
			l.commit(l.take())
			if l.dirty {
				_ = l.sync(0) // a failure is kept by fail: the next append returns it
			}
			return
		}
	}
}

// take swaps out the batch being filled.
func (l *Log) take() *batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.cur
	if len(b.ops) == 0 {
		return nil
	}
	l.cur = newBatch()
	l.cur.buf, l.cur.ops = l.spareBuf[:0], l.spareOps[:0]
	l.spareBuf, l.spareOps = nil, nil
	return b
}

// maxSpareBuf bounds the bytes kept for reuse, record buffer and op list
// together: a batch of large records, or a burst of small ones queued
// behind a slow fsync, must not pin its buffers for good.
const maxSpareBuf = 1 << 20

// opBytes is the size of one op in a batch's op list.
const opBytes = int(unsafe.Sizeof(op{}))

// keep takes a written batch's buffers for the next batch (take), the
// record buffer first, within maxSpareBuf; the batch's waiters read only
// its positions and error.
func (l *Log) keep(b *batch) {
	l.spareBuf, l.spareOps = nil, nil
	kept := 0
	if cap(b.buf) <= maxSpareBuf {
		l.spareBuf, kept = b.buf, cap(b.buf)
	}
	if kept+cap(b.ops)*opBytes <= maxSpareBuf {
		l.spareOps = b.ops
	}
	b.buf, b.ops = nil, nil
}

// commit writes one batch and completes it.
func (l *Log) commit(b *batch) {
	if b == nil {
		return
	}
	b.pos = make([]Position, len(b.ops))
	err := l.failedErr()
	if err == nil {
		err = l.writeBatch(b)
	}
	if err == nil && l.cfg.Fsync == FsyncAlways && l.dirty {
		err = l.sync(len(b.ops))
	}
	b.err = err
	l.keep(b)
	close(b.done)
}

func (l *Log) failedErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// writeBatch writes the batch's records, rolling segments where needed,
// with one write call per contiguous run in one segment.
func (l *Log) writeBatch(b *batch) error {
	runStart, runEnd := 0, 0 // pending bytes b.buf[runStart:runEnd]
	flush := func() error {
		if runEnd == runStart {
			return nil
		}
		n, err := l.file.Write(b.buf[runStart:runEnd])
		l.segSize += int64(n)
		l.size.Add(int64(n))
		l.written.Add(int64(n))
		l.dirty = true
		if err != nil {
			return l.fail(fmt.Errorf("write %s: %w", l.path(l.seg), err))
		}
		runStart = runEnd
		return nil
	}
	for i, o := range b.ops {
		size := int64(o.end - o.start)
		pending := int64(runEnd - runStart)
		if o.roll || (size > 0 && l.segSize+pending > 0 && l.segSize+pending+size > l.cfg.SegmentBytes) {
			if err := flush(); err != nil {
				return err
			}
			if err := l.roll(); err != nil {
				return err
			}
			runStart, runEnd = o.start, o.start
		}
		b.pos[i] = Position{Segment: l.seg, Offset: l.segSize + int64(runEnd-runStart)}
		runEnd = o.end
	}
	return flush()
}

// roll fsyncs and closes the current segment and starts the next. The old
// segment is fsynced under every policy so that only the last segment can
// ever hold a torn tail.
func (l *Log) roll() error {
	if l.dirty {
		if err := l.sync(0); err != nil {
			return err
		}
	}
	if err := l.file.Close(); err != nil {
		return l.fail(fmt.Errorf("close %s: %w", l.path(l.seg), err))
	}
	l.file = nil
	if err := l.createSegment(l.seg + 1); err != nil {
		return l.fail(err)
	}
	return nil
}

// sync fsyncs the current segment; batch > 0 reports it to OnFsync.
func (l *Log) sync(batch int) error {
	start := time.Now()
	if err := l.file.Sync(); err != nil {
		return l.fail(fmt.Errorf("fsync %s: %w", l.path(l.seg), err))
	}
	l.dirty = false
	if l.cfg.OnFsync != nil {
		l.cfg.OnFsync(time.Since(start), batch)
	}
	return nil
}

// fail records the first disk error; from then on the log takes no writes.
// After a failed write or fsync the kernel's view of the file is unknown
// (a failed fsync may have dropped dirty pages), so only reopening, which
// re-reads what is really on disk, is safe.
func (l *Log) fail(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		l.logger.Error("wal write failed; refusing writes until reopened", "err", err)
	}
	return l.failed
}
