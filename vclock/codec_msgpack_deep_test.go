package vclock

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestMsgpackMethodsDeepNesting: the msgpack methods are safe without
// wire.CheckEncoding in front. Arrays nested 12M deep where a version, a
// context, a clock or a dot belongs are refused with an error; a decoder
// that skipped the value recursively would exhaust the goroutine stack,
// which kills the test binary (still a failure, not a hang).
func TestMsgpackMethodsDeepNesting(t *testing.T) {
	const depth = 12 << 20
	dot := []byte{0x92, 0xa1, 'a', 0x01}
	for name, prefix := range map[string][]byte{
		"version":      {0x92, 0x91},
		"context":      append([]byte{0x92, 0x91, 0x95}, dot...),
		"clock":        {0x92, 0xc0},
		"dot in clock": {0x92, 0xc0, 0x91},
	} {
		t.Run(name, func(t *testing.T) {
			b := append(bytes.Clone(prefix), bytes.Repeat([]byte{0x91}, depth)...)
			b = append(b, 0xc0)
			var h holder
			err := msgpack.Unmarshal(b, &h)
			if err == nil {
				t.Fatalf("decoded %d-deep nesting, want an error", depth)
			}
			if !errors.Is(err, ErrBadSiblings) && !errors.Is(err, ErrBadContext) {
				t.Fatalf("err = %v, want ErrBadSiblings or ErrBadContext", err)
			}
		})
	}
}
