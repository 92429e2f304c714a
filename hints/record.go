package hints

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// Record versions: the first byte of every hint record payload. A record
// with another version is refused with ErrBadRecord.
const (
	// recordVersion marks a hint record: a key's merged pending set.
	recordVersion byte = 1
	// forgetVersion marks a forget record: the key left the index
	// (acknowledged, or dropped as too large or expired), so replay removes
	// it. Logs written before forget records existed hold only version 1.
	forgetVersion byte = 2
)

// record is the payload of one hint log record. A hint record (Forget
// false) holds a key's merged pending set for the log's target and when
// the key's first pending hint was stored (for delivery lag and expiry
// across restarts). A forget record (Forget true) says the key's pending
// entry was removed; Siblings is nil and Since is the removed entry's.
type record struct {
	_msgpack struct{} `msgpack:",as_array"`
	Key      []byte
	Siblings vclock.Siblings
	// Since is the Unix nanosecond time the key's oldest undelivered hint
	// was stored.
	Since int64
	// Forget is true for a forget record (version 2); it is carried by the
	// version byte, not the array.
	Forget bool `msgpack:"-"`
}

// forgetRecord is the msgpack array of a forget record.
type forgetRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	Key      []byte
	Since    int64
}

// encodeRecord returns the payload of a hint record for key's pending set.
func encodeRecord(key []byte, s vclock.Siblings, since int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(recordVersion)
	if err := msgpack.NewEncoder(&buf).Encode(&record{Key: key, Siblings: s, Since: since}); err != nil {
		return nil, fmt.Errorf("hints: encode record: %w", err)
	}
	return buf.Bytes(), nil
}

// encodeForget returns the payload of a forget record for key, whose
// removed entry's oldest hint was stored at since.
func encodeForget(key []byte, since int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(forgetVersion)
	if err := msgpack.NewEncoder(&buf).Encode(&forgetRecord{Key: key, Since: since}); err != nil {
		return nil, fmt.Errorf("hints: encode forget record: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeRecord parses a payload made by encodeRecord or encodeForget.
// Bytes from disk are checked before msgpack sees them, so a damaged
// record yields ErrBadRecord, never a panic or a huge allocation. The
// result does not alias b.
func decodeRecord(b []byte) (record, error) {
	if len(b) == 0 {
		return record{}, fmt.Errorf("%w: empty", ErrBadRecord)
	}
	if b[0] != recordVersion && b[0] != forgetVersion {
		return record{}, fmt.Errorf("%w: version %d, want %d or %d", ErrBadRecord, b[0], recordVersion, forgetVersion)
	}
	if err := wire.CheckEncoding(b[1:]); err != nil {
		return record{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	var r record
	rd := bytes.NewReader(b[1:])
	dec := msgpack.NewDecoder(rd)
	if b[0] == forgetVersion {
		f, err := decodeForget(dec)
		if err != nil {
			return record{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
		}
		r = f
	} else if err := dec.Decode(&r); err != nil {
		// %w: Open tells vclock.ErrTooManySiblings from other damage.
		return record{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if rd.Len() != 0 {
		return record{}, fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, rd.Len())
	}
	if len(r.Key) == 0 {
		return record{}, fmt.Errorf("%w: empty key", ErrBadRecord)
	}
	if !r.Forget && (len(r.Siblings) == 0 || !r.Siblings.Valid()) {
		return record{}, fmt.Errorf("%w: %w", ErrBadRecord, vclock.ErrBadSiblings)
	}
	return r, nil
}

// decodeForget reads a forget record's array, which must have exactly its
// two elements: a forget record never had another form, so anything else is
// damage.
func decodeForget(dec *msgpack.Decoder) (record, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return record{}, err
	}
	if n != 2 {
		return record{}, fmt.Errorf("forget record of %d elements, want 2", n)
	}
	key, err := dec.DecodeBytes()
	if err != nil {
		return record{}, err
	}
	since, err := dec.DecodeInt64()
	if err != nil {
		return record{}, err
	}
	return record{Key: key, Since: since, Forget: true}, nil
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
