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
	Rows     []any // row or zonedRow
	Plan     any   // nil, *wirePlan or *zonedPlan
}

// wireStateV1 is format 1, [1, rows]: a row delta (msgRows), or the
// push-pull state of a node from before plans.
type wireStateV1 struct {
	_msgpack struct{} `msgpack:",as_array"`
	Format   int
	Rows     []any // row or zonedRow
}

// maxStateBytes bounds an encoded map we accept: 10k nodes at ~200 bytes a
// row. Push-pull state is read whole by memberlist, so this is a sanity cap,
// not a memory defence.
const maxStateBytes = 2 << 20

// maxPlanBytes bounds an encoded plan. The largest valid plan, two
// disjoint lists of ring.MaxPlanMembers names of maxNameLen bytes and a
// zone of ring.MaxZoneBytes for each of those 2048 nodes (their names
// again, in the zone pairs), takes about 670 kB
// (TestLargestPlanFitsTheCap); a plan the claimant can make must be one
// every peer accepts.
const maxPlanBytes = 1 << 20

// Zones came after the first formats, and the decoder of an as_array
// struct wants the field count exact. So a row or plan with a zone is sent
// with one more field (zonedRow, zonedPlan) and one without keeps the old
// shape: a cluster without zones encodes the same bytes as before zones,
// which older builds read. Rows and plans are msgpack fixarrays, so the
// first byte tells the shapes apart (fixArray(n)).

// zonedRow is a row with a zone: [name, status, version, addr, zone].
type zonedRow struct {
	_msgpack struct{} `msgpack:",as_array"`
	Name     string
	Status   Status
	Version  uint64
	Addr     string
	Zone     string
}

// zonedPlan is a plan with zones: [epoch, version, members, target,
// zones], zones as ring.Plan.ZonePairs.
type zonedPlan struct {
	_msgpack struct{} `msgpack:",as_array"`
	Epoch    uint64
	Version  uint64
	Members  []string
	Target   []string
	Zones    []string
}

// fixArray returns the msgpack header byte of an array of n < 16 items.
func fixArray(n int) byte { return 0x90 | byte(n) }

// wireRows returns m's rows sorted by name.
func wireRows(m Map) []any {
	rows := make([]any, 0, len(m))
	for _, name := range m.Names() {
		e := m[name]
		if e.Zone != "" {
			rows = append(rows, zonedRow{Name: name, Status: e.Status, Version: e.Version, Addr: e.Addr, Zone: e.Zone})
			continue
		}
		rows = append(rows, row{Name: name, Status: e.Status, Version: e.Version, Addr: e.Addr})
	}
	return rows
}

// toWirePlan returns the wire form of a known plan.
func toWirePlan(p ring.Plan) any {
	if pairs := p.ZonePairs(); pairs != nil {
		return &zonedPlan{Epoch: p.Epoch, Version: p.Version, Members: p.Members, Target: p.Target, Zones: pairs}
	}
	return &wirePlan{Epoch: p.Epoch, Version: p.Version, Members: p.Members, Target: p.Target}
}

// decodeRows decodes the rows field of a state into a Map, rows of either
// shape; it does not validate the rows.
func decodeRows(b []byte) (Map, error) {
	var raws []msgpack.RawMessage
	if len(b) > 0 {
		if err := msgpack.Unmarshal(b, &raws); err != nil {
			return nil, fmt.Errorf("%w: rows: %w", ErrBadState, err)
		}
	}
	m := make(Map, len(raws))
	for _, raw := range raws {
		var zr zonedRow
		var err error
		if len(raw) > 0 && raw[0] == fixArray(5) {
			err = msgpack.Unmarshal(raw, &zr)
		} else {
			var r row
			err = msgpack.Unmarshal(raw, &r)
			zr = zonedRow{Name: r.Name, Status: r.Status, Version: r.Version, Addr: r.Addr}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: rows: %w", ErrBadState, err)
		}
		if _, dup := m[zr.Name]; dup {
			return nil, fmt.Errorf("%w: node %q appears twice", ErrBadState, zr.Name)
		}
		m[zr.Name] = Entry{Status: zr.Status, Version: zr.Version, Addr: zr.Addr, Zone: zr.Zone}
	}
	return m, nil
}

// unmarshalPlan decodes a plan of either shape; nil for msgpack nil.
func unmarshalPlan(b []byte, decode func([]byte, any) error) (*zonedPlan, error) {
	if len(b) > 0 && b[0] == fixArray(5) {
		var zp *zonedPlan
		err := decode(b, &zp)
		return zp, err
	}
	var wp *wirePlan
	if err := decode(b, &wp); err != nil || wp == nil {
		return nil, err
	}
	return &zonedPlan{Epoch: wp.Epoch, Version: wp.Version, Members: wp.Members, Target: wp.Target}, nil
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
		ws.Plan = toWirePlan(p)
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
	m, err := decodeRows(parts[1])
	if err != nil {
		return nil, ring.Plan{}, err
	}
	if err := m.Validate(); err != nil {
		return nil, ring.Plan{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	var p ring.Plan
	if format == stateFormat && len(parts[2]) > 0 {
		wp, err := unmarshalPlan(parts[2], msgpack.Unmarshal)
		if err != nil {
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
func (wp *zonedPlan) plan() (ring.Plan, error) {
	if len(wp.Zones) > 4*ring.MaxPlanMembers {
		return ring.Plan{}, fmt.Errorf("%w: %w: %d zone fields", ErrBadState, ring.ErrBadPlan, len(wp.Zones))
	}
	zones, err := ring.ZonesFromPairs(wp.Zones)
	if err != nil {
		return ring.Plan{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	p := ring.Plan{Epoch: wp.Epoch, Version: wp.Version, Members: wp.Members, Target: wp.Target, Zones: zones}
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
	return append([]byte{msgPlan}, mustMarshal(toWirePlan(p))...)
}

// decodePlan parses the body of a msgPlan message and checks the plan
// (checkPlan). Hostile input yields ErrBadState, never a panic.
func decodePlan(b []byte) (ring.Plan, error) {
	if len(b) > maxPlanBytes {
		return ring.Plan{}, fmt.Errorf("%w: plan of %d bytes exceeds %d", ErrBadState, len(b), maxPlanBytes)
	}
	wp, err := unmarshalPlan(b, decodeOne)
	if err != nil {
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
