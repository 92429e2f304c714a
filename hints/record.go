package hints

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ringkv/ringkv/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// recordVersion is the first byte of every hint record payload. A record
// with another version is refused with ErrBadRecord.
const recordVersion byte = 1

// record is the payload of one hint log record: a key's merged pending set
// for the log's target, and when the key's first pending hint was stored
// (for delivery lag across restarts).
type record struct {
	_msgpack struct{} `msgpack:",as_array"`
	Key      []byte
	Siblings vclock.Siblings
	// Since is the Unix nanosecond time the key's oldest undelivered hint
	// was stored.
	Since int64
}

// encodeRecord returns the payload for key's pending set.
func encodeRecord(key []byte, s vclock.Siblings, since int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(recordVersion)
	if err := msgpack.NewEncoder(&buf).Encode(&record{Key: key, Siblings: s, Since: since}); err != nil {
		return nil, fmt.Errorf("hints: encode record: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeRecord parses a payload made by encodeRecord. Bytes from disk are
// checked before msgpack sees them, so a damaged record yields
// ErrBadRecord, never a panic or a huge allocation. The result does not
// alias b.
func decodeRecord(b []byte) (record, error) {
	if len(b) == 0 {
		return record{}, fmt.Errorf("%w: empty", ErrBadRecord)
	}
	if b[0] != recordVersion {
		return record{}, fmt.Errorf("%w: version %d, want %d", ErrBadRecord, b[0], recordVersion)
	}
	if err := vclock.CheckEncoding(b[1:]); err != nil {
		return record{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	var r record
	rd := bytes.NewReader(b[1:])
	if err := msgpack.NewDecoder(rd).Decode(&r); err != nil {
		return record{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if rd.Len() != 0 {
		return record{}, fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, rd.Len())
	}
	if len(r.Key) == 0 {
		return record{}, fmt.Errorf("%w: empty key", ErrBadRecord)
	}
	if len(r.Siblings) == 0 || !r.Siblings.Valid() {
		return record{}, fmt.Errorf("%w: %w", ErrBadRecord, vclock.ErrBadSiblings)
	}
	return r, nil
}

// dirName maps a target node name to a directory name: letters, digits,
// '-' and '_' stay, every other byte becomes %XX. The result is never "."
// or "..", never contains a separator, and maps back with targetName.
func dirName(target string) string {
	var b strings.Builder
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// targetName reverses dirName; ok is false for a name dirName cannot make.
func targetName(dir string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(dir); i++ {
		c := dir[i]
		if c != '%' {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(dir) {
			return "", false
		}
		var v byte
		if _, err := fmt.Sscanf(dir[i+1:i+3], "%02X", &v); err != nil {
			return "", false
		}
		b.WriteByte(v)
		i += 2
	}
	if b.Len() == 0 || dirName(b.String()) != dir {
		return "", false
	}
	return b.String(), true
}
