package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// LogEnd is where a Log ended when it was closed: its first and last
// segment numbers and the length of the last segment in bytes. A clean
// Close of the Engine records it (in the CLEAN file), so that the next
// Open can tell a WAL that lost acknowledged records (a segment deleted,
// a tail cut at a record boundary or zeroed) from one that is whole: a
// crash can leave an unsynced tail short, a clean shutdown cannot.
type LogEnd struct {
	// First is the lowest segment number on disk.
	First uint64 `json:"wal_first_segment"`
	// Last is the segment being appended to when the log closed.
	Last uint64 `json:"wal_last_segment"`
	// LastBytes is Last's length in bytes, every byte a whole record.
	LastBytes int64 `json:"wal_last_bytes"`
}

// End returns where the log ends now. Only meaningful once Close has
// returned (the writer goroutine owns the current segment until then) or
// before any append.
func (l *Log) End() LogEnd {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LogEnd{First: l.segments[0], Last: l.seg, LastBytes: l.segSize}
}

// Truncated returns the bytes OpenLog cut off the last segment as a torn
// tail: records a crash may have lost after handing them to the OS.
func (l *Log) Truncated() int64 { return l.truncated }

// checkEnd compares the segments found on disk with the end a clean
// shutdown recorded, before anything is truncated or created: a log that
// ends earlier lost records that were durable, and is refused as
// corruption naming file and offset. A log that goes on past the recorded
// end (records appended by a tool) is accepted; a torn tail past it is
// cut as after a crash. end and size describe the last segment found: the
// offset after its last whole record and its length.
func (l *Log) checkEnd(want LogEnd, end, size int64) error {
	if len(l.segments) == 0 {
		return &CorruptError{File: l.path(want.Last), Err: fmt.Errorf(
			"the WAL holds no segment, but a clean shutdown left segments %d..%d: %w", want.First, want.Last, errMissing)}
	}
	first, last := l.segments[0], l.segments[len(l.segments)-1]
	switch {
	case first > want.First:
		return &CorruptError{File: l.path(want.First), Err: fmt.Errorf(
			"the WAL starts at segment %d, but a clean shutdown left it starting at %d: %w", first, want.First, errMissing)}
	case last < want.Last:
		return &CorruptError{File: l.path(want.Last), Err: fmt.Errorf(
			"the WAL ends at segment %d, but a clean shutdown left segment %d (%d bytes) last: %w", last, want.Last, want.LastBytes, errMissing)}
	case last == want.Last && end < want.LastBytes:
		return &CorruptError{File: l.path(last), Offset: end, Err: fmt.Errorf(
			"the segment's whole records end at offset %d (file of %d bytes), but a clean shutdown left %d bytes of them: %w",
			end, size, want.LastBytes, errMissing)}
	case last > want.Last:
		// Replay checks every record of the sealed segment; only its
		// length is left to check.
		sz, err := fileSize(l.fs, l.path(want.Last))
		if err != nil {
			return err
		}
		if sz < want.LastBytes {
			return &CorruptError{File: l.path(want.Last), Offset: sz, Err: fmt.Errorf(
				"the segment is %d bytes, but a clean shutdown left %d bytes of whole records: %w", sz, want.LastBytes, errMissing)}
		}
	}
	return nil
}

// cleanState is what the CLEAN file says: whether the last shutdown was
// clean and, when written by a build that records it, where the WAL ended.
type cleanState struct {
	clean bool
	end   *LogEnd // nil for a CLEAN file from before ends were recorded (empty)
}

// readClean reads the CLEAN file of dir. An empty file (written by builds
// before the WAL's end was recorded) is a clean shutdown with no end to
// check; anything that does not decode is corruption.
func readClean(fsys FS, dir string) (cleanState, error) {
	name := filepath.Join(dir, cleanFile)
	data, err := readSmall(fsys, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return cleanState{}, nil
	case err != nil:
		return cleanState{}, err
	case len(data) == 0:
		return cleanState{clean: true}, nil
	}
	var end LogEnd
	if err := json.Unmarshal(data, &end); err != nil {
		return cleanState{}, &CorruptError{File: name, Err: fmt.Errorf("unreadable clean-shutdown record (%w)", err)}
	}
	if end.First < 1 || end.Last < end.First || end.LastBytes < 0 {
		return cleanState{}, &CorruptError{File: name, Err: fmt.Errorf("clean-shutdown record names segments %d..%d, last of %d bytes",
			end.First, end.Last, end.LastBytes)}
	}
	return cleanState{clean: true, end: &end}, nil
}

// markClean records a clean shutdown and where the WAL ended; called after
// the WAL is closed.
func markClean(fsys FS, dir string, end LogEnd) error {
	data, err := json.Marshal(end)
	if err != nil {
		return fmt.Errorf("storage: encode %s: %w", cleanFile, err)
	}
	return writeFileAtomic(fsys, dir, cleanFile, append(data, '\n'))
}

// removeClean deletes the clean marker once recovery succeeded, so that a
// crash from now on is detected at the next open. It stays while recovery
// can still fail: removed earlier, a refused start would be retried as an
// unclean one and accept the very WAL it refused.
func removeClean(fsys FS, dir string) error {
	if err := fsys.Remove(filepath.Join(dir, cleanFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: remove %s: %w", cleanFile, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	return nil
}
