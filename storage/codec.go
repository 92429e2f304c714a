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
// vclock.DecodeSiblings accepts (vclock.AppendSiblings, vclock.ReadSiblings):
// an array of versions, each [[actor str, counter uint], context
// [[actor, counter]...] | nil, value bin | nil, tombstone bool,
// wall_time int], integers in their smallest form. The entry is written
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
	dst = vclock.AppendSiblings(dst, s)
	return wire.AppendInt(dst, recv)
}

// appendEntryCandidate appends the 4-element form: (key, s, recv) and the
// key's candidate c (nil clears it).
func appendEntryCandidate(dst, key []byte, s vclock.Siblings, recv int64, c *candidate) []byte {
	dst = wire.AppendArrayLen(dst, 4)
	dst = wire.AppendBin(dst, key)
	dst = vclock.AppendSiblings(dst, s)
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
// allocation is a multiple of len(b): up to about 20 times for the set's
// versions (internal/wire.Reader's doc), never sized by a count alone.
func (d *entryDecoder) decode(b []byte) (decodedEntry, error) {
	p := wire.NewReader(b)
	e := d.parse(p)
	p.Done()
	if err := p.Err(); err != nil {
		return decodedEntry{}, fmt.Errorf("%w: %v", errBadEntry, err)
	}
	if len(e.key) == 0 {
		return decodedEntry{}, fmt.Errorf("%w: empty key", errBadEntry)
	}
	if !e.s.Valid() {
		return decodedEntry{}, fmt.Errorf("%w: sibling set not canonical", errBadEntry)
	}
	return e, nil
}

func (d *entryDecoder) parse(p *wire.Reader) decodedEntry {
	fields, _ := p.ArrayLen()
	if fields < 2 || fields > 4 {
		p.Failf("entry is not a 2- to 4-element array")
		return decodedEntry{}
	}
	e := decodedEntry{key: p.Bin(), recv: d.defaultRecv}
	if e.key == nil {
		p.Failf("entry key is nil")
	}
	e.s = vclock.ReadSiblings(p, d.intern)
	if len(e.s) == 0 {
		e.s = nil
	}
	if fields >= 3 {
		e.recv = p.Int()
	}
	if fields == 4 {
		e.setsCand = true
		e.cand = d.candidate(p)
	}
	return e
}

// intern returns raw as a string, shared with earlier equal actors.
func (d *entryDecoder) intern(raw []byte) string {
	actor, ok := d.actors[string(raw)]
	if !ok {
		actor = string(raw)
		if len(d.actors) < maxInterned {
			d.actors[actor] = actor
		}
	}
	return actor
}
