package wire

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// reference encodes v with the reflection encoder, compact ints on: the
// forms the Append functions must write byte for byte.
func reference(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendMatchesReflection(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("x", n)
		if got, want := AppendStr(nil, s), reference(t, s); !bytes.Equal(got, want) {
			t.Errorf("AppendStr of %d bytes: % x..., want % x...", n, got[:min(len(got), 6)], want[:min(len(want), 6)])
		}
		if got, want := AppendBin(nil, []byte(s)), reference(t, []byte(s)); !bytes.Equal(got, want) {
			t.Errorf("AppendBin of %d bytes: % x..., want % x...", n, got[:min(len(got), 6)], want[:min(len(want), 6)])
		}
		arr := make([]any, n)
		if got, want := AppendArrayLen(nil, n), reference(t, arr); !bytes.HasPrefix(want, got) || len(want)-len(got) != n {
			t.Errorf("AppendArrayLen(%d) = % x, want the header of % x...", n, got, want[:min(len(want), 6)])
		}
	}
	for _, u := range []uint64{0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		if got, want := AppendUint(nil, u), reference(t, u); !bytes.Equal(got, want) {
			t.Errorf("AppendUint(%d) = % x, want % x", u, got, want)
		}
	}
	for _, i := range []int64{0, 1, 0x7f, 0x80, 1 << 40, -1, -32} {
		if got, want := AppendInt(nil, i), reference(t, i); !bytes.Equal(got, want) {
			t.Errorf("AppendInt(%d) = % x, want % x", i, got, want)
		}
	}
}
