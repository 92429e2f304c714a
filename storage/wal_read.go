package storage

import (
	"fmt"
	"io"
)

// Replay calls fn for every record from position from on, in order. rec is
// only valid during the call. A damaged record in any segment but the
// last, or before the (already truncated) tail of the last, returns a
// *CorruptError naming file and offset; an error from fn stops the replay
// and is returned as is. Replay may run while records are appended; it
// reads what was written when each segment is opened.
func (l *Log) Replay(from Position, fn func(pos Position, rec []byte) error) error {
	for _, seg := range l.Segments() {
		if seg < from.Segment {
			continue
		}
		name := l.path(seg)
		// Decide before reading: a segment that was not current then is
		// sealed and complete, while one that was may be read mid-write
		// even if the log rolls before the read returns.
		current := seg == l.currentSegment()
		data, err := readAll(l.fs, name)
		if err != nil {
			return err
		}
		start := int64(0)
		if seg == from.Segment {
			start = from.Offset
		}
		if start > int64(len(data)) {
			return &CorruptError{File: name, Offset: start, Err: fmt.Errorf("replay start beyond segment end %d", len(data))}
		}
		// A segment being appended to may end in a partly written batch;
		// treat its incomplete tail as the end, as OpenLog would.
		_, err = scanSegment(name, data, current, func(off int64, rec []byte) error {
			if off < start {
				return nil
			}
			return fn(Position{Segment: seg, Offset: off}, rec)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) currentSegment() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segments[len(l.segments)-1]
}

// scanSegment walks the records of one segment's contents, calling fn (if
// not nil) for each. It returns the offset after the last good record. In
// the last segment a torn tail ends the scan without error; any other
// damage is a *CorruptError.
func scanSegment(name string, data []byte, last bool, fn func(off int64, rec []byte) error) (int64, error) {
	off := 0
	for off < len(data) {
		rec, n, err := DecodeRecord(data[off:])
		if err != nil {
			if last && tornTail(data, off, err) {
				return int64(off), nil
			}
			return int64(off), &CorruptError{File: name, Offset: int64(off), Err: err}
		}
		if fn != nil {
			if err := fn(int64(off), rec); err != nil {
				return int64(off), err
			}
		}
		off += n
	}
	return int64(off), nil
}

// readAll reads a whole file through fs.
func readAll(fs FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("storage: stat %s: %w", name, err)
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("storage: read %s: %w", name, err)
	}
	return buf[:n], nil
}

func fileSize(fs FS, name string) (int64, error) {
	f, err := fs.Open(name)
	if err != nil {
		return 0, fmt.Errorf("storage: open %s: %w", name, err)
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return 0, fmt.Errorf("storage: stat %s: %w", name, err)
	}
	return n, nil
}
