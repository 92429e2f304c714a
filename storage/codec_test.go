package storage

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/vclock"
	"pgregory.net/rapid"
)

// genSiblings draws a canonical sibling set by minting and merging, the
// way sets arise in the system.
func genSiblings(t *rapid.T) vclock.Siblings {
	actors := []string{"a", "bb", "incarnation1", "a-much-longer-actor-name-over-32-bytes"}
	var s vclock.Siblings
	for range rapid.IntRange(0, 6).Draw(t, "writes") {
		w := vclock.Write{
			Blind:     rapid.Bool().Draw(t, "blind"),
			Tombstone: rapid.Bool().Draw(t, "tombstone"),
			Value:     rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "value"),
			WallTime:  rapid.Int64().Draw(t, "wall"),
		}
		if rapid.Bool().Draw(t, "withContext") {
			w.Context = s.Context()
		}
		actor := rapid.SampledFrom(actors).Draw(t, "actor")
		var next vclock.Siblings
		_, next = vclock.Mint(s, actor, w)
		if rapid.Bool().Draw(t, "concurrent") {
			_, other := vclock.Mint(nil, actor+"x", w)
			next = vclock.Merge(next, other)
		}
		s = next
	}
	return s
}

// The hand-written codec agrees with vclock's reflection codec in both
// directions and round-trips.
func TestEntryCodecMatchesVclock(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSiblings(t)
		key := rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "key")
		recv := rapid.Int64().Draw(t, "recv")
		enc := appendEntry(nil, key, s, recv)
		e2, err := newEntryDecoder(-1).decode(enc)
		if err != nil {
			t.Fatalf("decode own encoding: %v", err)
		}
		if !bytes.Equal(e2.key, key) || !e2.s.Equal(s) || e2.recv != recv || e2.setsCand {
			t.Fatalf("round trip changed (%q, %v, %d) to %+v", key, s, recv, e2)
		}
		// The 4-element form carries the candidate, nil included.
		cand := newCandidate(s, rapid.Int64().Draw(t, "at"))
		e2, err = newEntryDecoder(-1).decode(appendEntryCandidate(nil, key, s, recv, cand))
		if err != nil || !bytes.Equal(e2.key, key) || !e2.s.Equal(s) || e2.recv != recv || !e2.setsCand || !sameCandidate(e2.cand, cand) {
			t.Fatalf("4-element form decoded as %+v, %v; candidate %+v", e2, err, cand)
		}
		// The old 2-element form reads with the decoder's default time.
		e2, err = newEntryDecoder(77).decode(appendEntryV1(nil, key, s))
		if err != nil || !bytes.Equal(e2.key, key) || !e2.s.Equal(s) || e2.recv != 77 {
			t.Fatalf("old form decoded as %+v, %v", e2, err)
		}
		// Our siblings encoding is accepted by vclock.DecodeSiblings...
		sib := vclock.AppendSiblings(nil, s)
		v, err := vclock.DecodeSiblings(sib)
		if err != nil || !v.Equal(s) {
			t.Fatalf("vclock.DecodeSiblings(ours) = %v, %v", v, err)
		}
		// ...and vclock's encoding is accepted by ours.
		theirs, err := vclock.EncodeSiblings(s)
		if err != nil {
			t.Fatal(err)
		}
		framed := wire.AppendInt(append(wire.AppendBin(wire.AppendArrayLen(nil, 3), key), theirs...), recv)
		e3, err := newEntryDecoder(0).decode(framed)
		if err != nil || !e3.s.Equal(s) {
			t.Fatalf("decode(vclock encoding) = %v, %v", e3.s, err)
		}
	})
}

func TestEntryDecodeRejects(t *testing.T) {
	_, valid := vclock.Mint(nil, "a", vclock.Write{Value: []byte("v")})
	good := appendEntry(nil, []byte("k"), valid, 5)
	withCand := func(c []byte) []byte { return append(append([]byte{0x94}, good[1:]...), c...) }
	dot := vclock.AppendDot(nil, vclock.Dot{Actor: "x", Counter: 3})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not an array", []byte{0xc0}},
		{"empty key", appendEntry(nil, nil, valid, 5)},
		{"empty key, old form", appendEntryV1(nil, nil, valid)},
		{"1-element array", wire.AppendBin(wire.AppendArrayLen(nil, 1), []byte("k"))},
		{"5-element array", append(append([]byte{0x95}, good[1:]...), 0xc0, 0xc0)},
		{"candidate missing", withCand(nil)},
		{"candidate not an array", withCand([]byte{0x01})},
		{"candidate of 3 elements", withCand(append([]byte{0x93, 0x01, 0x91}, append(dot, 0xc0)...))},
		{"candidate with an empty clock", withCand([]byte{0x92, 0x01, 0x90})},
		{"candidate clock not canonical", withCand(append(append([]byte{0x92, 0x01, 0x92}, dot...), dot...))},
		{"candidate clock huge claim", withCand([]byte{0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff})},
		{"candidate time not an integer", withCand(append([]byte{0x92, 0xc0, 0x91}, dot...))},
		{"recv not an integer", append(append([]byte{0x93}, appendEntryV1(nil, []byte("k"), valid)[1:]...), 0xc0)},
		{"recv missing", append([]byte{0x93}, appendEntryV1(nil, []byte("k"), valid)[1:]...)},
		{"recv overflows", append(append([]byte{0x93}, appendEntryV1(nil, []byte("k"), valid)[1:]...), 0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"huge array claim", []byte{0x93, 0xc4, 1, 'k', 0xdd, 0xff, 0xff, 0xff, 0xff, 1}},
		{"non-canonical set", appendEntry(nil, []byte("k"), vclock.Siblings{{Dot: vclock.Dot{Actor: "a"}}}, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newEntryDecoder(0).decode(tc.b); !errors.Is(err, errBadEntry) {
				t.Fatalf("decode = %v, want errBadEntry", err)
			}
		})
	}
}

