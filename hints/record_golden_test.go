package hints

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// goldenSets are the sets of testdata/old_records.hex, whose hint records
// are key-i with since i*1_000_000_007; its forget records are key-f with
// each of goldenSinces.
func goldenSets() []vclock.Siblings {
	big := make([]byte, 300)
	for i := range big {
		big[i] = byte(i)
	}
	return []vclock.Siblings{
		mint(nil, "a", "v"),
		mint(mint(nil, "a", "x"), "b", "y"),
		{{Dot: vclock.Dot{Actor: "node-with-a-long-actor-name-0123456789-abcdef", Counter: 1 << 40}, Context: vclock.Clock{{Actor: "a", Counter: 3}, {Actor: "c", Counter: 65536}}, Value: big, WallTime: 1_700_000_000_000_000_000}},
		{{Dot: vclock.Dot{Actor: "t", Counter: 127}, Tombstone: true, WallTime: -5}},
		{{Dot: vclock.Dot{Actor: "e", Counter: 128}, Value: []byte{}, WallTime: 0}},
	}
}

var goldenSinces = []int64{0, 7, -1, 1_700_000_000_000_000_000}

func goldenRecords() []record {
	var recs []record
	for i, s := range goldenSets() {
		recs = append(recs, record{Key: []byte(fmt.Sprintf("key-%d", i)), Siblings: s, Since: int64(i) * 1_000_000_007})
	}
	for _, since := range goldenSinces {
		recs = append(recs, record{Key: []byte("key-f"), Since: since, Forget: true})
	}
	return recs
}

// testdata/old_records.hex holds hint and forget records as the binary
// before the shared codec wrote them (msgpack reflection, integers in 9
// bytes): hint logs on disk at an upgrade must still load.
func TestDecodesOldRecords(t *testing.T) {
	lines := testkit.ReadHexFile(t, "testdata/old_records.hex")
	want := goldenRecords()
	if len(lines) != len(want) {
		t.Fatalf("%d records, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		kind, b := line.Label, line.Bytes
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if got.Forget != (kind == "forget") || !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("line %d: decoded %+v, want %+v", i+1, got, want[i])
		}
	}
}

// Plain mirrors of the record types, without the codec's methods: how the
// reflection decoder of the binary before the shared codec reads a record
// (after a downgrade, say).
type (
	plainDot struct {
		_msgpack struct{} `msgpack:",as_array"`
		Actor    string
		Counter  uint64
	}
	plainVersion struct {
		_msgpack  struct{} `msgpack:",as_array"`
		Dot       plainDot
		Context   []plainDot
		Value     []byte
		Tombstone bool
		WallTime  int64
	}
	plainRecord struct {
		_msgpack struct{} `msgpack:",as_array"`
		Key      []byte
		Siblings []plainVersion
		Since    int64
	}
)

func TestOldDecoderReadsNewRecords(t *testing.T) {
	for _, r := range goldenRecords() {
		if r.Forget {
			continue
		}
		b, err := encodeRecord(r.Key, r.Siblings, r.Since)
		if err != nil {
			t.Fatal(err)
		}
		var p plainRecord
		if err := msgpack.Unmarshal(b[1:], &p); err != nil {
			t.Fatalf("%s: %v", r.Key, err)
		}
		// DeepEqual: values and contexts compared whole, nil apart from
		// empty, as the old binary would hold them.
		got := record{Key: p.Key, Siblings: p.siblings(), Since: p.Since}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("%s: old decoder read %+v, want %+v", r.Key, got, r)
		}
	}
}

// siblings converts what the old decoder read to a set.
func (p plainRecord) siblings() vclock.Siblings {
	if p.Siblings == nil {
		return nil
	}
	out := make(vclock.Siblings, len(p.Siblings))
	for i, v := range p.Siblings {
		var ctx vclock.Clock
		if v.Context != nil {
			ctx = make(vclock.Clock, len(v.Context))
			for j, d := range v.Context {
				ctx[j] = vclock.Dot{Actor: d.Actor, Counter: d.Counter}
			}
		}
		out[i] = vclock.Version{Dot: vclock.Dot{Actor: v.Dot.Actor, Counter: v.Dot.Counter}, Context: ctx,
			Value: v.Value, Tombstone: v.Tombstone, WallTime: v.WallTime}
	}
	return out
}

func BenchmarkRecordCodec(b *testing.B) {
	s := goldenSets()[1]
	rec, err := encodeRecord([]byte("some-key-0001"), s, 42)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("op=encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeRecord([]byte("some-key-0001"), s, 42); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeRecord(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
