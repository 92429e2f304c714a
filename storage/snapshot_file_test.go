package storage

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/vclock"
)

// memFile is a File over a buffer, for encoding snapshots in memory.
type memFile struct{ bytes.Buffer }

func (*memFile) Sync() error            { return nil }
func (*memFile) Close() error           { return nil }
func (m *memFile) Size() (int64, error) { return int64(m.Len()), nil }

func encodeSnapshotT(t testing.TB, h snapHeader, keys []string, sets []vclock.Siblings, recvs []int64) []byte {
	t.Helper()
	var f memFile
	sw, err := newSnapshotWriter(&f, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if err := sw.add([]byte(keys[i]), sets[i], recvs[i], nil); err != nil {
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
	return encodeSnapshotT(t, h, []string{"a", "b"}, []vclock.Siblings{a, b}, []int64{1_700_000_000_000_000_000, -9})
}

func TestSnapshotFileRoundTrip(t *testing.T) {
	data := sampleSnapshot(t)
	got := map[string]vclock.Siblings{}
	recvs := map[string]int64{}
	h, err := decodeSnapshot(data, 0, func(e decodedEntry) { got[string(e.key)], recvs[string(e.key)] = e.s, e.recv })
	if err != nil {
		t.Fatal(err)
	}
	if h != (snapHeader{NodeID: "n1", Incarnation: "abcdefghijkl", StartSegment: 3, Created: 42}) || len(got) != 2 {
		t.Fatalf("header %+v, %d keys", h, len(got))
	}
	if recvs["a"] != 1_700_000_000_000_000_000 || recvs["b"] != -9 {
		t.Fatalf("receipt times %v", recvs)
	}
	empty := encodeSnapshotT(t, snapHeader{NodeID: "n", StartSegment: 1}, nil, nil, nil)
	if _, err := decodeSnapshot(empty, 0, nil); err != nil {
		t.Fatalf("empty snapshot: %v", err)
	}
}

// Every truncation and every bit flip of a snapshot is detected.
func TestSnapshotFileDamageDetected(t *testing.T) {
	data := sampleSnapshot(t)
	for n := range len(data) {
		if _, err := decodeSnapshot(data[:n], 0, nil); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	for off := range data {
		d := append([]byte(nil), data...)
		d[off] ^= 1 << (off % 8)
		if _, err := decodeSnapshot(d, 0, nil); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("flip at %d not detected: %v", off, err)
		}
	}
	if _, err := decodeSnapshot(append(append([]byte(nil), data...), 0), 0, nil); !errors.Is(err, errBadSnapshot) {
		t.Fatal("trailing byte not detected")
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(sampleSnapshot(f))
	f.Add([]byte(snapshotMagic))
	f.Add(append([]byte(snapshotMagic), appendRecord(nil, []byte{0x91, 0})...))
	f.Add(sampleSnapshotV1(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		var keys []string
		var sets []vclock.Siblings
		var recvs []int64
		h, err := decodeSnapshot(b, 5, func(e decodedEntry) {
			keys = append(keys, string(e.key))
			sets = append(sets, e.s)
			recvs = append(recvs, e.recv)
		})
		if err != nil {
			return
		}
		again := encodeSnapshotT(t, h, keys, sets, recvs)
		var recvs2 []int64
		h2, err := decodeSnapshot(again, 0, func(e decodedEntry) { recvs2 = append(recvs2, e.recv) })
		if err != nil || h2 != h || !slices.Equal(recvs, recvs2) {
			t.Fatalf("re-encoded snapshot: %+v, %v (receipt times %v, then %v)", h2, err, recvs, recvs2)
		}
	})
}

// sampleSnapshotV1 is a snapshot whose entries have the form written
// before receipt times, [key, siblings].
func sampleSnapshotV1(t testing.TB) []byte {
	_, a := vclock.Mint(nil, "inc1", vclock.Write{Value: []byte("one"), WallTime: 7})
	var f memFile
	sw, err := newSnapshotWriter(&f, snapHeader{NodeID: "n1", Incarnation: "abcdefghijkl", StartSegment: 3, Created: 42})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if err := sw.writeRecord(appendEntryV1(nil, []byte(k), a)); err != nil {
			t.Fatal(err)
		}
		sw.count++
	}
	if err := sw.finish(); err != nil {
		t.Fatal(err)
	}
	return f.Bytes()
}

// A snapshot written before receipt times existed still loads; its
// entries get the default time.
func TestSnapshotFileOldEntries(t *testing.T) {
	n := 0
	_, err := decodeSnapshot(sampleSnapshotV1(t), 99, func(e decodedEntry) {
		n++
		if e.recv != 99 || len(e.s) != 1 {
			t.Errorf("key %q: set %v, receipt time %d", e.key, e.s, e.recv)
		}
	})
	if err != nil || n != 2 {
		t.Fatalf("decode: %d entries, %v", n, err)
	}
}

// A header whose node name or incarnation is msgpack nil is damage, not
// an empty name: the header's decoder has always refused it.
func TestSnapshotHeaderRefusesNilNames(t *testing.T) {
	for name, hdr := range map[string][]byte{
		"nil node":        {0x95, byte(snapshotFormat), 0xc0, 0xa1, 'i', 0x03, 0x2a},
		"nil incarnation": {0x95, byte(snapshotFormat), 0xa2, 'n', '1', 0xc0, 0x03, 0x2a},
	} {
		t.Run(name, func(t *testing.T) {
			b := append([]byte(snapshotMagic), appendRecord(nil, hdr)...)
			if _, err := decodeSnapshot(b, 0, nil); !errors.Is(err, errBadSnapshot) || !strings.Contains(err.Error(), "nil") {
				t.Fatalf("decodeSnapshot = %v, want errBadSnapshot naming the nil", err)
			}
		})
	}
}
