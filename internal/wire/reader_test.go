package wire

import (
	"errors"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Every integer width msgpack has (the reflection encoder writes uint64
// and int64 in 9 bytes, the Append functions the smallest form) reads
// back to the same value.
func TestReaderIntegersInEveryWidth(t *testing.T) {
	for _, n := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, -1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64} {
		forms := [][]byte{AppendInt(nil, n)}
		for _, v := range []any{n, int8(n), int16(n), int32(n)} {
			if b, err := msgpack.Marshal(v); err == nil {
				forms = append(forms, b)
			}
		}
		for _, b := range forms {
			r := NewReader(b)
			got := r.Int()
			r.Done()
			want := n
			switch len(b) {
			case 2:
				want = int64(int8(n))
				if b[0] == 0xcc {
					want = int64(uint8(n))
				}
			case 3:
				want = int64(int16(n))
				if b[0] == 0xcd {
					want = int64(uint16(n))
				}
			case 5:
				want = int64(int32(n))
				if b[0] == 0xce {
					want = int64(uint32(n))
				}
			}
			if r.Err() != nil || got != want {
				t.Fatalf("Int(%x) = %d, %v; want %d", b, got, r.Err(), want)
			}
			if n >= 0 && got >= 0 {
				r.Reset(b)
				if u := r.Uint(); r.Err() != nil || u != uint64(got) {
					t.Fatalf("Uint(%x) = %d, %v", b, u, r.Err())
				}
			}
		}
	}
	for _, u := range []uint64{math.MaxUint64, 1 << 63} {
		b, _ := msgpack.Marshal(u)
		r := NewReader(b)
		if got := r.Uint(); r.Err() != nil || got != u {
			t.Fatalf("Uint(%x) = %d, %v", b, got, r.Err())
		}
		r.Reset(b)
		if r.Int(); !errors.Is(r.Err(), ErrBadEncoding) {
			t.Fatalf("Int(%x) of a uint64 beyond int64: %v", b, r.Err())
		}
	}
}

func TestReaderRefuses(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		read func(r *Reader)
	}{
		{"empty", nil, func(r *Reader) { r.Int() }},
		{"truncated uint64", []byte{0xcf, 0, 0}, func(r *Reader) { r.Uint() }},
		{"negative as uint", []byte{0xff}, func(r *Reader) { r.Uint() }},
		{"string as int", []byte{0xa1, 'x'}, func(r *Reader) { r.Int() }},
		{"array claims more than left", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, func(r *Reader) { r.ArrayLen() }},
		{"map claims more than left", []byte{0x82, 0x01, 0x02}, func(r *Reader) { r.MapLen() }},
		{"bin claims more than left", []byte{0xc6, 0x7f, 0xff, 0xff, 0xff}, func(r *Reader) { r.Bin() }},
		{"str claims more than left", []byte{0xbf, 'x'}, func(r *Reader) { r.StrBytes() }},
		{"int as bool", []byte{0x01}, func(r *Reader) { r.Bool() }},
		{"trailing bytes", []byte{0x01, 0x02}, func(r *Reader) { r.Int(); r.Done() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.b)
			tc.read(r)
			if !errors.Is(r.Err(), ErrBadEncoding) {
				t.Fatalf("err = %v, want ErrBadEncoding", r.Err())
			}
			// The error sticks and later reads return zero values.
			if r.Uint() != 0 || r.Bin() != nil || r.Bool() || r.Err() == nil {
				t.Fatal("a read after an error returned a value")
			}
		})
	}
}

func TestReaderBytesAndNil(t *testing.T) {
	b := AppendBin(AppendStr(append([]byte{0xc0, 0xc0}, 0xc3), "actor"), []byte{})
	r := NewReader(b)
	if !r.Nil() || r.Bin() != nil || !r.Bool() || r.Str() != "actor" {
		t.Fatalf("misread %x: %v", b, r.Err())
	}
	if v := r.Bin(); v == nil || len(v) != 0 {
		t.Fatalf("empty bin read as %#v", v)
	}
	if r.Done(); r.Err() != nil {
		t.Fatal(r.Err())
	}
}

// FuzzReader reads raw bytes as a stream of every kind of value: no panic,
// and nothing larger than the input is allocated.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0x93, 0xc4, 0x01, 'k', 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xc3})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		for i := 0; r.Err() == nil && r.Len() > 0 && i < len(b); i++ {
			switch b[i%len(b)] % 7 {
			case 0:
				if n, _ := r.ArrayLen(); n > len(b) {
					t.Fatalf("array of %d from %d bytes", n, len(b))
				}
			case 1:
				if n, _ := r.MapLen(); 2*n > len(b) {
					t.Fatalf("map of %d from %d bytes", n, len(b))
				}
			case 2:
				if v := r.Bin(); len(v) > len(b) {
					t.Fatal("bin longer than input")
				}
			case 3:
				r.Str()
			case 4:
				r.Uint()
			case 5:
				r.Int()
			default:
				r.Bool()
			}
		}
	})
}
