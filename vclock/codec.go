package vclock

import (
	"fmt"
	"math"

	"github.com/ringkv/ringkv/internal/wire"
)

// The one msgpack codec of sibling sets, dots and clocks, shared by causal
// contexts (EncodeContext), WAL records and snapshots (storage), the hot
// replica messages (replica, by hand) and every struct msgpack reflection
// encodes that holds a set or a clock (hint records, the other replica
// messages), through Siblings' and Clock's msgpack methods
// (codec_msgpack.go):
//
//	siblings: [version...] | nil
//	version:  [dot, context, value bin | nil, tombstone bool, wall_time int]
//	context:  [dot...] | nil
//	dot:      [actor str, counter uint]
//
// which is also how msgpack's reflection encoder lays out these types
// (Version and Dot are as_array structs). Integers are written in their
// smallest msgpack form. That is what WAL segments and snapshots have
// always held, so their bytes do not change; the plain reflection encoder,
// which replica messages and hint records used before, writes counters and
// wall times as 9-byte uint64/int64, 4 to 8 bytes more per dot. Every decoder involved accepts
// every integer width (wire.Reader here, msgpack's reflection decoder on
// a node running an older binary), so both forms keep decoding in both
// directions.

// Smallest encodings of a version (one-byte actor, the smallest Valid
// allows; nil context and value; one-byte integers) and of a dot (empty
// actor, so an underestimate for a valid one), to refuse a count the bytes
// left cannot hold: a decoded Version is 88 bytes, so counting one byte
// per element would let ten bytes of input claim a kilobyte.
const (
	minVersionBytes = 9
	minDotBytes     = 3
)

// AppendSiblings appends the msgpack encoding of s to dst: nil as msgpack
// nil, anything else as an array of versions.
func AppendSiblings(dst []byte, s Siblings) []byte {
	if s == nil {
		return append(dst, 0xc0)
	}
	dst = wire.AppendArrayLen(dst, len(s))
	for i := range s {
		v := &s[i]
		dst = append(dst, 0x95)
		dst = AppendDot(dst, v.Dot)
		dst = AppendClock(dst, v.Context)
		if v.Value == nil {
			dst = append(dst, 0xc0)
		} else {
			dst = wire.AppendBin(dst, v.Value)
		}
		if v.Tombstone {
			dst = append(dst, 0xc3)
		} else {
			dst = append(dst, 0xc2)
		}
		dst = wire.AppendInt(dst, v.WallTime)
	}
	return dst
}

// AppendClock appends c as an array of dots; nil as msgpack nil.
func AppendClock(dst []byte, c Clock) []byte {
	if c == nil {
		return append(dst, 0xc0)
	}
	dst = wire.AppendArrayLen(dst, len(c))
	for _, d := range c {
		dst = AppendDot(dst, d)
	}
	return dst
}

// AppendDot appends d as [actor, counter].
func AppendDot(dst []byte, d Dot) []byte {
	dst = append(dst, 0x92)
	dst = wire.AppendStr(dst, d.Actor)
	return wire.AppendUint(dst, d.Counter)
}

// SizeSiblings bounds len(AppendSiblings(nil, s)), to size a buffer once.
func SizeSiblings(s Siblings) int {
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

// MaxSiblings bounds the versions of a set read from outside bytes by
// ReadSiblingsMax's callers and by Siblings' msgpack decoder: a coordinator
// keeps far fewer per key (it refuses writes past its sibling cap), so a
// larger set comes from a broken or hostile peer or file, and refusing its
// count before allocating bounds what the header of one can make a
// decoder allocate.
const MaxSiblings = 1000

// ErrTooManySiblings is Siblings' msgpack decoder refusing a set of more
// than MaxSiblings versions; it wraps ErrBadSiblings.
var ErrTooManySiblings = fmt.Errorf("%w: too many versions", ErrBadSiblings)

// preSize bounds the capacity made from a count read from the input; a
// longer list grows by append as its elements are actually read, so what
// a hostile count allocates stays a small multiple of the bytes read.
const preSize = 64

// ReadSiblingsMax is ReadSiblings refusing a set of more than max versions
// before allocating.
func ReadSiblingsMax(r *wire.Reader, intern func([]byte) string, max int) Siblings {
	n, isNil := r.ArrayLen()
	if isNil || r.Err() != nil {
		return nil
	}
	if n > max {
		r.Failf("%d versions, at most %d", n, max)
		return nil
	}
	return readVersions(r, intern, n)
}

// ReadSiblings reads a set written by AppendSiblings (or by msgpack's
// reflection encoder). Msgpack nil reads as nil; an empty array as an
// empty set. intern, when not nil, makes each actor string from its bytes
// (which alias the input and must be copied), so that a decoder of many
// sets can share them. Errors stick in r; the set is not checked for
// canonical form (Siblings.Valid).
func ReadSiblings(r *wire.Reader, intern func([]byte) string) Siblings {
	return ReadSiblingsMax(r, intern, math.MaxInt)
}

// readVersions reads the n versions of a set whose array header was read.
func readVersions(r *wire.Reader, intern func([]byte) string, n int) Siblings {
	if n > r.Len()/minVersionBytes {
		r.Failf("%d versions in %d bytes", n, r.Len())
		return nil
	}
	s := make(Siblings, 0, min(n, preSize))
	for range n {
		s = append(s, Version{})
		if readVersion(r, intern, &s[len(s)-1]); r.Err() != nil {
			return nil
		}
	}
	return s
}

// readVersion reads one version into v; errors stick in r.
func readVersion(r *wire.Reader, intern func([]byte) string, v *Version) {
	if m, _ := r.ArrayLen(); m != 5 {
		r.Failf("version is not a 5-element array")
		return
	}
	v.Dot = ReadDot(r, intern)
	v.Context = ReadClock(r, intern)
	v.Value = r.Bin()
	v.Tombstone = r.Bool()
	v.WallTime = r.Int()
}

// ReadClock reads a clock written by AppendClock; msgpack nil reads as
// nil. It is not checked for canonical form (Clock.Check).
func ReadClock(r *wire.Reader, intern func([]byte) string) Clock {
	n, isNil := r.ArrayLen()
	if isNil || r.Err() != nil {
		return nil
	}
	if n > r.Len()/minDotBytes {
		r.Failf("%d dots in %d bytes", n, r.Len())
		return nil
	}
	c := make(Clock, 0, min(n, preSize))
	for range n {
		if c = append(c, ReadDot(r, intern)); r.Err() != nil {
			return nil
		}
	}
	return c
}

// ReadDot reads a dot written by AppendDot.
func ReadDot(r *wire.Reader, intern func([]byte) string) Dot {
	if n, _ := r.ArrayLen(); n != 2 {
		r.Failf("dot is not a 2-element array")
		return Dot{}
	}
	var d Dot
	if intern != nil {
		d.Actor = intern(r.StrBytes())
	} else {
		d.Actor = r.Str()
	}
	d.Counter = r.Uint()
	return d
}
