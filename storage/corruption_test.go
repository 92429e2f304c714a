package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// smallLog writes a one-segment log of n records of varied sizes into a
// fresh directory and returns the directory, the segment's bytes and the
// records' start offsets (plus the end offset as the last element).
func smallLog(t *testing.T, n int) (dir string, data []byte, bounds []int64) {
	t.Helper()
	dir = t.TempDir()
	l := openLogT(t, LogConfig{Dir: dir})
	for i := range n {
		pos, err := l.Append(t.Context(), fmt.Appendf(nil, "rec%d:%s", i, make([]byte, i%7*5)))
		if err != nil {
			t.Fatal(err)
		}
		bounds = append(bounds, pos.Offset)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	return dir, data, append(bounds, int64(len(data)))
}

// outcome opens a log whose only segment holds data and reports how many
// records it recovered, or the error that refused it.
func outcome(t *testing.T, dir string, data []byte) (int, error) {
	t.Helper()
	name := filepath.Join(dir, segmentName(1))
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLog(LogConfig{Dir: dir})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	n := 0
	if err := l.Replay(Position{}, func(Position, []byte) error { n++; return nil }); err != nil {
		return 0, err
	}
	return n, nil
}

// recordsBefore counts the records that end at or before off.
func recordsBefore(bounds []int64, off int64) int {
	n := 0
	for i := 1; i < len(bounds); i++ {
		if bounds[i] <= off {
			n = i
		}
	}
	return n
}

// recordAt returns the index of the record holding byte off.
func recordAt(bounds []int64, off int64) int {
	for i := 1; i < len(bounds); i++ {
		if off < bounds[i] {
			return i - 1
		}
	}
	return len(bounds) - 2
}

// Truncating the last segment anywhere is a torn tail: every record that
// ends before the cut is recovered, nothing is refused, and the file is cut
// back to the last whole record so that new appends follow it.
func TestTruncateAtEveryOffset(t *testing.T) {
	dir, data, bounds := smallLog(t, 12)
	for off := int64(0); off <= int64(len(data)); off++ {
		n, err := outcome(t, dir, data[:off])
		if err != nil {
			t.Fatalf("truncated at %d: refused: %v", off, err)
		}
		if want := recordsBefore(bounds, off); n != want {
			t.Fatalf("truncated at %d: recovered %d records, want %d", off, n, want)
		}
		st, _ := os.Stat(filepath.Join(dir, segmentName(1)))
		if want := bounds[recordsBefore(bounds, off)]; st.Size() != want {
			t.Fatalf("truncated at %d: file is %d bytes after open, want %d", off, st.Size(), want)
		}
	}
}

// A bit flip is corruption (refused, naming file and offset of the damaged
// record) unless it hits the payload or payload checksum of the very last
// record, which is indistinguishable from a torn final write and recovered
// by dropping that record.
func TestBitFlips(t *testing.T) {
	dir, data, bounds := smallLog(t, 12)
	last := len(bounds) - 2
	for off := int64(0); off < int64(len(data)); off++ {
		bit := byte(1) << (off % 8)
		flipped := append([]byte(nil), data...)
		flipped[off] ^= bit
		n, err := outcome(t, dir, flipped)
		r := recordAt(bounds, off)
		inLastPayload := r == last && off >= bounds[r]+8
		if inLastPayload {
			if err != nil || n != last {
				t.Fatalf("flip at %d (last record's payload): got %d records, %v; want torn tail with %d", off, n, err, last)
			}
			continue
		}
		var ce *CorruptError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
			t.Fatalf("flip at %d (record %d): got %d records, err %v; want ErrCorrupt", off, r, n, err)
		}
		if ce.File != filepath.Join(dir, segmentName(1)) || ce.Offset != bounds[r] {
			t.Fatalf("flip at %d: error names %s@%d, want record %d at %d", off, ce.File, ce.Offset, r, bounds[r])
		}
	}
}

func TestZeroedRegions(t *testing.T) {
	dir, data, bounds := smallLog(t, 12)
	zero := func(from, to int64) []byte {
		out := append([]byte(nil), data...)
		clear(out[from:to])
		return out
	}
	tests := []struct {
		name    string
		data    []byte
		records int  // recovered when not corrupt
		corrupt bool // refused
	}{
		{"zeroed tail from a record start", zero(bounds[8], int64(len(data))), 8, false},
		{"zeroed tail mid-record", zero(bounds[5]+3, int64(len(data))), 5, false},
		{"zero-filled extension", append(append([]byte(nil), data...), make([]byte, 4096)...), 12, false},
		{"zeroed record in the middle", zero(bounds[3], bounds[4]), 0, true},
		{"zeroed header in the middle", zero(bounds[6], bounds[6]+12), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := outcome(t, dir, tc.data)
			if tc.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("got %d records, %v; want ErrCorrupt", n, err)
				}
				return
			}
			if err != nil || n != tc.records {
				t.Fatalf("got %d records, %v; want %d", n, err, tc.records)
			}
		})
	}
}

// Damage in a sealed segment is corruption even where it would be a torn
// tail in the last one, and the engine refuses to open, naming the file.
func TestSealedSegmentDamageRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SegmentBytes = 4096
	cfg.SnapshotBytes = -1
	e := openT(t, cfg)
	for i := range 100 {
		put(t, e, fmt.Sprint("k", i), string(make([]byte, 100)))
	}
	e.Close()
	first := filepath.Join(cfg.Dir, "wal", segmentName(1))
	data, _ := os.ReadFile(first)
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated mid-record", data[:len(data)-5]},
		{"bit flip", func() []byte { d := append([]byte(nil), data...); d[100] ^= 1; return d }()},
		{"zeroed tail", func() []byte { d := append([]byte(nil), data...); clear(d[len(d)-50:]); return d }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(first, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(cfg)
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.File != first {
				t.Fatalf("Open = %v, want CorruptError naming %s", err, first)
			}
		})
	}
	if err := os.WriteFile(first, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e = openT(t, cfg)
	defer e.Close()
	if e.Stats().Keys != 100 {
		t.Fatalf("repaired directory has %d keys", e.Stats().Keys)
	}
}

func TestMissingSegmentRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SegmentBytes = 4096
	e := openT(t, cfg)
	for i := range 100 {
		put(t, e, fmt.Sprint("k", i), string(make([]byte, 100)))
	}
	e.Close()
	os.Remove(filepath.Join(cfg.Dir, "wal", segmentName(2)))
	if _, err := Open(cfg); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a missing segment = %v, want ErrCorrupt", err)
	}
}
