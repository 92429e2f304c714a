package vclock

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/ringkv/ringkv/internal/wire"
)

// ErrBadContext is returned when a causal context cannot be decoded.
var ErrBadContext = errors.New("vclock: malformed causal context")

// ErrBadSiblings is returned when an encoded sibling set is malformed.
var ErrBadSiblings = errors.New("vclock: malformed sibling set")

// MaxContextBytes bounds an encoded context a client may send; a context
// this large means a client is forging or hoarding actors.
const MaxContextBytes = 64 << 10

// EncodeContext returns the opaque msgpack encoding of a clock (AppendClock;
// nil for the empty clock).
func EncodeContext(c Clock) []byte {
	if len(c) == 0 {
		return nil
	}
	return AppendClock(make([]byte, 0, 16*len(c)), c)
}

// DecodeContext parses bytes made by EncodeContext. Empty input is the empty
// context. Hostile input yields ErrBadContext, never a panic.
func DecodeContext(b []byte) (Clock, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxContextBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadContext, len(b), MaxContextBytes)
	}
	r := wire.NewReader(b)
	c := ReadClock(r, nil)
	r.Done()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadContext, err)
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	if len(c) == 0 {
		return nil, nil
	}
	return c, nil
}

// EncodeContextString returns the context as unpadded base64url, the form
// used in the X-Ringkv-Context HTTP header.
func EncodeContextString(c Clock) string {
	return base64.RawURLEncoding.EncodeToString(EncodeContext(c))
}

// DecodeContextString parses a string made by EncodeContextString.
func DecodeContextString(s string) (Clock, error) {
	if len(s) > base64.RawURLEncoding.EncodedLen(MaxContextBytes) {
		return nil, fmt.Errorf("%w: %d characters is too long", ErrBadContext, len(s))
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadContext, err)
	}
	return DecodeContext(b)
}

// EncodeSiblings returns the msgpack encoding of a sibling set
// (AppendSiblings), the form that travels between nodes and into the WAL.
// It never fails; the error is kept for callers written when it could.
func EncodeSiblings(s Siblings) ([]byte, error) {
	return AppendSiblings(make([]byte, 0, SizeSiblings(s)), s), nil
}

// DecodeSiblings parses bytes made by EncodeSiblings and checks that the set
// is canonical. Hostile input yields ErrBadSiblings, never a panic.
func DecodeSiblings(b []byte) (Siblings, error) {
	r := wire.NewReader(b)
	s := ReadSiblings(r, nil)
	r.Done()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSiblings, err)
	}
	if !s.Valid() {
		return nil, fmt.Errorf("%w: versions not canonical", ErrBadSiblings)
	}
	if len(s) == 0 {
		return nil, nil
	}
	return s, nil
}
