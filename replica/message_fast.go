package replica

import (
	"encoding/binary"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/vclock"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The hot messages of a replicated request (a store or read request and
// its reply) are encoded and decoded here by hand, without reflection:
// profiled, msgpack's reflection (and its omitempty walk over Response's
// fields) was a seventh of a replicated request's CPU. The bytes are
// exactly those the reflection encoder writes (message_fast_test.go
// compares them on many random messages), so peers cannot tell. Anything
// else, and any input in a form these do not expect, takes the reflection
// path, which gives the same result.

// fastRequest reports whether r has only the fields the fast encoder
// writes: Kind, Key, Siblings, HintFor and Epoch.
func fastRequest(r *Request) bool {
	return r.Write == nil && r.Batch == nil && r.Partition == 0 && len(r.After) == 0 && r.Limit == 0 && r.AEQuery == nil
}

// appendRequest appends r's msgpack encoding (no version byte); r must
// satisfy fastRequest.
func appendRequest(b []byte, r *Request) []byte {
	n := 0
	if r.Kind != 0 {
		n++
	}
	if len(r.Key) > 0 {
		n++
	}
	if len(r.Siblings) > 0 {
		n++
	}
	if r.HintFor != "" {
		n++
	}
	if r.Epoch != 0 {
		n++
	}
	b = append(b, msgpcode.FixedMapLow|byte(n))
	if r.Kind != 0 {
		b = wire.AppendStr(b, "k")
		b = append(b, msgpcode.Uint8, byte(r.Kind))
	}
	if len(r.Key) > 0 {
		b = wire.AppendStr(b, "key")
		b = wire.AppendBin(b, r.Key)
	}
	if len(r.Siblings) > 0 {
		b = wire.AppendStr(b, "sib")
		b = appendSiblings(b, r.Siblings)
	}
	if r.HintFor != "" {
		b = wire.AppendStr(b, "hint")
		b = wire.AppendStr(b, r.HintFor)
	}
	if r.Epoch != 0 {
		b = wire.AppendStr(b, "ep")
		b = append(b, msgpcode.Uint64)
		b = binary.BigEndian.AppendUint64(b, r.Epoch)
	}
	return b
}

// fastReply reports whether the reply to send is resp alone (no error)
// holding at most Siblings.
func fastReply(resp *Response, err error) bool {
	return err == nil && len(resp.Context) == 0 && resp.Replies == 0 && resp.Hinted == 0 &&
		len(resp.Batch) == 0 && !resp.More && resp.Keys == 0 && resp.Bytes == 0 && resp.Epoch == 0 &&
		resp.PlanHash == 0 && len(resp.Done) == 0 && resp.AEAnswer == nil && len(resp.Stats) == 0
}

// appendReply appends the wireReply encoding of resp (no version byte);
// resp must satisfy fastReply. An empty Response is omitted, as the
// reflection encoder omits an empty struct.
func appendReply(b []byte, resp *Response) []byte {
	if len(resp.Siblings) == 0 {
		return append(b, msgpcode.FixedMapLow)
	}
	b = append(b, msgpcode.FixedMapLow|1)
	b = wire.AppendStr(b, "r")
	b = append(b, msgpcode.FixedMapLow|1)
	b = wire.AppendStr(b, "sib")
	return appendSiblings(b, resp.Siblings)
}

// appendSiblings encodes a set as the reflection encoder does: each
// Version an array of its five fields, its Dot an array of two.
func appendSiblings(b []byte, s vclock.Siblings) []byte {
	b = wire.AppendArrayLen(b, len(s))
	for i := range s {
		v := &s[i]
		b = append(b, msgpcode.FixedArrayLow|5)
		b = appendDot(b, v.Dot)
		if v.Context == nil {
			b = append(b, msgpcode.Nil)
		} else {
			b = wire.AppendArrayLen(b, len(v.Context))
			for _, d := range v.Context {
				b = appendDot(b, d)
			}
		}
		if v.Value == nil {
			b = append(b, msgpcode.Nil)
		} else {
			b = wire.AppendBin(b, v.Value)
		}
		if v.Tombstone {
			b = append(b, msgpcode.True)
		} else {
			b = append(b, msgpcode.False)
		}
		b = append(b, msgpcode.Int64)
		b = binary.BigEndian.AppendUint64(b, uint64(v.WallTime))
	}
	return b
}

func appendDot(b []byte, d vclock.Dot) []byte {
	b = append(b, msgpcode.FixedArrayLow|2)
	b = wire.AppendStr(b, d.Actor)
	b = append(b, msgpcode.Uint64)
	return binary.BigEndian.AppendUint64(b, d.Counter)
}

// sizeSiblings bounds the encoded size of a set, to size the buffer once.
func sizeSiblings(s vclock.Siblings) int {
	n := 5
	for i := range s {
		v := &s[i]
		n += 1 + 15 + len(v.Dot.Actor) + 5 + 5 + len(v.Value) + 1 + 9
		for _, d := range v.Context {
			n += 15 + len(d.Actor)
		}
	}
	return n
}

// reader walks a msgpack body for the fast decoders. Every read is bounded
// by the bytes left; ok turns false at the first byte in a form the fast
// path does not take, and the caller falls back to reflection.
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) byte1() byte {
	if !r.ok || len(r.b) < 1 {
		r.ok = false
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) take(n int) []byte {
	if !r.ok || n < 0 || len(r.b) < n {
		r.ok = false
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) uint(size int) uint64 {
	p := r.take(size)
	if p == nil {
		return 0
	}
	switch size {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	}
	return binary.BigEndian.Uint64(p)
}

// str reads a string in any of msgpack's string forms.
func (r *reader) str() string { return string(r.strBytes()) }

// strBytes is str without the copy, for field names: comparing
// string(b) with a constant allocates nothing.
func (r *reader) strBytes() []byte {
	c := r.byte1()
	var n int
	switch {
	case msgpcode.IsFixedString(c):
		n = int(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8:
		n = int(r.uint(1))
	case c == msgpcode.Str16:
		n = int(r.uint(2))
	case c == msgpcode.Str32:
		n = int(r.uint(4))
	default:
		r.ok = false
	}
	return r.take(n)
}

// bin reads a byte string as the reflection decoder does: a fresh copy,
// empty but not nil for zero bytes, nil for msgpack nil when nilOK.
func (r *reader) bin(nilOK bool) []byte {
	c := r.byte1()
	var n int
	switch c {
	case msgpcode.Nil:
		if !nilOK {
			r.ok = false
		}
		return nil
	case msgpcode.Bin8:
		n = int(r.uint(1))
	case msgpcode.Bin16:
		n = int(r.uint(2))
	case msgpcode.Bin32:
		n = int(r.uint(4))
	default:
		r.ok = false
		return nil
	}
	p := r.take(n)
	if !r.ok {
		return nil
	}
	return append(make([]byte, 0, n), p...)
}

// arrayLen reads an array header; -1 for nil when nilOK.
func (r *reader) arrayLen(nilOK bool) int {
	c := r.byte1()
	switch {
	case msgpcode.IsFixedArray(c):
		return int(c & msgpcode.FixedArrayMask)
	case c == msgpcode.Array16:
		return int(r.uint(2))
	case c == msgpcode.Array32:
		return int(r.uint(4))
	case c == msgpcode.Nil && nilOK:
		return -1
	}
	r.ok = false
	return 0
}

// mapLen reads a fixed map header (the fast messages have few fields).
func (r *reader) mapLen() int {
	c := r.byte1()
	if !msgpcode.IsFixedMap(c) {
		r.ok = false
		return 0
	}
	return int(c & msgpcode.FixedMapMask)
}

func (r *reader) dot() vclock.Dot {
	if r.byte1() != msgpcode.FixedArrayLow|2 {
		r.ok = false
	}
	d := vclock.Dot{Actor: r.str()}
	if r.byte1() != msgpcode.Uint64 {
		r.ok = false
	}
	d.Counter = r.uint(8)
	return d
}

// Smallest encodings of a Version and a Dot, to bound a count by the
// bytes left before allocating.
const (
	minVersionBytes = 24
	minDotBytes     = 11
)

// siblings reads a set as appendSiblings writes it. The count is bounded
// by the bytes left before the set is allocated; a set beyond
// maxWireSiblings takes the reflection path, which refuses it.
func (r *reader) siblings() vclock.Siblings {
	n := r.arrayLen(true)
	if !r.ok || n > maxWireSiblings || n > len(r.b)/minVersionBytes {
		r.ok = false
		return nil
	}
	if n < 0 {
		return nil
	}
	s := make(vclock.Siblings, n)
	for i := range s {
		v := &s[i]
		if r.byte1() != msgpcode.FixedArrayLow|5 {
			r.ok = false
			return nil
		}
		v.Dot = r.dot()
		if m := r.arrayLen(true); r.ok && m >= 0 {
			if m > len(r.b)/minDotBytes {
				r.ok = false
				return nil
			}
			v.Context = make(vclock.Clock, m)
			for j := range v.Context {
				v.Context[j] = r.dot()
			}
		}
		v.Value = r.bin(true)
		switch r.byte1() {
		case msgpcode.True:
			v.Tombstone = true
		case msgpcode.False:
		default:
			r.ok = false
		}
		if r.byte1() != msgpcode.Int64 {
			r.ok = false
		}
		v.WallTime = int64(r.uint(8))
		if !r.ok {
			return nil
		}
	}
	return s
}

// decodeRequest decodes a body (after the version byte) written by
// appendRequest, with its fields in any order; ok is false for anything
// else, which the reflection decoder then reads.
func decodeRequest(b []byte) (req Request, ok bool) {
	r := reader{b: b, ok: true}
	n := r.mapLen()
	var seen [5]bool // a repeated field takes the reflection path
	field := func(i int) {
		if seen[i] {
			r.ok = false
		}
		seen[i] = true
	}
	for range n {
		switch string(r.strBytes()) {
		case "k":
			field(0)
			if r.byte1() != msgpcode.Uint8 {
				r.ok = false
			}
			req.Kind = Kind(r.uint(1))
		case "key":
			field(1)
			req.Key = r.bin(false)
		case "sib":
			field(2)
			req.Siblings = r.siblings()
		case "hint":
			field(3)
			req.HintFor = r.str()
		case "ep":
			field(4)
			if r.byte1() != msgpcode.Uint64 {
				r.ok = false
			}
			req.Epoch = r.uint(8)
		default:
			r.ok = false
		}
		if !r.ok {
			return Request{}, false
		}
	}
	if !r.ok || len(r.b) != 0 {
		return Request{}, false
	}
	return req, true
}

// decodeReply decodes a wireReply body written by appendReply; ok is
// false for anything else (errors included), which the reflection
// decoder then reads.
func decodeReply(b []byte) (resp Response, ok bool) {
	r := reader{b: b, ok: true}
	switch r.mapLen() {
	case 0:
	case 1:
		if string(r.strBytes()) != "r" || r.mapLen() != 1 || string(r.strBytes()) != "sib" {
			return Response{}, false
		}
		resp.Siblings = r.siblings()
	default:
		return Response{}, false
	}
	if !r.ok || len(r.b) != 0 {
		return Response{}, false
	}
	return resp, true
}
