package vclock

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// holder is a struct encoded by reflection that holds a set and a clock,
// as hint records and replica messages do.
type holder struct {
	_msgpack struct{} `msgpack:",as_array"`
	S        Siblings
	C        Clock
}

// Reflection encoding of a struct holding a set or a clock writes the
// hand codec's bytes, and reflection decoding reads them back.
func TestMsgpackMethodsUseCodec(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawRawSiblings(t)
		var c Clock
		if len(s) > 0 {
			c = s[0].Context
		}
		b, err := msgpack.Marshal(&holder{S: s, C: c})
		if err != nil {
			t.Fatal(err)
		}
		want := AppendClock(AppendSiblings([]byte{0x92}, s), c)
		if !bytes.Equal(b, want) {
			t.Fatalf("reflection encoding\n%x\nwant the hand codec's\n%x", b, want)
		}
		var h holder
		if err := msgpack.Unmarshal(b, &h); err != nil || !reflect.DeepEqual(h.S, s) || !reflect.DeepEqual(h.C, c) {
			t.Fatalf("decoded %+v, %v; want %+v, %+v", h, err, s, c)
		}
	})
}

func TestMsgpackMethodsRefuse(t *testing.T) {
	for name, b := range map[string][]byte{
		"set of ints":        {0x92, 0x91, 0x01, 0xc0},
		"short version":      {0x92, 0x91, 0x94, 0x92, 0xa1, 'a', 0x01, 0xc0, 0xc0, 0xc2, 0xc0},
		"dot of three":       {0x92, 0xc0, 0x91, 0x93, 0xa1, 'a', 0x01, 0x01},
		"negative counter":   {0x92, 0xc0, 0x91, 0x92, 0xa1, 'a', 0xff},
		"clock not an array": {0x92, 0xc0, 0xa1, 'a'},
	} {
		t.Run(name, func(t *testing.T) {
			var h holder
			if err := msgpack.Unmarshal(b, &h); err == nil {
				t.Fatalf("decoded %+v, want an error", h)
			}
		})
	}
}

// FuzzMsgpackMethods feeds raw bytes, unchecked (the methods must be safe
// without wire.CheckEncoding), to the reflection decoder of a struct
// holding a set and a clock: no panic; what it accepts the hand codec
// reads alike from the same bytes and from the re-encoding; and what the
// hand codec accepts, it accepts.
func FuzzMsgpackMethods(f *testing.F) {
	ok, _ := msgpack.Marshal(&holder{S: Siblings{{Dot: Dot{Actor: "a", Counter: 1 << 40}, Context: Clock{{Actor: "b", Counter: 3}}, Value: []byte("x"), WallTime: -7}}, C: Clock{{Actor: "c", Counter: 9}}})
	f.Add(ok)
	f.Add([]byte{0x92, 0xc0, 0xc0})
	f.Add([]byte{0x92, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0})
	f.Fuzz(func(t *testing.T, b []byte) {
		hr := wire.NewReader(b)
		var hs Siblings
		var hc Clock
		if n, _ := hr.ArrayLen(); n == 2 {
			hs = ReadSiblingsMax(hr, nil, MaxSiblings)
			hc = ReadClock(hr, nil)
		} else {
			hr.Failf("not a 2-array")
		}
		hr.Done()
		var h holder
		if err := msgpack.Unmarshal(b, &h); err != nil {
			if hr.Err() == nil {
				t.Fatalf("hand codec read %x, reflection refused it: %v", b, err)
			}
			return
		}
		if hr.Err() == nil && (!reflect.DeepEqual(hs, h.S) || !reflect.DeepEqual(hc, h.C)) {
			t.Fatalf("hand codec read %+v, %+v; reflection %+v", hs, hc, h)
		}
		again, err := msgpack.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		r := wire.NewReader(again)
		if n, _ := r.ArrayLen(); n != 2 {
			t.Fatalf("re-encoding %x is not a 2-array", again)
		}
		s := ReadSiblings(r, nil)
		c := ReadClock(r, nil)
		r.Done()
		if r.Err() != nil || !reflect.DeepEqual(s, h.S) || !reflect.DeepEqual(c, h.C) {
			t.Fatalf("hand codec read %+v, %+v, %v; reflection %+v", s, c, r.Err(), h)
		}
	})
}