func TestDecodeRecord(t *testing.T) {
	rec := appendRecord(nil, []byte("hello"))
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"ok", rec, nil},
		{"short header", rec[:5], errShortRecord},
		{"short payload", rec[:len(rec)-1], errShortRecord},
		{"bad length", func() []byte { b := append([]byte(nil), rec...); b[0] ^= 1; return b }(), errBadHeader},
		{"bad payload", func() []byte { b := append([]byte(nil), rec...); b[13] ^= 1; return b }(), errBadPayload},
		{"zero header", make([]byte, 20), errBadHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, n, err := DecodeRecord(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && (string(p) != "hello" || n != len(rec)) {
				t.Fatalf("got %q, %d", p, n)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, []byte("hello")))
	f.Add(appendRecord(appendRecord(nil, []byte{1}), []byte("two")))
	f.Add(make([]byte, 12))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if n > len(b) || len(p) == 0 || n != len(p)+recordHeaderSize {
			t.Fatalf("inconsistent decode: payload %d, n %d, input %d", len(p), n, len(b))
		}
		if again := appendRecord(nil, p); !bytes.Equal(again, b[:n]) {
			t.Fatal("re-encoding differs from the input")
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	_, s := vclock.Mint(nil, "a", vclock.Write{Value: []byte("v"), WallTime: -5})
	_, s = vclock.Mint(s, "b", vclock.Write{Tombstone: true, Context: s.Context(), WallTime: 1 << 40})
	f.Add(appendEntry(nil, []byte("k"), s, 1_700_000_000_000_000_000))
	f.Add(appendEntry(nil, []byte("key"), nil, -3))
	f.Add(appendEntry(nil, []byte("k"), s, 0))
	f.Add(appendEntryV1(nil, []byte("k"), s))
	f.Add(appendEntryCandidate(nil, []byte("k"), s, 9, &candidate{at: 3, upTo: vclock.Clock{{Actor: "z", Counter: 4}}}))
	f.Add(appendEntryCandidate(nil, []byte("k"), s, 9, nil))
	f.Add(appendEntryV1(nil, []byte("key"), nil))
	f.Add([]byte{0x92, 0xc4, 1, 'k', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x93, 0xc4, 1, 'k', 0xc0, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		const def = 12345
		e, err := newEntryDecoder(def).decode(b)
		if err != nil {
			return
		}
		if !e.s.Valid() || len(e.key) == 0 || e.cand != nil && (len(e.cand.upTo) == 0 || !e.cand.upTo.Valid()) {
			t.Fatal("decoded an invalid entry")
		}
		if b[0] == 0x92 && e.recv != def {
			t.Fatalf("old-form entry got receipt time %d, want the default", e.recv)
		}
		enc := appendEntry(nil, e.key, e.s, e.recv)
		if e.setsCand {
			enc = appendEntryCandidate(nil, e.key, e.s, e.recv, e.cand)
		}
		e2, err := newEntryDecoder(0).decode(enc)
		if err != nil || !bytes.Equal(e2.key, e.key) || !e2.s.Equal(e.s) || e2.recv != e.recv || e2.setsCand != e.setsCand || !sameCandidate(e2.cand, e.cand) {
			t.Fatalf("round trip failed: %v", err)
		}
		// The index keeps what recovery installs as a blob (an empty set
		// deletes the key instead): it must give back the same key,
		// receipt time and set.
		if len(e.s) == 0 {
			return
		}
		it, k := newItem(string(e.key), e.s, e.recv)
		if k != string(e.key) || it.recv() != e.recv {
			t.Fatalf("index blob round trip: key %q recv %d, want %q %d", k, it.recv(), e.key, e.recv)
		}
		if msg := sameItemSet(it.siblings(), e.s); msg != "" {
			t.Fatalf("index blob round trip: %s", msg)
		}
	})
}

// appendEntryV1 encodes an entry in the form written before receipt
// times: [key bin, siblings].
func appendEntryV1(dst, key []byte, s vclock.Siblings) []byte {
	dst = wire.AppendArrayLen(dst, 2)
	dst = wire.AppendBin(dst, key)
	return vclock.AppendSiblings(dst, s)
}

// sameCandidate reports whether a and b are equal candidates (or both nil).
func sameCandidate(a, b *candidate) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.at == b.at && a.upTo.Equal(b.upTo)
}
