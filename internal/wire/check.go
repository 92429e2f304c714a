// Package wire holds what every msgpack format of ringkv (WAL records,
// snapshots, hints, replica and gossip messages, causal contexts) needs
// before a byte from a disk or a peer reaches a decoder: CheckEncoding, the
// guard that bounds every declared length and nesting depth by the bytes
// actually present. The hand-written codecs, which skip reflection, use
// Reader, bounded the same way, and the Append functions instead.
//
// Why a guard and not the decoder's own limit: github.com/vmihailenco/
// msgpack/v5 sizes slices by the count an array header declares. Its
// allocation limit (v5.4.0 added DisableAllocLimit) is never enforced in
// v5.4.0 and v5.4.1 because the flag test is inverted, and the
// []interface{} path lost its cap entirely
// (https://github.com/vmihailenco/msgpack/issues/401; the general problem
// is https://github.com/vmihailenco/msgpack/issues/376): a five-byte array
// header claiming four billion elements allocates tens of gigabytes. The
// decoder also recurses once per nesting level, so deep nesting overflows
// the goroutine stack, a fatal error no recover catches.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadEncoding is returned by CheckEncoding for bytes that are not one
// well-formed msgpack value.
var ErrBadEncoding = errors.New("wire: malformed msgpack")

// MaxDepth bounds how deeply arrays and maps may nest in bytes that
// CheckEncoding accepts.
const MaxDepth = 32

// CheckEncoding verifies that b holds exactly one well-formed msgpack value
// whose every declared length fits in the bytes that follow it. Call it
// before decoding bytes from a disk or a peer with a reflection decoder:
// after this check, whatever the decoder allocates is bounded by a small
// multiple of len(b). Arrays and maps may nest at most MaxDepth deep. The
// check itself is iterative.
func CheckEncoding(b []byte) error {
	c := checker{b: b, pending: 1}
	// open holds, for each array or map being read, how many of its
	// values are still to come; its length is the nesting depth of the
	// next value once the finished containers at its top are dropped. It
	// is a local, not a field, so that it stays on the stack.
	open := make([]int, 0, 8)
	for c.pending > 0 {
		// The next value belongs to the innermost container that still
		// expects one; those that got all theirs are closed.
		for len(open) > 0 && open[len(open)-1] == 0 {
			open = open[:len(open)-1]
		}
		if len(open) > 0 {
			open[len(open)-1]--
		}
		n, err := c.value()
		if err != nil {
			return err
		}
		if n > 0 {
			if len(open) == MaxDepth {
				return fmt.Errorf("%w: nesting deeper than %d at offset %d", ErrBadEncoding, MaxDepth, c.i)
			}
			open = append(open, n)
		}
	}
	if c.i != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadEncoding, len(b)-c.i)
	}
	return nil
}

// checker is the state of one CheckEncoding walk.
type checker struct {
	b       []byte
	i       int // offset of the next byte to read
	pending int // values still to read, at every level
}

// value reads the header of the next value and accounts for what it
// declares; n is the number of values of the array or map it opens (0 for
// a scalar or an empty container).
func (c *checker) value() (n int, err error) {
	if c.i >= len(c.b) {
		return 0, fmt.Errorf("%w: truncated at offset %d", ErrBadEncoding, c.i)
	}
	code := c.b[c.i]
	c.i++
	c.pending--
	switch {
	case code <= 0x7f || code >= 0xe0, code == 0xc0, code == 0xc2, code == 0xc3:
		return 0, nil
	case code >= 0x80 && code <= 0x8f:
		return c.items(2 * uint64(code&0x0f))
	case code >= 0x90 && code <= 0x9f:
		return c.items(uint64(code & 0x0f))
	case code >= 0xa0 && code <= 0xbf:
		return 0, c.skip(uint64(code & 0x1f))
	default:
		return c.code(code)
	}
}

// code handles the codes with a fixed-size payload or a length field.
func (c *checker) code(code byte) (int, error) {
	var w int // width of the length field
	switch code {
	case 0xcc, 0xd0:
		return 0, c.skip(1)
	case 0xcd, 0xd1:
		return 0, c.skip(2)
	case 0xca, 0xce, 0xd2:
		return 0, c.skip(4)
	case 0xcb, 0xcf, 0xd3:
		return 0, c.skip(8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: type byte + 1,2,4,8,16
		return 0, c.skip(1 + 1<<(code-0xd4))
	case 0xc4, 0xd9, 0xc7:
		w = 1
	case 0xc5, 0xda, 0xc8, 0xdc, 0xde:
		w = 2
	case 0xc6, 0xdb, 0xc9, 0xdd, 0xdf:
		w = 4
	default:
		return 0, fmt.Errorf("%w: reserved code 0x%02x", ErrBadEncoding, code)
	}
	n, err := c.length(w)
	if err != nil {
		return 0, err
	}
	switch code {
	case 0xdc, 0xdd:
		return c.items(n)
	case 0xde, 0xdf:
		return c.items(2 * n)
	case 0xc7, 0xc8, 0xc9:
		return 0, c.skip(n + 1) // ext type byte
	default:
		return 0, c.skip(n)
	}
}

func (c *checker) need(n uint64) error {
	if n > uint64(len(c.b)-c.i) {
		return fmt.Errorf("%w: %d bytes needed at offset %d, %d left", ErrBadEncoding, n, c.i, len(c.b)-c.i)
	}
	return nil
}

// length reads a big-endian unsigned integer of w bytes.
func (c *checker) length(w int) (uint64, error) {
	if err := c.need(uint64(w)); err != nil {
		return 0, err
	}
	var n uint64
	switch w {
	case 1:
		n = uint64(c.b[c.i])
	case 2:
		n = uint64(binary.BigEndian.Uint16(c.b[c.i:]))
	case 4:
		n = uint64(binary.BigEndian.Uint32(c.b[c.i:]))
	}
	c.i += w
	return n, nil
}

func (c *checker) skip(n uint64) error {
	if err := c.need(n); err != nil {
		return err
	}
	c.i += int(n)
	return nil
}

// items accounts for n values (2n for a map) to read and returns n; each
// takes at least one byte, so a count larger than what is left is a lie.
func (c *checker) items(n uint64) (int, error) {
	if err := c.need(n); err != nil {
		return 0, err
	}
	c.pending += int(n)
	if c.pending > len(c.b)-c.i+1 {
		return 0, fmt.Errorf("%w: %d values declared at offset %d, %d bytes left", ErrBadEncoding, c.pending, c.i, len(c.b)-c.i)
	}
	return int(n), nil
}
