package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Reader reads msgpack values from a byte slice for the hand-written
// decoders (sibling sets, WAL records, snapshots, replica messages). The
// first error sticks: later reads return zero values, so a decoder checks
// Err once per logical unit. Every length is checked against the bytes
// left before anything is allocated, and an array's count is bounded by
// them too (every element takes at least one byte). A count still claims
// more than its elements take: decoders refuse counts their smallest
// element encoding cannot fit, pre-size at most 64 elements and grow as
// elements are read, so what they allocate is a multiple of the bytes
// read, not of a count: for sibling sets up to about 20 times (an 88-byte
// Version from as few as 9 bytes, doubled by append's growth), for clocks
// about 16. Integers are accepted in
// every msgpack width, so bytes from every encoder ringkv has used decode.
// Not safe for concurrent use.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader returns a Reader over b; slices it returns alias b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Reset makes r read b from its start, clearing any error.
func (r *Reader) Reset(b []byte) { *r = Reader{b: b} }

// Err returns the first error, wrapping ErrBadEncoding, or nil.
func (r *Reader) Err() error { return r.err }

// Len returns the number of bytes left.
func (r *Reader) Len() int { return len(r.b) - r.off }

// Failf records an error (if none is recorded yet) at the current offset;
// decoders use it for values of the right type but the wrong shape.
func (r *Reader) Failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at offset %d", ErrBadEncoding, fmt.Sprintf(format, args...), r.off)
	}
}

// Done records an error if bytes are left after the last value.
func (r *Reader) Done() {
	if r.err == nil && r.off != len(r.b) {
		r.Failf("%d trailing bytes", len(r.b)-r.off)
	}
}

func (r *Reader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.Failf("%d bytes needed, %d left", n, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return p
}

func (r *Reader) code() byte {
	p := r.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

// be reads a big-endian unsigned integer of w (1, 2, 4 or 8) bytes.
func (r *Reader) be(w int) uint64 {
	p := r.take(uint64(w))
	switch {
	case p == nil:
		return 0
	case w == 1:
		return uint64(p[0])
	case w == 2:
		return uint64(binary.BigEndian.Uint16(p))
	case w == 4:
		return uint64(binary.BigEndian.Uint32(p))
	default:
		return binary.BigEndian.Uint64(p)
	}
}

// Nil consumes a nil and reports true if the next value is one; otherwise
// it reads nothing.
func (r *Reader) Nil() bool {
	if r.err == nil && r.off < len(r.b) && r.b[r.off] == 0xc0 {
		r.off++
		return true
	}
	return false
}

// ArrayLen reads an array header; nil reads as (0, true).
func (r *Reader) ArrayLen() (n int, isNil bool) {
	return r.containerLen("an array", "elements", 0x90, 0xdc, 1)
}

// MapLen reads a map header; nil reads as (0, true).
func (r *Reader) MapLen() (n int, isNil bool) {
	return r.containerLen("a map", "pairs", 0x80, 0xde, 2)
}

// containerLen reads an array or map header: fix is its fix form's base
// code (count in the low four bits), code16 its 16-bit form (the 32-bit
// form follows it). Each element takes at least one byte and a map's pair
// two (per), so a count the bytes left cannot hold fails here, before any
// caller allocates for it.
func (r *Reader) containerLen(what, unit string, fix, code16 byte, per uint64) (n int, isNil bool) {
	c := r.code()
	var m uint64
	switch {
	case r.err != nil:
		return 0, false
	case c == 0xc0:
		return 0, true
	case c >= fix && c <= fix|0x0f:
		m = uint64(c & 0x0f)
	case c == code16:
		m = r.be(2)
	case c == code16+1:
		m = r.be(4)
	default:
		r.off--
		r.Failf("code 0x%02x is not %s", c, what)
		return 0, false
	}
	if per*m > uint64(len(r.b)-r.off) {
		r.Failf("%s of %d %s, %d bytes left", what[strings.IndexByte(what, ' ')+1:], m, unit, len(r.b)-r.off)
		return 0, false
	}
	return int(m), false
}

// StrBytes reads a str or bin value without copying; nil reads as nil.
func (r *Reader) StrBytes() []byte {
	c := r.code()
	var n uint64
	switch {
	case r.err != nil:
		return nil
	case c == 0xc0:
		return nil
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9, c == 0xc4:
		n = r.be(1)
	case c == 0xda, c == 0xc5:
		n = r.be(2)
	case c == 0xdb, c == 0xc6:
		n = r.be(4)
	default:
		r.off--
		r.Failf("code 0x%02x is not a string", c)
		return nil
	}
	return r.take(n)
}

// Str reads a str or bin value as a string; nil reads as "".
func (r *Reader) Str() string { return string(r.StrBytes()) }

// Bin reads a bin or str value and returns a copy: nil for msgpack nil, an
// empty non-nil slice for zero bytes (as the reflection decoder does).
func (r *Reader) Bin() []byte {
	if r.Nil() {
		return nil
	}
	p := r.StrBytes()
	if r.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(p)), p...)
}

// Bool reads a bool.
func (r *Reader) Bool() bool {
	switch c := r.code(); {
	case r.err != nil:
		return false
	case c == 0xc3:
		return true
	case c == 0xc2:
		return false
	default:
		r.off--
		r.Failf("code 0x%02x is not a bool", c)
		return false
	}
}

// Uint reads an integer of any width that is not negative.
func (r *Reader) Uint() uint64 {
	c := r.code()
	switch {
	case r.err != nil:
		return 0
	case c <= 0x7f:
		return uint64(c)
	case c == 0xcc:
		return r.be(1)
	case c == 0xcd:
		return r.be(2)
	case c == 0xce:
		return r.be(4)
	case c == 0xcf:
		return r.be(8)
	}
	r.off--
	v := r.Int()
	if v < 0 && r.err == nil {
		r.Failf("negative integer %d where unsigned expected", v)
		return 0
	}
	return uint64(v)
}

// Int reads an integer of any width that fits in an int64.
func (r *Reader) Int() int64 {
	c := r.code()
	switch {
	case r.err != nil:
		return 0
	case c <= 0x7f:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	case c == 0xd0:
		return int64(int8(r.be(1)))
	case c == 0xd1:
		return int64(int16(r.be(2)))
	case c == 0xd2:
		return int64(int32(r.be(4)))
	case c == 0xd3:
		return int64(r.be(8))
	case c == 0xcc:
		return int64(r.be(1))
	case c == 0xcd:
		return int64(r.be(2))
	case c == 0xce:
		return int64(r.be(4))
	case c == 0xcf:
		v := r.be(8)
		if v > math.MaxInt64 {
			r.Failf("integer %d overflows int64", v)
			return 0
		}
		return int64(v)
	default:
		r.off--
		r.Failf("code 0x%02x is not an integer", c)
		return 0
	}
}
