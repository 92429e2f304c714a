package vclock

import (
	"errors"
	"testing"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// TestMsgpackMethodsErrorsWrap: a malformed set or clock's error wraps
// wire.ErrBadEncoding as the hand codec's does, so callers can tell bad
// bytes from other failures.
func TestMsgpackMethodsErrorsWrap(t *testing.T) {
	for name, b := range map[string][]byte{
		"set":   {0x92, 0x91, 0x01, 0xc0},
		"clock": {0x92, 0xc0, 0x91, 0x93, 0xa1, 'a', 0x01, 0x01},
	} {
		var h holder
		if err := msgpack.Unmarshal(b, &h); !errors.Is(err, wire.ErrBadEncoding) {
			t.Errorf("%s: err = %v, want it to wrap wire.ErrBadEncoding", name, err)
		}
	}
}
