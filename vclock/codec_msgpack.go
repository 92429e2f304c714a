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
// Bounds: the count is refused above MaxSiblings before anything is
// allocated. Each version is then read by the hand codec from the raw
// bytes msgpack gives for it: DecodeRaw is msgpack's own Skip, recording
// what it reads, so it allocates only bytes that are present (a length
// beyond the input fails the read, and msgpack grows its buffers in
// bounded steps). Every decoder of outside bytes in ringkv also runs
// wire.CheckEncoding over the whole frame or record first, so every length
// is within the bytes present and nesting is at most wire.MaxDepth: a
// version's raw bytes are a copy of part of an input already in memory.
func (s *Siblings) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeArrayLen()
	if err != nil || n < 0 {
		*s = nil
		return err
	}
	if n > MaxSiblings {
		return fmt.Errorf("%w: %d versions, at most %d", ErrTooManySiblings, n, MaxSiblings)
	}
	set := make(Siblings, 0, min(n, preSize))
	var r wire.Reader
	for range n {
		raw, err := d.DecodeRaw()
		if err != nil {
			return err
		}
		r.Reset(raw)
		set = append(set, Version{})
		readVersion(&r, nil, &set[len(set)-1])
		if r.Done(); r.Err() != nil {
			return fmt.Errorf("%w: %w", ErrBadSiblings, r.Err())
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

// DecodeMsgpack reads a clock as ReadClock does, from the raw bytes of
// the next value (bounded as Siblings.DecodeMsgpack says); its dots grow
// as they are read, so a count does not size an allocation.
func (c *Clock) DecodeMsgpack(d *msgpack.Decoder) error {
	raw, err := d.DecodeRaw()
	if err != nil {
		return err
	}
	r := wire.NewReader(raw)
	clock := ReadClock(r, nil)
	if r.Done(); r.Err() != nil {
		return fmt.Errorf("%w: %w", ErrBadContext, r.Err())
	}
	*c = clock
	return nil
}
