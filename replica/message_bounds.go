package replica

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Bounds of the anti-entropy calls (KindTree, KindKeys, KindFetch). They
// are protocol: a message beyond them is refused before its lists are
// allocated.
const (
	// MaxTreeNodes bounds the nodes one KindTree call names (every node of
	// the widest level), and the leaves one KindKeys call names.
	MaxTreeNodes = TreeLeaves
	// MaxFetchKeys bounds the keys one KindFetch call names.
	MaxFetchKeys = 1024
	// MaxDigests bounds the keys one KindKeys answer carries (and the
	// Limit it may ask for).
	MaxDigests = 4096
)

// MaxStatsBytes bounds the Stats of a KindNodeStats answer: a node's
// statistics are a few hundred bytes, plus its plan's member names.
const MaxStatsBytes = 1 << 20

// errTooMany is a list field beyond its protocol bound; UnmarshalRequest
// reports it as ErrBadRequest, UnmarshalReply as ErrProtocol.
var errTooMany = errors.New("list too long")

// countLimit bounds the element count of one list field of a message.
type countLimit struct {
	field string
	max   int
}

var (
	requestLimits = []countLimit{{"nodes", MaxTreeNodes}, {"keys", MaxFetchKeys}}
	replyLimits   = []countLimit{{"hashes", MaxTreeNodes}, {"digests", MaxDigests}, {"stats", MaxStatsBytes}}
)

// checkRequestCounts refuses a request body (msgpack, after the version
// byte) whose list fields hold more elements than the protocol allows,
// before the decoder allocates them. wire.CheckEncoding has already
// bounded every length by the bytes present; this bounds the counts the
// calls allow, which are far smaller than a frame could claim.
func checkRequestCounts(b []byte) error {
	if err := needMap(b); err != nil {
		return err
	}
	if !mentions(b, requestLimits) {
		return nil
	}
	return checkCounts(msgpack.NewDecoder(bytes.NewReader(b)), requestLimits)
}

// checkReplyCounts is checkRequestCounts for a reply body: a wireReply
// map whose "r" entry is the Response.
func checkReplyCounts(b []byte) error {
	if err := needMap(b); err != nil {
		return err
	}
	// The common reply, {"r": {...}} with no limited field in it, is
	// recognised from its first bytes: no decoder per call.
	if len(b) > 3 && b[0] == 0x81 && b[1] == 0xa1 && b[2] == 'r' && (b[3] == msgpcode.Nil || isMap(b[3])) && !mentions(b, replyLimits) {
		return nil
	}
	d := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	// Every "r" entry is checked (the decoder keeps the last of repeated
	// keys), skipping values only to reach a later key: a reply as
	// MarshalReply writes it has "r" alone, or an empty "r" before "e".
	for i := range max(n, 0) {
		name, err := d.DecodeString()
		if err != nil {
			return err
		}
		last := i == n-1
		if name != "r" {
			if last {
				return nil
			}
			if err := d.Skip(); err != nil {
				return err
			}
			continue
		}
		c, err := d.PeekCode()
		if err != nil {
			return err
		}
		if c != msgpcode.Nil && !isMap(c) {
			return fmt.Errorf("response is not a map (code %#x)", c)
		}
		switch {
		case mentions(b, replyLimits):
			if err := checkCounts(d, replyLimits); err != nil {
				return err
			}
		case last:
			return nil
		default:
			if err := d.Skip(); err != nil {
				return err
			}
		}
	}
	return nil
}

// needMap refuses a body that is not a msgpack map (or nil). The decoder
// would also fill a struct from an array, by field position; refusing
// that keeps field names, which the count check looks for, on the wire.
// Our encoders always write maps.
func needMap(b []byte) error {
	if len(b) == 0 || (b[0] != msgpcode.Nil && !isMap(b[0])) {
		return fmt.Errorf("message is not a map")
	}
	return nil
}

func isMap(c byte) bool { return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 }

// mentions reports whether b may hold one of the fields: their names
// appear in its bytes. Most messages carry none of them and skip the walk.
func mentions(b []byte, limits []countLimit) bool {
	for _, l := range limits {
		if bytes.Contains(b, []byte(l.field)) {
			return true
		}
	}
	return false
}

// checkCounts walks one map from d, checking the array length of each
// limited field and skipping everything else without decoding it.
func checkCounts(d *msgpack.Decoder, limits []countLimit) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	for range max(n, 0) {
		name, err := d.DecodeString()
		if err != nil {
			return err
		}
		limit := -1
		for _, l := range limits {
			if l.field == name {
				limit = l.max
			}
		}
		if limit < 0 {
			if err := d.Skip(); err != nil {
				return err
			}
			continue
		}
		c, err := d.PeekCode()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if isBin(c) {
			if err := checkBinLen(d, name, limit); err != nil {
				return err
			}
			continue
		}
		m, err := d.DecodeArrayLen()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if m > limit {
			return fmt.Errorf("%w: %s holds %d elements, at most %d", errTooMany, name, m, limit)
		}
		for range max(m, 0) {
			if err := d.Skip(); err != nil {
				return err
			}
		}
	}
	return nil
}

func isBin(c byte) bool { return c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32 }

// checkBinLen reads a byte string's length from d, refuses it beyond
// limit, and skips its bytes without copying them.
func checkBinLen(d *msgpack.Decoder, name string, limit int) error {
	m, err := d.DecodeBytesLen()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if m > limit {
		return fmt.Errorf("%w: %s holds %d bytes, at most %d", errTooMany, name, m, limit)
	}
	// CheckEncoding has already bounded m by the bytes present.
	if _, err := io.CopyN(io.Discard, d.Buffered(), int64(max(m, 0))); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
