package storage

import (
	"encoding/binary"
	"errors"
	"math"
)

// mpReader is a minimal msgpack reader over a byte slice, covering the
// types entries use. The first error sticks: later calls return zero
// values, so parsers check p.err once per logical unit. Every length is
// checked against the bytes left before anything is allocated.
type mpReader struct {
	b   []byte
	off int
	err error
}

func (p *mpReader) fail(msg string) {
	if p.err == nil {
		p.err = errors.New(msg)
	}
}

func (p *mpReader) take(n int) []byte {
	if p.err != nil {
		return nil
	}
	if n < 0 || n > len(p.b)-p.off {
		p.fail("value extends past end of payload")
		return nil
	}
	out := p.b[p.off : p.off+n]
	p.off += n
	return out
}

func (p *mpReader) byte1() byte {
	b := p.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (p *mpReader) be(n int) uint64 {
	b := p.take(n)
	if b == nil {
		return 0
	}
	switch n {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	default:
		return binary.BigEndian.Uint64(b)
	}
}

// arrayLen reads an array header; nil reads as (0, true). The length is
// bounded by the bytes left, since every element takes at least one.
func (p *mpReader) arrayLen() (int, bool) {
	c := p.byte1()
	var n uint64
	switch {
	case p.err != nil:
		return 0, false
	case c == 0xc0:
		return 0, true
	case c >= 0x90 && c <= 0x9f:
		n = uint64(c & 0x0f)
	case c == 0xdc:
		n = p.be(2)
	case c == 0xdd:
		n = p.be(4)
	default:
		p.fail("expected array")
		return 0, false
	}
	if n > uint64(len(p.b)-p.off) {
		p.fail("array length exceeds payload")
		return 0, false
	}
	return int(n), false
}

// bin reads a bin (or str) value and returns a copy; nil reads as nil. If
// required, nil is an error.
func (p *mpReader) bin(required bool) []byte {
	c := p.byte1()
	var n uint64
	switch {
	case p.err != nil:
		return nil
	case c == 0xc0:
		if required {
			p.fail("expected bytes, got nil")
		}
		return nil
	case c == 0xc4, c == 0xd9:
		n = p.be(1)
	case c == 0xc5, c == 0xda:
		n = p.be(2)
	case c == 0xc6, c == 0xdb:
		n = p.be(4)
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	default:
		p.fail("expected bytes")
		return nil
	}
	raw := p.take(int(min(n, math.MaxInt32)))
	if raw == nil {
		return nil
	}
	return append(make([]byte, 0, len(raw)), raw...)
}

// strBytes reads a str (or bin) value without copying.
func (p *mpReader) strBytes() []byte {
	c := p.byte1()
	var n uint64
	switch {
	case p.err != nil:
		return nil
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9, c == 0xc4:
		n = p.be(1)
	case c == 0xda, c == 0xc5:
		n = p.be(2)
	case c == 0xdb, c == 0xc6:
		n = p.be(4)
	default:
		p.fail("expected string")
		return nil
	}
	return p.take(int(min(n, math.MaxInt32)))
}

func (p *mpReader) boolean() bool {
	switch c := p.byte1(); {
	case p.err != nil:
		return false
	case c == 0xc3:
		return true
	case c == 0xc2:
		return false
	default:
		p.fail("expected bool")
		return false
	}
}

func (p *mpReader) uint() uint64 {
	c := p.byte1()
	switch {
	case p.err != nil:
		return 0
	case c <= 0x7f:
		return uint64(c)
	case c == 0xcc:
		return p.be(1)
	case c == 0xcd:
		return p.be(2)
	case c == 0xce:
		return p.be(4)
	case c == 0xcf:
		return p.be(8)
	case c == 0xd0, c == 0xd1, c == 0xd2, c == 0xd3:
		p.off--
		v := p.int()
		if v < 0 {
			p.fail("expected unsigned integer, got negative")
			return 0
		}
		return uint64(v)
	default:
		p.fail("expected unsigned integer")
		return 0
	}
}

func (p *mpReader) int() int64 {
	c := p.byte1()
	switch {
	case p.err != nil:
		return 0
	case c <= 0x7f:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	case c == 0xd0:
		return int64(int8(p.be(1)))
	case c == 0xd1:
		return int64(int16(p.be(2)))
	case c == 0xd2:
		return int64(int32(p.be(4)))
	case c == 0xd3:
		return int64(p.be(8))
	case c == 0xcc, c == 0xcd, c == 0xce:
		p.off--
		return int64(p.uint())
	case c == 0xcf:
		v := p.be(8)
		if v > math.MaxInt64 {
			p.fail("integer overflows int64")
			return 0
		}
		return int64(v)
	default:
		p.fail("expected integer")
		return 0
	}
}
