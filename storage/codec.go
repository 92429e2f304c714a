package storage

import (
	"errors"
	"fmt"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/vclock"
)

// Entry payloads (WAL records and snapshot entries) are msgpack:
//
//	[key bin, siblings, recv int]
//
// where recv is when the key's set last changed on this node (Unix
// nanoseconds, this node's clock; see item.recv), and siblings is exactly what vclock.EncodeSiblings produces and
// vclock.DecodeSiblings accepts: an array of versions, each
// [[actor str, counter uint], context [[actor, counter]...] | nil,
// value bin | nil, tombstone bool, wall_time int]. The codec is written
// by hand rather than through reflection because recovery decodes every
// record of the WAL and every key of the snapshot: it is several times
// faster and lets the decoder intern actor strings.
//
// Collect also writes the 4-element form
//
//	[key bin, siblings, recv int, candidate]
//
// which in addition sets (or, with nil, clears) the key's pruning
// candidate (candidate.go); the 3-element form leaves it as it is.
//
// Entries written before receipt times existed are [key bin, siblings];
// the decoder still reads them, giving them the decoder's default receipt
// time (the engine's open time: never earlier than the truth, so tombstone
// GC, which waits for recv to be old enough, can only be late).

// errBadEntry is wrapped by every entry decoding failure.
var errBadEntry = errors.New("malformed entry")

// appendEntry appends the msgpack encoding of (key, s, recv) to dst.
func appendEntry(dst, key []byte, s vclock.Siblings, recv int64) []byte {
	dst = wire.AppendArrayLen(dst, 3)
	dst = wire.AppendBin(dst, key)
	dst = appendSiblings(dst, s)
	return wire.AppendInt(dst, recv)
}

// appendEntryCandidate appends the 4-element form: (key, s, recv) and the
// key's candidate c (nil clears it).
func appendEntryCandidate(dst, key []byte, s vclock.Siblings, recv int64, c *candidate) []byte {
	dst = wire.AppendArrayLen(dst, 4)
	dst = wire.AppendBin(dst, key)
	dst = appendSiblings(dst, s)
	dst = wire.AppendInt(dst, recv)
	return appendCandidate(dst, c)
}

// decodedEntry is one decoded entry payload.
type decodedEntry struct {
	key  []byte
	s    vclock.Siblings
	recv int64
	// setsCand says the entry is in the 4-element form: the key's
	// candidate becomes cand (nil: none).
	setsCand bool
	cand     *candidate
}

func appendSiblings(dst []byte, s vclock.Siblings) []byte {
	if s == nil {
		return append(dst, 0xc0)
	}
	dst = wire.AppendArrayLen(dst, len(s))
	for i := range s {
		v := &s[i]
		dst = wire.AppendArrayLen(dst, 5)
		dst = appendDot(dst, v.Dot)
		if v.Context == nil {
			dst = append(dst, 0xc0)
		} else {
			dst = wire.AppendArrayLen(dst, len(v.Context))
			for _, d := range v.Context {
				dst = appendDot(dst, d)
			}
		}
		if v.Value == nil {
			dst = append(dst, 0xc0)
		} else {
			dst = wire.AppendBin(dst, v.Value)
		}
		if v.Tombstone {
			dst = append(dst, 0xc3)
		} else {
			dst = append(dst, 0xc2)
		}
		dst = wire.AppendInt(dst, v.WallTime)
	}
	return dst
}

func appendDot(dst []byte, d vclock.Dot) []byte {
	dst = append(dst, 0x92)
	dst = wire.AppendStr(dst, d.Actor)
	return wire.AppendUint(dst, d.Counter)
}

// entryDecoder decodes entry payloads. It interns actor strings, which
// repeat across millions of records, to save memory and allocations. Not
// safe for concurrent use.
type entryDecoder struct {
	actors map[string]string
	// defaultRecv is the receipt time of entries in the old 2-element
	// form, which carry none.
	defaultRecv int64
}

// maxInterned bounds the intern table so hostile input cannot grow it.
const maxInterned = 4096

// newEntryDecoder returns a decoder that gives 2-element entries the
// receipt time defaultRecv (Unix nanoseconds).
func newEntryDecoder(defaultRecv int64) *entryDecoder {
	return &entryDecoder{actors: make(map[string]string), defaultRecv: defaultRecv}
}

// decode parses an entry payload. Nothing it returns aliases b. Hostile
// input yields an error wrapping errBadEntry, never a panic, and
// allocation is bounded by len(b).
func (d *entryDecoder) decode(b []byte) (decodedEntry, error) {
	p := mpReader{b: b}
	e := d.parse(&p)
	if p.err == nil && p.off != len(b) {
		p.fail("trailing bytes")
	}
	if p.err != nil {
		return decodedEntry{}, fmt.Errorf("%w: %v", errBadEntry, p.err)
	}
	if len(e.key) == 0 {
		return decodedEntry{}, fmt.Errorf("%w: empty key", errBadEntry)
	}
	if !e.s.Valid() {
		return decodedEntry{}, fmt.Errorf("%w: sibling set not canonical", errBadEntry)
	}
	return e, nil
}

func (d *entryDecoder) parse(p *mpReader) decodedEntry {
	fields, _ := p.arrayLen()
	if fields < 2 || fields > 4 {
		p.fail("entry is not a 2- to 4-element array")
		return decodedEntry{}
	}
	e := decodedEntry{key: p.bin(true), recv: d.defaultRecv}
	e.s = d.siblings(p)
	if fields >= 3 {
		e.recv = p.int()
	}
	if fields == 4 {
		e.setsCand = true
		e.cand = d.candidate(p)
	}
	return e
}

// siblings parses a sibling set; nil and the empty array read as nil.
func (d *entryDecoder) siblings(p *mpReader) vclock.Siblings {
	n, isNil := p.arrayLen()
	if isNil || p.err != nil || n == 0 {
		return nil
	}
	s := make(vclock.Siblings, n)
	for i := range s {
		v := &s[i]
		if m, _ := p.arrayLen(); m != 5 {
			p.fail("version is not a 5-element array")
			return nil
		}
		v.Dot = d.dot(p)
		if m, isNil := p.arrayLen(); !isNil && p.err == nil {
			v.Context = make(vclock.Clock, m)
			for j := range v.Context {
				v.Context[j] = d.dot(p)
			}
		}
		v.Value = p.bin(false)
		v.Tombstone = p.boolean()
		v.WallTime = p.int()
		if p.err != nil {
			return nil
		}
	}
	return s
}

func (d *entryDecoder) dot(p *mpReader) vclock.Dot {
	if n, _ := p.arrayLen(); n != 2 {
		p.fail("dot is not a 2-element array")
		return vclock.Dot{}
	}
	raw := p.strBytes()
	actor, ok := d.actors[string(raw)]
	if !ok {
		actor = string(raw)
		if len(d.actors) < maxInterned {
			d.actors[actor] = actor
		}
	}
	return vclock.Dot{Actor: actor, Counter: p.uint()}
}
