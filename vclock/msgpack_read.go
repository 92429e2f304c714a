package vclock

import (
	"fmt"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// The readers behind Siblings' and Clock's msgpack methods. Each reads one
// value with msgpack's primitive calls and accepts exactly what the hand
// codec's wire.Reader accepts (msgpack's own calls are looser: nil as
// false or 0, a negative fixint as a huge counter), checking the type code
// first where they differ. None recurses, and none allocates more than
// the bytes present plus one bounded step, so they are safe on bytes
// wire.CheckEncoding never saw. Errors wrap wire.ErrBadEncoding; msgpack's
// own (an io error on truncated input) are kept as text only, so a
// truncated set is never mistaken for the end of a stream.

// readStep bounds what a str or bin length read from the input can make
// readBytes allocate ahead of the bytes actually read.
const readStep = 64 << 10

// bad wraps a read failure in wire.ErrBadEncoding.
func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", wire.ErrBadEncoding, fmt.Sprintf(format, args...))
}

// decodeVersion reads one [dot, context, value, tombstone, wall_time].
func decodeVersion(d *msgpack.Decoder, v *Version) error {
	if n, err := d.DecodeArrayLen(); err != nil || n != 5 {
		return bad("version is not a 5-element array (%d, %v)", n, err)
	}
	var err error
	if v.Dot, err = decodeDot(d); err != nil {
		return err
	}
	if v.Context, err = decodeClock(d); err != nil {
		return err
	}
	if v.Value, err = readBytes(d); err != nil {
		return err
	}
	if v.Tombstone, err = decodeBool(d); err != nil {
		return err
	}
	v.WallTime, err = decodeInt(d)
	return err
}

// decodeClock reads an array of dots; nil reads as nil. The dots grow as
// they are read (each takes at least three bytes of input), so a count
// does not size an allocation.
func decodeClock(d *msgpack.Decoder) (Clock, error) {
	n, err := d.DecodeArrayLen()
	if err != nil {
		return nil, bad("clock: %v", err)
	}
	if n == -1 { // msgpack's nil
		return nil, nil
	}
	if n < 0 { // a 32-bit length beyond int on a 32-bit build
		return nil, bad("clock of %d entries", n)
	}
	c := make(Clock, 0, min(n, preSize))
	for range n {
		dot, err := decodeDot(d)
		if err != nil {
			return nil, err
		}
		c = append(c, dot)
	}
	return c, nil
}

// decodeDot reads [actor, counter].
func decodeDot(d *msgpack.Decoder) (Dot, error) {
	if n, err := d.DecodeArrayLen(); err != nil || n != 2 {
		return Dot{}, bad("dot is not a 2-element array (%d, %v)", n, err)
	}
	actor, err := readBytes(d)
	if err != nil {
		return Dot{}, err
	}
	counter, err := decodeUint(d)
	return Dot{Actor: string(actor), Counter: counter}, err
}

// readBytes reads a str or bin value into a new slice: nil for msgpack
// nil, an empty non-nil slice for zero bytes (as wire.Reader.Bin). The
// slice grows by at most readStep ahead of what was read, where msgpack's
// DecodeBytes would allocate whatever length the header claims.
func readBytes(d *msgpack.Decoder) ([]byte, error) {
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, bad("not a string: %v", err)
	}
	if n == -1 { // msgpack's nil
		return nil, nil
	}
	if n < 0 { // a 32-bit length beyond int on a 32-bit build
		return nil, bad("string of %d bytes", n)
	}
	b := make([]byte, 0, min(n, readStep))
	for len(b) < n {
		k := min(n-len(b), readStep)
		if cap(b)-len(b) < k {
			b = append(b[:cap(b)], make([]byte, k)...)[:len(b)]
		}
		if err := d.ReadFull(b[len(b) : len(b)+k]); err != nil {
			return nil, bad("string of %d bytes: %v", n, err)
		}
		b = b[:len(b)+k]
	}
	return b, nil
}

// decodeBool reads a bool; msgpack's DecodeBool would also take nil.
func decodeBool(d *msgpack.Decoder) (bool, error) {
	c, err := d.PeekCode()
	if err != nil || (c != 0xc2 && c != 0xc3) {
		return false, bad("code 0x%02x is not a bool (%v)", c, err)
	}
	v, err := d.DecodeBool()
	if err != nil {
		return false, bad("bool: %v", err)
	}
	return v, nil
}

// decodeInt reads an integer of any width that fits in an int64; msgpack's
// DecodeInt64 would also take nil and wrap a uint64 past the int64 range.
func decodeInt(d *msgpack.Decoder) (int64, error) {
	c, err := d.PeekCode()
	if err != nil || !isInt(c) {
		return 0, bad("code 0x%02x is not an integer (%v)", c, err)
	}
	if c == 0xcf {
		v, err := d.DecodeUint64()
		if err != nil || v > 1<<63-1 {
			return 0, bad("integer %d overflows int64 (%v)", v, err)
		}
		return int64(v), nil
	}
	v, err := d.DecodeInt64()
	if err != nil {
		return 0, bad("integer: %v", err)
	}
	return v, nil
}

// decodeUint reads an integer of any width that is not negative; msgpack's
// DecodeUint64 would also take nil and wrap a negative one.
func decodeUint(d *msgpack.Decoder) (uint64, error) {
	c, err := d.PeekCode()
	if err != nil || !isInt(c) {
		return 0, bad("code 0x%02x is not an integer (%v)", c, err)
	}
	if c <= 0x7f || (c >= 0xcc && c <= 0xcf) {
		v, err := d.DecodeUint64()
		if err != nil {
			return 0, bad("integer: %v", err)
		}
		return v, nil
	}
	v, err := d.DecodeInt64()
	if err != nil || v < 0 {
		return 0, bad("negative integer %d where unsigned expected (%v)", v, err)
	}
	return uint64(v), nil
}

// isInt reports whether c starts a msgpack integer: a positive or negative
// fixint, or uint8-64 or int8-64.
func isInt(c byte) bool {
	return c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3)
}
