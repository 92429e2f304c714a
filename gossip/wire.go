package gossip

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/memberlist"
	"github.com/ringkv/ringkv/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// Meta is the metadata a node advertises through memberlist: where its other
// listeners are and which protocol it speaks. Encoded with msgpack as a
// map with one-letter keys (so fields can be added compatibly), it stays
// far below memberlist's 512-byte limit for any sane addresses
// (Config.Validate checks the actual size).
type Meta struct {
	// RPC is the internal RPC address (host:port).
	RPC string `json:"rpc" msgpack:"r"`
	// HTTP is the client HTTP address (host:port).
	HTTP string `json:"http" msgpack:"h"`
	// RESP is the Redis-protocol address (host:port).
	RESP string `json:"resp" msgpack:"s"`
	// Proto is the node's protocol version.
	Proto int `json:"proto" msgpack:"p"`
}

// EncodeMeta returns the msgpack encoding of m, or ErrBadMeta if it exceeds
// memberlist.MetaMaxSize.
func EncodeMeta(m Meta) ([]byte, error) {
	b, err := msgpack.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMeta, err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes, memberlist allows %d", ErrBadMeta, len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta parses bytes made by EncodeMeta. Hostile input yields
// ErrBadMeta, never a panic or a large allocation.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) > memberlist.MetaMaxSize {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrBadMeta, len(b), memberlist.MetaMaxSize)
	}
	if err := decodeOne(b, &m); err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrBadMeta, err)
	}
	return m, nil
}

// stateFormat is the version of the membership-state encoding. A decoder
// refuses versions it does not know rather than guessing.
const stateFormat = 1

// row is one map entry on the wire.
type row struct {
	_msgpack struct{} `msgpack:",as_array"`
	Name     string
	Status   Status
	Version  uint64
	Addr     string
}

// wireState is the encoding of a Map (whole, in push-pull, or a delta, in a
// broadcast): [format, [[name, status, version, addr], ...]] with rows sorted
// by name so equal maps encode to equal bytes.
type wireState struct {
	_msgpack struct{} `msgpack:",as_array"`
	Format   int
	Rows     []row
}

// maxStateBytes bounds an encoded map we accept: 10k nodes at ~200 bytes a
// row. Push-pull state is read whole by memberlist, so this is a sanity cap,
// not a memory defence.
const maxStateBytes = 2 << 20

// EncodeState returns the wire encoding of m.
func EncodeState(m Map) []byte {
	ws := wireState{Format: stateFormat, Rows: make([]row, 0, len(m))}
	for _, name := range m.Names() {
		e := m[name]
		ws.Rows = append(ws.Rows, row{Name: name, Status: e.Status, Version: e.Version, Addr: e.Addr})
	}
	b, err := msgpack.Marshal(&ws)
	if err != nil {
		// Plain structs of strings and integers always encode.
		panic(fmt.Sprintf("gossip: encode state: %v", err))
	}
	return b
}

// DecodeState parses bytes made by EncodeState and validates every row.
// Hostile input yields ErrBadState, never a panic.
func DecodeState(b []byte) (Map, error) {
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadState, len(b), maxStateBytes)
	}
	var ws wireState
	if err := decodeOne(b, &ws); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if ws.Format != stateFormat {
		return nil, fmt.Errorf("%w: format %d, this build reads %d", ErrBadState, ws.Format, stateFormat)
	}
	m := make(Map, len(ws.Rows))
	for _, r := range ws.Rows {
		if _, dup := m[r.Name]; dup {
			return nil, fmt.Errorf("%w: node %q appears twice", ErrBadState, r.Name)
		}
		m[r.Name] = Entry{Status: r.Status, Version: r.Version, Addr: r.Addr}
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	return m, nil
}

// decodeOne decodes exactly one msgpack value from b into v, after checking
// that every declared length fits in b (so a forged length cannot make the
// decoder allocate gigabytes).
func decodeOne(b []byte, v any) error {
	if len(b) == 0 {
		return fmt.Errorf("empty input")
	}
	if err := vclock.CheckEncoding(b); err != nil {
		return err
	}
	r := bytes.NewReader(b)
	if err := msgpack.NewDecoder(r).Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d trailing bytes", r.Len())
	}
	return nil
}

// Message types of our user messages (NotifyMsg). The first byte names the
// type so later versions can add messages that older nodes skip.
const (
	// msgRows carries an encoded Map delta.
	msgRows byte = 1
	// msgBye carries the sender's name: it is shutting down cleanly, so its
	// coming NotifyLeave is a departure, not a failure.
	msgBye byte = 2
)

// encodeRowsMsg frames a Map delta as a user message.
func encodeRowsMsg(delta Map) []byte {
	return append([]byte{msgRows}, EncodeState(delta)...)
}
