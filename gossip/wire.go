package gossip

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/memberlist"
	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/ring"
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

// Versions of the membership-state encoding. A decoder refuses versions
// it does not know rather than guessing.
const (
	// stateFormat is what push-pull state is sent in: [2, rows, plan].
	stateFormat = 2
	// rowsFormat is what row deltas (msgRows) are sent in: [1, rows], the
	// format before plans, so that nodes of an older build, which refuse
	// format 2, still read them during a rolling upgrade.
	rowsFormat = 1
)

// row is one map entry on the wire.
type row struct {
	_msgpack struct{} `msgpack:",as_array"`
	Name     string
	Status   Status
	Version  uint64
	Addr     string
}

// wirePlan is a ring.Plan on the wire: [epoch, version, members, target],
// target nil when the plan is stable.
type wirePlan struct {
	_msgpack struct{} `msgpack:",as_array"`
	Epoch    uint64
	Version  uint64
	Members  []string
	Target   []string
}

// wireState is the push-pull encoding of a Map and the plan:
// [format=2, [[name, status, version, addr], ...], plan or nil] with rows
// sorted by name so equal states encode to equal bytes.
type wireState struct {
	_msgpack struct{} `msgpack:",as_array"`
	Format   int
	Rows     []row
	Plan     *wirePlan
}

// wireStateV1 is format 1, [1, rows]: a row delta (msgRows), or the
// push-pull state of a node from before plans.
type wireStateV1 struct {
	_msgpack struct{} `msgpack:",as_array"`
	Format   int
	Rows     []row
}

// maxStateBytes bounds an encoded map we accept: 10k nodes at ~200 bytes a
// row. Push-pull state is read whole by memberlist, so this is a sanity cap,
// not a memory defence.
const maxStateBytes = 2 << 20

// maxPlanBytes bounds an encoded plan: two lists of ring.MaxPlanMembers
// names of maxNameLen bytes take about 266 kB.
const maxPlanBytes = 512 << 10

// wireRows returns m's rows sorted by name.
func wireRows(m Map) []row {
	rows := make([]row, 0, len(m))
	for _, name := range m.Names() {
		e := m[name]
		rows = append(rows, row{Name: name, Status: e.Status, Version: e.Version, Addr: e.Addr})
	}
	return rows
}

// mustMarshal encodes v, one of our wire structs of strings and integers,
// which always encode.
func mustMarshal(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("gossip: encode %T: %v", v, err))
	}
	return b
}

// EncodeState returns the push-pull encoding of m and p (format 2); an
// unknown plan (epoch 0) is sent as nil.
func EncodeState(m Map, p ring.Plan) []byte {
	ws := wireState{Format: stateFormat, Rows: wireRows(m)}
	if p.Known() {
		ws.Plan = &wirePlan{Epoch: p.Epoch, Version: p.Version, Members: p.Members, Target: p.Target}
	}
	return mustMarshal(&ws)
}

// encodeRows returns the format-1 encoding of m, without a plan.
func encodeRows(m Map) []byte {
	return mustMarshal(&wireStateV1{Format: rowsFormat, Rows: wireRows(m)})
}

