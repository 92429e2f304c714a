package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/vclock"
)

// Snapshot file layout (see doc.go): the 8-byte magic, then framed records
// (the WAL's framing): one header, one per key, one trailer.
//
//	header  [format uint, node_id str, incarnation str, start_segment uint, created_unix_nano int]
//	entry   [key bin, siblings, recv int]  (as in the WAL; older files: [key bin, siblings])
//	trailer [entry_count uint]
//
// The trailer proves the file is complete; nothing may follow it.
const (
	snapshotMagic  = "RKVSNAP1"
	snapshotFormat = 1
)

// errBadSnapshot is wrapped by every snapshot decoding failure.
var errBadSnapshot = errors.New("malformed snapshot")

// snapHeader is the first record of a snapshot file.
type snapHeader struct {
	NodeID       string
	Incarnation  string
	StartSegment uint64 // replay the WAL from the start of this segment
	Created      int64  // Unix nanoseconds
}

func snapshotName(startSegment uint64) string { return fmt.Sprintf("snap-%016x.snap", startSegment) }

// parseSnapshotName returns the start segment of a snapshot file name.
func parseSnapshotName(name string) (uint64, bool) {
	var n uint64
	if len(name) != 26 || filepath.Ext(name) != ".snap" {
		return 0, false
	}
	if _, err := fmt.Sscanf(name, "snap-%016x.snap", &n); err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// snapshotWriter streams a snapshot file.
type snapshotWriter struct {
	w       *bufio.Writer
	scratch []byte
	rec     []byte
	count   uint64
}

func newSnapshotWriter(f File, h snapHeader) (*snapshotWriter, error) {
	sw := &snapshotWriter{w: bufio.NewWriterSize(f, 1<<20)}
	if _, err := sw.w.WriteString(snapshotMagic); err != nil {
		return nil, err
	}
	p := wire.AppendArrayLen(nil, 5)
	p = wire.AppendUint(p, snapshotFormat)
	p = wire.AppendStr(p, h.NodeID)
	p = wire.AppendStr(p, h.Incarnation)
	p = wire.AppendUint(p, h.StartSegment)
	p = wire.AppendInt(p, h.Created)
	return sw, sw.writeRecord(p)
}

func (sw *snapshotWriter) writeRecord(p []byte) error {
	sw.rec = appendRecord(sw.rec[:0], p)
	_, err := sw.w.Write(sw.rec)
	return err
}

// add writes one entry; a key with a candidate gets the 4-element form.
func (sw *snapshotWriter) add(key []byte, s vclock.Siblings, recv int64, c *candidate) error {
	if c != nil {
		sw.scratch = appendEntryCandidate(sw.scratch[:0], key, s, recv, c)
	} else {
		sw.scratch = appendEntry(sw.scratch[:0], key, s, recv)
	}
	sw.count++
	return sw.writeRecord(sw.scratch)
}

// finish writes the trailer and flushes; the caller fsyncs.
func (sw *snapshotWriter) finish() error {
	p := wire.AppendUint(wire.AppendArrayLen(nil, 1), sw.count)
	if err := sw.writeRecord(p); err != nil {
		return err
	}
	return sw.w.Flush()
}

// decodeSnapshot parses a whole snapshot file's contents, calling fn for
// every entry; entries in the old form without a receipt time get
// defaultRecv. Any damage, including a missing trailer, is an error that
// wraps errBadSnapshot and gives the offset; it never panics.
func decodeSnapshot(data []byte, defaultRecv int64, fn func(decodedEntry)) (snapHeader, error) {
	var h snapHeader
	bad := func(off int, format string, args ...any) (snapHeader, error) {
		return h, fmt.Errorf("%w at offset %d: %s", errBadSnapshot, off, fmt.Sprintf(format, args...))
	}
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		return bad(0, "bad magic")
	}
	off := len(snapshotMagic)
	rec, n, err := DecodeRecord(data[off:])
	if err != nil {
		return bad(off, "header: %v", err)
	}
	p := wire.NewReader(rec)
	if m, _ := p.ArrayLen(); m != 5 {
		return bad(off, "header is not a 5-element array")
	}
	format := p.Uint()
	h.NodeID = headerStr(p)
	h.Incarnation = headerStr(p)
	h.StartSegment = p.Uint()
	h.Created = p.Int()
	p.Done()
	if err := p.Err(); err != nil {
		return bad(off, "header: %v", err)
	}
	if format != snapshotFormat {
		return bad(off, "format %d, want %d", format, snapshotFormat)
	}
	off += n
	dec := newEntryDecoder(defaultRecv)
	var count uint64
	for {
		rec, n, err := DecodeRecord(data[off:])
		if err != nil {
			return bad(off, "%v (no trailer)", err)
		}
		if rec[0] == 0x91 { // trailer
			p := wire.NewReader(rec[1:])
			want := p.Uint()
			if p.Done(); p.Err() != nil {
				return bad(off, "malformed trailer")
			}
			if want != count {
				return bad(off, "trailer counts %d entries, file has %d", want, count)
			}
			if off+n != len(data) {
				return bad(off+n, "%d bytes after trailer", len(data)-off-n)
			}
			return h, nil
		}
		ent, err := dec.decode(rec)
		if err != nil {
			return bad(off, "%v", err)
		}
		if fn != nil {
			fn(ent)
		}
		count++
		off += n
	}
}

// headerStr reads a string of the snapshot header. wire.Reader reads nil
// as "", but a nil name here is damage (and was always refused), not a
// node without a name.
func headerStr(p *wire.Reader) string {
	if p.Nil() {
		p.Failf("nil where a string is expected")
		return ""
	}
	return p.Str()
}
