package storage

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ringkv/ringkv/vclock"
)

// memFile is a File over a buffer, for encoding snapshots in memory.
type memFile struct{ bytes.Buffer }

func (*memFile) Sync() error            { return nil }
func (*memFile) Close() error           { return nil }
func (m *memFile) Size() (int64, error) { return int64(m.Len()), nil }

func encodeSnapshotT(t testing.TB, h snapHeader, keys []string, sets []vclock.Siblings) []byte {
	t.Helper()
	var f memFile
	sw, err := newSnapshotWriter(&f, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if err := sw.add([]byte(keys[i]), sets[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.finish(); err != nil {
		t.Fatal(err)
	}
	return f.Bytes()
}

func sampleSnapshot(t testing.TB) []byte {
	_, a := vclock.Mint(nil, "inc1", vclock.Write{Value: []byte("one"), WallTime: 7})
	_, b := vclock.Mint(a, "inc2", vclock.Write{Tombstone: true, WallTime: -1})
	h := snapHeader{NodeID: "n1", Incarnation: "abcdefghijkl", StartSegment: 3, Created: 42}
	return encodeSnapshotT(t, h, []string{"a", "b"}, []vclock.Siblings{a, b})
}

func TestSnapshotFileRoundTrip(t *testing.T) {
	data := sampleSnapshot(t)
	got := map[string]vclock.Siblings{}
	h, err := decodeSnapshot(data, func(k []byte, s vclock.Siblings) { got[string(k)] = s })
	if err != nil {
		t.Fatal(err)
	}
	if h != (snapHeader{NodeID: "n1", Incarnation: "abcdefghijkl", StartSegment: 3, Created: 42}) || len(got) != 2 {
		t.Fatalf("header %+v, %d keys", h, len(got))
	}
	empty := encodeSnapshotT(t, snapHeader{NodeID: "n", StartSegment: 1}, nil, nil)
	if _, err := decodeSnapshot(empty, nil); err != nil {
		t.Fatalf("empty snapshot: %v", err)
	}
}

// Every truncation and every bit flip of a snapshot is detected.
func TestSnapshotFileDamageDetected(t *testing.T) {
	data := sampleSnapshot(t)
	for n := range len(data) {
		if _, err := decodeSnapshot(data[:n], nil); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	for off := range data {
		d := append([]byte(nil), data...)
		d[off] ^= 1 << (off % 8)
		if _, err := decodeSnapshot(d, nil); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("flip at %d not detected: %v", off, err)
		}
	}
	if _, err := decodeSnapshot(append(append([]byte(nil), data...), 0), nil); !errors.Is(err, errBadSnapshot) {
		t.Fatal("trailing byte not detected")
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(sampleSnapshot(f))
	f.Add([]byte(snapshotMagic))
	f.Add(append([]byte(snapshotMagic), appendRecord(nil, []byte{0x91, 0})...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var keys []string
		var sets []vclock.Siblings
		h, err := decodeSnapshot(b, func(k []byte, s vclock.Siblings) {
			keys = append(keys, string(k))
			sets = append(sets, s)
		})
		if err != nil {
			return
		}
		again := encodeSnapshotT(t, h, keys, sets)
		h2, err := decodeSnapshot(again, nil)
		if err != nil || h2 != h {
			t.Fatalf("re-encoded snapshot: %+v, %v", h2, err)
		}
	})
}