// DecodeState parses bytes made by EncodeState, or the format-1 encoding
// of a row delta or of an older node's state (no plan: the zero Plan).
// Every row is validated, and the plan with checkPlan; one bad row or a bad
// plan refuses the whole state. Hostile input yields ErrBadState, never a
// panic.
func DecodeState(b []byte) (Map, ring.Plan, error) {
	if len(b) > maxStateBytes {
		return nil, ring.Plan{}, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadState, len(b), maxStateBytes)
	}
	// Split the array first: format 1 has two fields and format 2 three,
	// and the decoder wants the field count of an as_array struct exact.
	// A field that is msgpack nil comes out as an empty RawMessage.
	var parts []msgpack.RawMessage
	if err := decodeOne(b, &parts); err != nil {
		return nil, ring.Plan{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	var format int
	if len(parts) > 0 && len(parts[0]) > 0 {
		if err := msgpack.Unmarshal(parts[0], &format); err != nil {
			return nil, ring.Plan{}, fmt.Errorf("%w: format: %w", ErrBadState, err)
		}
	}
	switch {
	case format == rowsFormat && len(parts) == 2, format == stateFormat && len(parts) == 3:
	default:
		return nil, ring.Plan{}, fmt.Errorf("%w: format %d with %d fields, this build reads format 1 (2 fields) and 2 (3 fields)",
			ErrBadState, format, len(parts))
	}
	var rows []row
	if len(parts[1]) > 0 {
		if err := msgpack.Unmarshal(parts[1], &rows); err != nil {
			return nil, ring.Plan{}, fmt.Errorf("%w: rows: %w", ErrBadState, err)
		}
	}
	m := make(Map, len(rows))
	for _, r := range rows {
		if _, dup := m[r.Name]; dup {
			return nil, ring.Plan{}, fmt.Errorf("%w: node %q appears twice", ErrBadState, r.Name)
		}
		m[r.Name] = Entry{Status: r.Status, Version: r.Version, Addr: r.Addr}
	}
	if err := m.Validate(); err != nil {
		return nil, ring.Plan{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	var p ring.Plan
	if format == stateFormat && len(parts[2]) > 0 {
		var wp *wirePlan
		if err := msgpack.Unmarshal(parts[2], &wp); err != nil {
			return nil, ring.Plan{}, fmt.Errorf("%w: plan: %w", ErrBadState, err)
		}
		if wp != nil {
			var err error
			if p, err = wp.plan(); err != nil {
				return nil, ring.Plan{}, err
			}
		}
	}
	return m, p, nil
}

// plan converts and checks a plan that came in from outside: it must be
// known (a sender with no plan sends none) and pass checkPlan.
func (wp *wirePlan) plan() (ring.Plan, error) {
	p := ring.Plan{Epoch: wp.Epoch, Version: wp.Version, Members: wp.Members, Target: wp.Target}
	if !p.Known() {
		return ring.Plan{}, fmt.Errorf("%w: %w: a sent plan must have an epoch", ErrBadState, ring.ErrBadPlan)
	}
	if err := checkPlan(p); err != nil {
		return ring.Plan{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	return p, nil
}

// encodePlanMsg frames a known plan as a user message.
func encodePlanMsg(p ring.Plan) []byte {
	return append([]byte{msgPlan}, mustMarshal(&wirePlan{Epoch: p.Epoch, Version: p.Version, Members: p.Members, Target: p.Target})...)
}

// decodePlan parses the body of a msgPlan message and checks the plan
// (checkPlan). Hostile input yields ErrBadState, never a panic.
func decodePlan(b []byte) (ring.Plan, error) {
	if len(b) > maxPlanBytes {
		return ring.Plan{}, fmt.Errorf("%w: plan of %d bytes exceeds %d", ErrBadState, len(b), maxPlanBytes)
	}
	var wp *wirePlan
	if err := decodeOne(b, &wp); err != nil {
		return ring.Plan{}, fmt.Errorf("%w: plan: %w", ErrBadState, err)
	}
	if wp == nil {
		return ring.Plan{}, fmt.Errorf("%w: %w: empty plan message", ErrBadState, ring.ErrBadPlan)
	}
	return wp.plan()
}

// decodeOne decodes exactly one msgpack value from b into v, after checking
// that every declared length fits in b (so a forged length cannot make the
// decoder allocate gigabytes).
func decodeOne(b []byte, v any) error {
	if len(b) == 0 {
		return fmt.Errorf("empty input")
	}
	if err := wire.CheckEncoding(b); err != nil {
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
	// msgPlan carries an encoded plan (wirePlan).
	msgPlan byte = 3
)

// encodeRowsMsg frames a Map delta as a user message, in format 1.
func encodeRowsMsg(delta Map) []byte {
	return append([]byte{msgRows}, encodeRows(delta)...)
}
