package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record framing, shared by WAL segments and snapshot files:
//
//	offset 0  uint32 LE  payload length n (1 <= n <= MaxRecordBytes)
//	offset 4  uint32 LE  CRC-32C of bytes 0..3 (the length)
//	offset 8  uint32 LE  CRC-32C of the payload
//	offset 12 n bytes    payload
//
// The length has its own checksum so that a damaged length is detected
// before it is trusted: otherwise a flipped bit in a length in the middle
// of the last segment could make the rest of the segment look like a torn
// tail and be cut off silently.
const (
	recordHeaderSize = 12
	// MaxRecordBytes is the largest payload a record may carry.
	MaxRecordBytes = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Reasons a record fails to decode. errShortRecord means the bytes ended
// inside the record, which at the tail of the last segment is a torn write.
var (
	errShortRecord  = errors.New("record extends past end of data")
	errBadHeader    = errors.New("record header checksum mismatch")
	errBadLength    = errors.New("record length out of range")
	errBadPayload   = errors.New("record payload checksum mismatch")
	errEmptyPayload = errors.New("record payload is empty")
)

// CorruptError reports damaged on-disk data. errors.Is(err, ErrCorrupt)
// holds for it.
type CorruptError struct {
	// File is the damaged file's path.
	File string
	// Offset is the byte offset in File where the damage was found.
	Offset int64
	// Err says what was wrong.
	Err error
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v: %s at offset %d: %v", ErrCorrupt, e.File, e.Offset, e.Err)
}

// Unwrap lets errors.Is match both ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// appendRecord appends the framed payload to dst.
func appendRecord(dst, payload []byte) []byte {
	var h [recordHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(h[0:4], crcTable))
	binary.LittleEndian.PutUint32(h[8:12], crc32.Checksum(payload, crcTable))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// DecodeRecord parses the framed record at the start of b. It returns the
// payload, which aliases b, and the record's total size. It never panics
// and never allocates; errors say whether the data ended inside the record
// (a possible torn write) or a checksum failed.
func DecodeRecord(b []byte) (payload []byte, n int, err error) {
	if len(b) < recordHeaderSize {
		return nil, 0, errShortRecord
	}
	size := binary.LittleEndian.Uint32(b[0:4])
	if crc32.Checksum(b[0:4], crcTable) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, 0, errBadHeader
	}
	if size == 0 {
		return nil, 0, errEmptyPayload
	}
	if size > MaxRecordBytes {
		return nil, 0, fmt.Errorf("%w: %d bytes", errBadLength, size)
	}
	end := recordHeaderSize + int(size)
	if len(b) < end {
		return nil, 0, errShortRecord
	}
	payload = b[recordHeaderSize:end]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[8:12]) {
		return nil, 0, errBadPayload
	}
	return payload, end, nil
}

// tornTail classifies a decode failure at offset off of the last segment,
// whose full contents are data. A failure is a torn tail, the remains of a
// write the crash interrupted, when nothing after the damaged record can be
// a record written later, that is when the file holds no non-zero byte
// past the damaged record:
//   - the data ends inside the record (header or payload cut short);
//   - the header is damaged and everything after the header is zero (the
//     filesystem extended the file but the data blocks never made it);
//   - the payload checksum fails and everything after the payload is zero
//     or the record is the file's last (partly written sectors).
//
// Anything else, such as a damaged record followed by more data, is
// corruption.
func tornTail(data []byte, off int, err error) bool {
	if errors.Is(err, errShortRecord) {
		return true
	}
	z := len(data) // start of the trailing run of zero bytes
	for z > off && data[z-1] == 0 {
		z--
	}
	if errors.Is(err, errBadPayload) {
		size := int(binary.LittleEndian.Uint32(data[off : off+4]))
		return z <= off+recordHeaderSize+size
	}
	return z <= off+recordHeaderSize
}
