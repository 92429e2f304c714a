package vclock

import (
	"reflect"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// refVersion is Version's layout with no codec methods on its fields, and
// []Dot is Clock's: msgpack's reflection encoder and decoder of these are
// the reference this package's codec must agree with (and what a node
// running a binary before Siblings and Clock had msgpack methods uses).
type refVersion struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Dot       Dot
	Context   []Dot
	Value     []byte
	Tombstone bool
	WallTime  int64
}

// reflectSiblings decodes b with msgpack's reflection decoder into the
// reference types.
func reflectSiblings(b []byte) (Siblings, error) {
	if err := wire.CheckEncoding(b); err != nil {
		return nil, err
	}
	var rs []refVersion
	if err := msgpack.Unmarshal(b, &rs); err != nil || rs == nil {
		return nil, err
	}
	s := make(Siblings, len(rs))
	for i, v := range rs {
		s[i] = Version{Dot: v.Dot, Context: Clock(v.Context), Value: v.Value, Tombstone: v.Tombstone, WallTime: v.WallTime}
	}
	return s, nil
}

// reflectMarshal encodes s with msgpack's reflection encoder, as a binary
// before the shared codec did.
func reflectMarshal(s Siblings) ([]byte, error) {
	var rs []refVersion
	if s != nil {
		rs = make([]refVersion, len(s))
	}
	for i, v := range s {
		rs[i] = refVersion{Dot: v.Dot, Context: []Dot(v.Context), Value: v.Value, Tombstone: v.Tombstone, WallTime: v.WallTime}
	}
	return msgpack.Marshal(rs)
}

// reflectClock decodes b as a plain []Dot by reflection.
func reflectClock(b []byte) (Clock, error) {
	var ds []Dot
	err := msgpack.Unmarshal(b, &ds)
	return Clock(ds), err
}

// readHexLines returns the bytes of a testdata file's lines.
func readHexLines(t *testing.T, name string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, l := range testkit.ReadHexFile(t, name) {
		out = append(out, l.Bytes)
	}
	return out
}

// The testdata files hold sets and contexts as the reflection encoder of
// earlier versions wrote them (counters and wall times as 9-byte
// integers): the hand codec must read them as that encoder's decoder does.
func TestDecodesReflectionEncoding(t *testing.T) {
	for i, b := range readHexLines(t, "testdata/old_reflect_siblings.hex") {
		want, err := reflectSiblings(b)
		if err != nil {
			t.Fatalf("set %d: reference decoder: %v", i, err)
		}
		r := wire.NewReader(b)
		got := ReadSiblings(r, nil)
		r.Done()
		if r.Err() != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("set %d: ReadSiblings = %+v, %v; want %+v", i, got, r.Err(), want)
		}
		if _, err := DecodeSiblings(b); err != nil {
			t.Fatalf("set %d: DecodeSiblings: %v", i, err)
		}
		if again, err := reflectSiblings(AppendSiblings(nil, got)); err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("set %d: reference decoder of the new encoding = %+v, %v", i, again, err)
		}
	}
	for i, b := range readHexLines(t, "testdata/old_reflect_contexts.hex") {
		want, err := reflectClock(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeContext(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("context %d: DecodeContext = %+v, %v; want %+v", i, got, err, want)
		}
		if back, err := reflectClock(EncodeContext(got)); err != nil || !reflect.DeepEqual(back, want) {
			t.Fatalf("context %d: reference decoder of the new encoding = %+v, %v", i, back, err)
		}
	}
}

// drawRawSiblings draws any set the codec can carry, canonical or not,
// with nil and empty slices and integers at msgpack's width edges.
func drawRawSiblings(t *rapid.T) Siblings {
	edges := []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<63 - 1, 1 << 63, 1<<64 - 1}
	num := rapid.Custom(func(t *rapid.T) uint64 {
		if rapid.Bool().Draw(t, "edge") {
			return rapid.SampledFrom(edges).Draw(t, "n")
		}
		return rapid.Uint64().Draw(t, "n")
	})
	str := rapid.StringOfN(rapid.RuneFrom([]rune("ab\u00e9")), 0, 40, -1)
	dot := rapid.Custom(func(t *rapid.T) Dot { return Dot{Actor: str.Draw(t, "actor"), Counter: num.Draw(t, "c")} })
	clock := rapid.Custom(func(t *rapid.T) Clock {
		if rapid.IntRange(0, 3).Draw(t, "ctxnil") == 0 {
			return nil
		}
		return rapid.SliceOfN(dot, 0, 4).Draw(t, "ctx")
	})
	value := rapid.Custom(func(t *rapid.T) []byte {
		if rapid.IntRange(0, 3).Draw(t, "valnil") == 0 {
			return nil
		}
		return rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "val")
	})
	version := rapid.Custom(func(t *rapid.T) Version {
		return Version{Dot: dot.Draw(t, "dot"), Context: clock.Draw(t, "context"), Value: value.Draw(t, "value"),
			Tombstone: rapid.Bool().Draw(t, "tomb"), WallTime: int64(num.Draw(t, "wall"))}
	})
	if rapid.IntRange(0, 5).Draw(t, "setnil") == 0 {
		return nil
	}
	return rapid.SliceOfN(version, 0, 5).Draw(t, "set")
}

// The hand codec and the reflection codec read each other's bytes to the
// same value: an older node decodes what this one sends, and this one
// what an older node sends.
func TestCodecMatchesReflection(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawRawSiblings(t)
		enc := AppendSiblings(nil, s)
		if got, err := reflectSiblings(enc); err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("reference decoder of AppendSiblings = %+v, %v; want %+v", got, err, s)
		}
		old, err := reflectMarshal(s)
		if err != nil {
			t.Fatal(err)
		}
		r := wire.NewReader(old)
		got := ReadSiblings(r, nil)
		r.Done()
		if r.Err() != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("ReadSiblings of the reflection encoding = %+v, %v; want %+v", got, r.Err(), s)
		}
		if len(enc) > SizeSiblings(s) {
			t.Fatalf("SizeSiblings = %d, encoding is %d bytes", SizeSiblings(s), len(enc))
		}
	})
}

// FuzzReadSiblings feeds raw bytes to the set reader: it must not panic,
// and whatever it accepts the reflection decoder reads to the same value.
func FuzzReadSiblings(f *testing.F) {
	f.Add(AppendSiblings(nil, Siblings{{Dot: Dot{Actor: "a", Counter: 1 << 40}, Context: Clock{{Actor: "b", Counter: 3}}, Value: []byte("x"), WallTime: -7}}))
	old, _ := reflectMarshal(Siblings{{Dot: Dot{Actor: "a", Counter: 1}, Value: []byte{}}})
	f.Add(old)
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := wire.NewReader(b)
		s := ReadSiblings(r, func(p []byte) string { return string(p) })
		r.Done()
		if r.Err() != nil {
			return
		}
		want, err := reflectSiblings(b)
		if err != nil || !reflect.DeepEqual(s, want) {
			t.Fatalf("ReadSiblings = %+v; reference decoder = %+v, %v", s, want, err)
		}
	})
}
