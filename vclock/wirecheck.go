package vclock

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadEncoding is returned by CheckEncoding for bytes that are not one
// well-formed msgpack value.
var ErrBadEncoding = errors.New("vclock: malformed msgpack")

// CheckEncoding verifies that b holds exactly one well-formed msgpack value
// whose every declared length fits in the bytes that follow it. Call it
// before decoding bytes from a disk or a peer: the msgpack decoder sizes
// slices by the declared count, so a five-byte array header claiming four
// billion elements would otherwise allocate hundreds of gigabytes. After
// this check, whatever the decoder allocates is bounded by a small multiple
// of len(b). Arrays and maps may nest at most MaxDepth deep: the decoder
// recurses once per level (also to skip a field it does not know), and a
// few megabytes of nesting would overflow the goroutine stack, a fatal
// error that no recover catches. The check itself is iterative.
func CheckEncoding(b []byte) error {
	pending := 1 // values still to read, at every level
	i := 0
	// open holds, for each array or map being read, how many of its
	// values are still to come; its length is the nesting depth of the
	// next value once the finished containers at its top are dropped.
	open := make([]int, 0, 8)
	need := func(n uint64) error {
		if n > uint64(len(b)-i) {
			return fmt.Errorf("%w: %d bytes needed at offset %d, %d left", ErrBadEncoding, n, i, len(b)-i)
		}
		return nil
	}
	// length reads a big-endian unsigned integer of w bytes.
	length := func(w int) (uint64, error) {
		if err := need(uint64(w)); err != nil {
			return 0, err
		}
		var n uint64
		switch w {
		case 1:
			n = uint64(b[i])
		case 2:
			n = uint64(binary.BigEndian.Uint16(b[i:]))
		case 4:
			n = uint64(binary.BigEndian.Uint32(b[i:]))
		}
		i += w
		return n, nil
	}
	skip := func(n uint64) error {
		if err := need(n); err != nil {
			return err
		}
		i += int(n)
		return nil
	}
	// items adds n values (2n for a map) to read; each takes at least one
	// byte, so a count larger than what is left is a lie.
	items := func(n uint64) error {
		if err := need(n); err != nil {
			return err
		}
		pending += int(n)
		if pending > len(b)-i+1 {
			return fmt.Errorf("%w: %d values declared at offset %d, %d bytes left", ErrBadEncoding, pending, i, len(b)-i)
		}
		if n > 0 {
			if len(open) == MaxDepth {
				return fmt.Errorf("%w: nesting deeper than %d at offset %d", ErrBadEncoding, MaxDepth, i)
			}
			open = append(open, int(n))
		}
		return nil
	}
	for pending > 0 {
		if i >= len(b) {
			return fmt.Errorf("%w: truncated at offset %d", ErrBadEncoding, i)
		}
		c := b[i]
		i++
		pending--
		// This value belongs to the innermost container that still
		// expects one; those that got all theirs (the last of which, now
		// read, was the top of the stack) are closed.
		for len(open) > 0 && open[len(open)-1] == 0 {
			open = open[:len(open)-1]
		}
		if len(open) > 0 {
			open[len(open)-1]--
		}
		var err error
		switch {
		case c <= 0x7f || c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			err = items(2 * uint64(c&0x0f))
		case c >= 0x90 && c <= 0x9f:
			err = items(uint64(c & 0x0f))
		case c >= 0xa0 && c <= 0xbf:
			err = skip(uint64(c & 0x1f))
		default:
			err = checkCode(c, length, skip, items)
		}
		if err != nil {
			return err
		}
	}
	if i != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadEncoding, len(b)-i)
	}
	return nil
}

func checkCode(c byte, length func(int) (uint64, error), skip, items func(uint64) error) error {
	var w int // width of the length field
	switch c {
	case 0xcc, 0xd0:
		return skip(1)
	case 0xcd, 0xd1:
		return skip(2)
	case 0xca, 0xce, 0xd2:
		return skip(4)
	case 0xcb, 0xcf, 0xd3:
		return skip(8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: type byte + 1,2,4,8,16
		return skip(1 + 1<<(c-0xd4))
	case 0xc4, 0xd9, 0xc7:
		w = 1
	case 0xc5, 0xda, 0xc8, 0xdc, 0xde:
		w = 2
	case 0xc6, 0xdb, 0xc9, 0xdd, 0xdf:
		w = 4
	default:
		return fmt.Errorf("%w: reserved code 0x%02x", ErrBadEncoding, c)
	}
	n, err := length(w)
	if err != nil {
		return err
	}
	switch c {
	case 0xdc, 0xdd:
		return items(n)
	case 0xde, 0xdf:
		return items(2 * n)
	case 0xc7, 0xc8, 0xc9:
		return skip(n + 1) // ext type byte
	default:
		return skip(n)
	}
}

// MaxDepth bounds how deeply arrays and maps may nest in bytes that
// CheckEncoding accepts.
const MaxDepth = 32
