package vclock

import (
	"fmt"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// Siblings and Clock implement msgpack's CustomEncoder and CustomDecoder
// with the hand codec, so that a struct encoded by msgpack reflection that
// holds one (a hint record, a replica message) writes and reads it as
// AppendSiblings and ReadSiblings do: one encoding of a set wherever it
// travels. Dot has no methods: it travels only inside a Clock or a set.
var (
	_ msgpack.CustomEncoder = Siblings(nil)
	_ msgpack.CustomDecoder = (*Siblings)(nil)
	_ msgpack.CustomEncoder = Clock(nil)
	_ msgpack.CustomDecoder = (*Clock)(nil)
)

// EncodeMsgpack writes s as AppendSiblings does. (msgpack writes a nil
// set as nil itself, without calling this.)
func (s Siblings) EncodeMsgpack(e *msgpack.Encoder) error {
	_, err := e.Writer().Write(AppendSiblings(make([]byte, 0, SizeSiblings(s)), s))
	return err
}

// DecodeMsgpack reads a set as ReadSiblingsMax(MaxSiblings) does. (msgpack
// reads a nil as a nil set itself, without calling this.)
//
// It is safe on bytes nobody checked (msgpack_read.go): the count is
// refused above MaxSiblings before anything is allocated, and each version
// is read field by field with msgpack's primitive calls, so nothing is
// skipped recursively (no nesting depth can exhaust the stack) and no
// value is copied raw first.
func (s *Siblings) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeArrayLen()
	if err != nil {
		*s = nil
		return fmt.Errorf("%w: %w: %v", ErrBadSiblings, wire.ErrBadEncoding, err)
	}
	if n == -1 { // msgpack's nil
		*s = nil
		return nil
	}
	if n < 0 || n > MaxSiblings { // < -1: a 32-bit length beyond int on a 32-bit build
		return fmt.Errorf("%w: %d versions, at most %d", ErrTooManySiblings, n, MaxSiblings)
	}
	set := make(Siblings, 0, min(n, preSize))
	for range n {
		set = append(set, Version{})
		if err := decodeVersion(d, &set[len(set)-1]); err != nil {
			return fmt.Errorf("%w: %w", ErrBadSiblings, err)
		}
	}
	*s = set
	return nil
}

// EncodeMsgpack writes c as AppendClock does.
func (c Clock) EncodeMsgpack(e *msgpack.Encoder) error {
	_, err := e.Writer().Write(AppendClock(make([]byte, 0, 5+len(c)*15), c))
	return err
}

// DecodeMsgpack reads a clock as ReadClock does, as
// Siblings.DecodeMsgpack reads a version: field by field, its dots growing
// as they are read, so a count does not size an allocation.
func (c *Clock) DecodeMsgpack(d *msgpack.Decoder) error {
	clock, err := decodeClock(d)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadContext, err)
	}
	*c = clock
	return nil
}
