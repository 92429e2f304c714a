package replica

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolVersion is the first byte of every encoded message. A peer that
// receives another version refuses the message with ErrProtocol. Adding a
// field or a Kind does not need a new version: fields are msgpack map keys
// that older decoders skip, and an unknown Kind is answered with
// ErrUnknownKind. Bump the version only for changes old peers would
// misread. Version 2: the hello names both ends and the server answers
// with its own hello.
const ProtocolVersion byte = 2

// Kind selects the call a Request makes. Values are part of the protocol:
// never renumber, only add.
type Kind uint8

const (
	// KindPing does nothing and answers an empty Response; health checks and
	// round-trip measurements use it.
	KindPing Kind = 1
	// KindStore asks the receiver to merge Siblings into its copy of Key and
	// persist it (replication and read repair). With HintFor set the
	// receiver keeps the set as a hint for that node instead.
	KindStore Kind = 2
	// KindRead asks for the receiver's sibling set of Key.
	KindRead Kind = 3
	// KindForward asks the receiver to coordinate the write in Write for
	// Key (one hop: the receiver never forwards again).
	KindForward Kind = 4
	// KindHandoff asks the receiver to merge every entry of Batch into its
	// store and persist them (hinted handoff delivering a stand-in's hints
	// to the replica they were kept for). It succeeds only if every entry
	// was stored; a repeated batch changes nothing.
	KindHandoff Kind = 5
	// KindTransfer asks the receiver for the next batch of a partition it
	// holds, in key order after After (partition transfer: a new replica
	// pulls from the current ones). The receiver refuses with ErrStalePlan
	// while its plan is older than Epoch, so that a batch is served only
	// once the source knows the change and forwards writes it missed.
	KindTransfer Kind = 6
	// KindStatus asks the receiver which plan it follows and which
	// partitions of that plan's change it holds a full copy of.
	KindStatus Kind = 7
	// KindTree asks for hashes of the receiver's hash tree of Partition:
	// the nodes named in Nodes at Level (all of the level when Nodes is
	// empty), answered in Hashes in the order named (anti-entropy).
	KindTree Kind = 8
	// KindKeys asks for the keys of Partition in the tree leaves named in
	// Nodes, with their digests, sorted by key, those after After when it
	// is set: at most Limit (0: the receiver's default of
	// DefaultMaxKeysPerCall), answered in Digests; More says keys were
	// left out.
	KindKeys Kind = 9
	// KindFetch asks for the receiver's sibling sets of Keys, all of
	// Partition, answered in Batch in the order asked; keys absent there
	// are omitted. When the sets would make the answer too large it stops
	// after an entry and sets More: the keys after that entry's were not
	// looked up.
	KindFetch Kind = 10
	// KindNodeStats asks the receiver for its statistics as an operator
	// sees them (ring inspection), answered in Stats. The coordinator does
	// not serve it: the process that runs it answers, in an encoding of
	// its own.
	KindNodeStats Kind = 11
)

// String names the kind for logs and errors.
func (k Kind) String() string {
	switch k {
	case KindPing:
		return "ping"
	case KindStore:
		return "store"
	case KindRead:
		return "read"
	case KindForward:
		return "forward"
	case KindHandoff:
		return "handoff"
	case KindTransfer:
		return "transfer"
	case KindStatus:
		return "status"
	case KindTree:
		return "tree"
	case KindKeys:
		return "keys"
	case KindFetch:
		return "fetch"
	case KindNodeStats:
		return "node_stats"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Request is one internal RPC call. Which fields matter depends on Kind;
// the rest are empty and cost nothing on the wire.
type Request struct {
	// Kind selects the call.
	Kind Kind `msgpack:"k"`
	// Key is the key the call is about (store, read, forward).
	Key []byte `msgpack:"key,omitempty"`
	// Siblings is the set to merge (store). Always a whole sibling set,
	// never a lone version: a context that covers a dot (n, c) also covers
	// n's lower counters for the key, which is safe only when every holder
	// of (n, c) also holds, or has superseded, n's earlier versions.
	Siblings vclock.Siblings `msgpack:"sib,omitempty"`
	// HintFor names the replica the receiver stands in for (store sent to
	// a fallback while the replica is down); empty for a normal store.
	HintFor string `msgpack:"hint,omitempty"`
	// Write is the client write to coordinate (forward).
	Write *ForwardWrite `msgpack:"fw,omitempty"`
	// Batch is the sets to merge (handoff).
	Batch []Entry `msgpack:"batch,omitempty"`
	// Epoch is the epoch of the sender's plan (store, read, forward,
	// transfer); 0 when unknown.
	Epoch uint64 `msgpack:"ep,omitempty"`
	// Partition is the partition a transfer pulls.
	Partition int32 `msgpack:"part,omitempty"`
	// After is a transfer's or a KindKeys call's cursor: the batch starts
	// after this key (empty: from the first key).
	After []byte `msgpack:"after,omitempty"`
	// Limit bounds the keys in a transfer batch or a KindKeys answer (0:
	// the receiver's default).
	Limit int32 `msgpack:"lim,omitempty"`
	// AEQuery holds the fields of the anti-entropy calls, inlined on the
	// wire; nil in every other request.
	*AEQuery

	// Encoded, when set, is this request as MarshalRequest encodes it,
	// made once for many sends (a write's merged set to each replica);
	// never on the wire, and a request must not change once it is set.
	Encoded []byte `msgpack:"-"`
}

// Entry is one key's sibling set inside a handoff batch.
type Entry struct {
	_msgpack struct{} `msgpack:",as_array"`
	// Key is the key; never empty.
	Key []byte
	// Siblings is the whole set to merge into Key.
	Siblings vclock.Siblings
}

// AEQuery is the part of a Request only the anti-entropy calls use
// (KindTree, KindKeys, KindFetch). It is embedded by pointer so that every
// other request leaves it nil: msgpack omits the fields of a nil embedded
// struct without looking at them, where each empty slice field of the
// Request itself costs an allocation per encoded message.
type AEQuery struct {
	// Level is the tree level a KindTree call asks about: 0 the root, 1
	// the inner nodes, 2 the leaves.
	Level int32 `msgpack:"lvl,omitempty"`
	// Nodes names tree nodes at Level (KindTree; empty: all of the level)
	// or leaves (KindKeys); at most MaxTreeNodes.
	Nodes []uint32 `msgpack:"nodes,omitempty"`
	// Keys are the keys a KindFetch asks for; at most MaxFetchKeys, none
	// empty.
	Keys [][]byte `msgpack:"keys,omitempty"`
}

// AEAnswer is the part of a Response only anti-entropy answers use,
// embedded by pointer for the reason AEQuery is.
type AEAnswer struct {
	// Hashes are the tree node hashes a KindTree call asked for, in its
	// order; at most MaxTreeNodes.
	Hashes []uint64 `msgpack:"hashes,omitempty"`
	// Digests are the keys of a KindKeys answer, sorted by key; at most
	// MaxDigests.
	Digests []KeyDigest `msgpack:"digests,omitempty"`
}

// ae returns the request's anti-entropy fields, empty when it has none.
func (r *Request) ae() AEQuery {
	if r.AEQuery == nil {
		return AEQuery{}
	}
	return *r.AEQuery
}

// ae returns the response's anti-entropy fields, empty when it has none.
func (r *Response) ae() AEAnswer {
	if r.AEAnswer == nil {
		return AEAnswer{}
	}
	return *r.AEAnswer
}

// ForwardWrite is a client write forwarded to a coordinator: everything it
// needs to mint the version itself.
type ForwardWrite struct {
	// Value is the new value; ignored for a delete.
	Value []byte `msgpack:"v,omitempty"`
	// Delete makes the write a tombstone.
	Delete bool `msgpack:"del,omitempty"`
	// Context is the client's causal context, meaningful when HasContext.
	Context vclock.Clock `msgpack:"ctx,omitempty"`
	// HasContext false is a blind write (supersedes what the coordinator
	// holds).
	HasContext bool `msgpack:"hasctx,omitempty"`
	// W is the client's write quorum, resolved by the coordinator.
	W Quorum `msgpack:"w,omitempty"`
	// Strict counts only the key's own replicas toward W, not stand-ins
	// holding hints (WriteOptions.Strict).
	Strict bool `msgpack:"strict,omitempty"`
}

// Response is the answer to a Request.
type Response struct {
	// Siblings is the replica's set (read) or the coordinator's merged set
	// after the write (forward).
	Siblings vclock.Siblings `msgpack:"sib,omitempty"`
	// Context is the causal context of Siblings (forward).
	Context vclock.Clock `msgpack:"ctx,omitempty"`
	// Replies is how many replicas acknowledged (forward).
	Replies int `msgpack:"n,omitempty"`
	// Hinted is how many of Replies were stand-ins holding hints (forward).
	Hinted int `msgpack:"hinted,omitempty"`
	// Batch is a transfer batch: whole sibling sets in key order.
	Batch []Entry `msgpack:"batch,omitempty"`
	// More is true when the partition holds keys after the batch's last.
	More bool `msgpack:"more,omitempty"`
	// Keys and Bytes are the source's totals for the partition a transfer
	// pulls (for progress), as storage.PartitionStat.
	Keys  int64 `msgpack:"pk,omitempty"`
	Bytes int64 `msgpack:"pb,omitempty"`
	// Epoch and PlanHash identify the plan the receiver follows (status).
	Epoch    uint64 `msgpack:"ep,omitempty"`
	PlanHash uint64 `msgpack:"ph,omitempty"`
	// Done lists, ascending, the partitions of that plan's change the
	// receiver holds a full copy of as a new replica (status).
	Done []int32 `msgpack:"done,omitempty"`
	// AEAnswer holds the fields of anti-entropy answers, inlined on the
	// wire; nil in every other response.
	*AEAnswer
	// Stats is the receiver's statistics (KindNodeStats), opaque here; at
	// most MaxStatsBytes.
	Stats []byte `msgpack:"stats,omitempty"`
}

// wireReply is the body of an answer: a Response or an error.
type wireReply struct {
	Resp Response   `msgpack:"r"`
	Err  *wireError `msgpack:"e,omitempty"`
}

// wireError carries an error across the wire by sentinel code; quorum
// failures keep their details so the client's 503 can name the replicas.
type wireError struct {
	Code     string            `msgpack:"c"`
	Msg      string            `msgpack:"m"`
	Op       string            `msgpack:"op,omitempty"`
	Need     int               `msgpack:"need,omitempty"`
	Got      int               `msgpack:"got,omitempty"`
	Failures map[string]string `msgpack:"f,omitempty"`
	Pending  []string          `msgpack:"pend,omitempty"`
	Unavail  bool              `msgpack:"unavail,omitempty"`
	Reach    int               `msgpack:"reach,omitempty"`
	TNeed    int               `msgpack:"tneed,omitempty"`
	TGot     int               `msgpack:"tgot,omitempty"`
	TReach   int               `msgpack:"treach,omitempty"`
}

// maxWireSiblings bounds the versions of one sibling set in a message. The
// coordinator keeps far fewer per key (it refuses writes past its sibling
// cap), so a larger set comes from a broken or hostile peer; refusing it
// bounds the work of checking and merging what a peer sends.
const maxWireSiblings = vclock.MaxSiblings

// checkWireSiblings refuses a set that is too large or not canonical.
func checkWireSiblings(s vclock.Siblings) error {
	if len(s) > maxWireSiblings {
		return fmt.Errorf("%w: %d siblings, at most %d", vclock.ErrBadSiblings, len(s), maxWireSiblings)
	}
	if !s.Valid() {
		return vclock.ErrBadSiblings
	}
	return nil
}

// MarshalRequest encodes a request: the protocol version byte, then msgpack.
func MarshalRequest(r Request) ([]byte, error) {
	if r.Encoded != nil {
		return r.Encoded, nil
	}
	return marshalRequest(&r)
}

// marshalRequest encodes r by hand when it is a store or read request
// (message_fast.go), else by reflection.
func marshalRequest(r *Request) ([]byte, error) {
	if fastRequest(r) {
		b := make([]byte, 0, 32+len(r.Key)+len(r.HintFor)+vclock.SizeSiblings(r.Siblings))
		return appendRequest(append(b, ProtocolVersion), r), nil
	}
	return marshal(r)
}

// prepare encodes r once for several sends (a write's merged set to each
// replica): profiled, encoding it per replica, in a goroutine whose stack
// then grew, was a seventh of a replicated write's CPU. The request must
// not be changed afterwards. An r that cannot be encoded is returned as
// is, so that each send reports the error.
func prepare(r Request) Request {
	if b, err := marshalRequest(&r); err == nil {
		r.Encoded = b
	}
	return r
}

// UnmarshalRequest decodes bytes made by MarshalRequest and checks that
// sibling sets and clocks are canonical. Hostile input yields an error
// (ErrProtocol or ErrBadRequest), never a panic.
func UnmarshalRequest(b []byte) (Request, error) {
	r, ok := Request{}, false
	if len(b) > 0 && b[0] == ProtocolVersion {
		r, ok = decodeRequest(b[1:])
	}
	if ok {
		// Decoded by hand (message_fast.go); the checks below apply.
	} else if err := unmarshal(b, &r, checkRequestCounts); err != nil {
		// A set over maxWireSiblings is refused by its decoder, before
		// allocating, rather than by checkWireSiblings below: still a bad
		// request, not a broken stream.
		if errors.Is(err, errTooMany) || errors.Is(err, vclock.ErrTooManySiblings) {
			return Request{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		return Request{}, err
	}
	if q := r.AEQuery; q != nil && q.Level == 0 && len(q.Nodes) == 0 && len(q.Keys) == 0 {
		// Zero-valued fields ({"lvl": 0}) make msgpack allocate the
		// query; every reader sees it as no query (Request.ae), and it
		// encodes as none, so it decodes as none.
		r.AEQuery = nil
	}
	if err := checkWireSiblings(r.Siblings); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if r.Write != nil && !r.Write.Context.Valid() {
		return Request{}, fmt.Errorf("%w: %w", ErrBadRequest, vclock.ErrBadContext)
	}
	for i, e := range r.Batch {
		if len(e.Key) == 0 {
			return Request{}, fmt.Errorf("%w: batch entry %d: empty key", ErrBadRequest, i)
		}
		if err := checkWireSiblings(e.Siblings); err != nil {
			return Request{}, fmt.Errorf("%w: batch entry %d: %w", ErrBadRequest, i, err)
		}
	}
	for i, k := range r.ae().Keys {
		if len(k) == 0 {
			return Request{}, fmt.Errorf("%w: key %d: empty", ErrBadRequest, i)
		}
	}
	return r, nil
}

// MarshalReply encodes the answer to a request: resp when err is nil,
// otherwise err with its sentinel code (and, for a *QuorumError, its
// details).
func MarshalReply(resp Response, err error) ([]byte, error) {
	if fastReply(&resp, err) {
		b := make([]byte, 0, 16+vclock.SizeSiblings(resp.Siblings))
		return appendReply(append(b, ProtocolVersion), &resp), nil
	}
	w := wireReply{Resp: resp}
	if err != nil {
		w.Resp = Response{}
		w.Err = &wireError{Code: errorCode(err), Msg: err.Error()}
		var qe *QuorumError
		if errors.As(err, &qe) {
			w.Err.Op, w.Err.Need, w.Err.Got = qe.Op, qe.Need, qe.Got
			w.Err.Pending, w.Err.Unavail, w.Err.Reach = qe.Pending, qe.Unavailable, qe.Reachable
			w.Err.TNeed, w.Err.TGot, w.Err.TReach = qe.TargetNeed, qe.TargetGot, qe.TargetReachable
			w.Err.Failures = make(map[string]string, len(qe.Failures))
			for n, f := range qe.Failures {
				w.Err.Failures[n] = f.Error()
			}
		}
	}
	return marshal(&w)
}

// UnmarshalReply decodes bytes made by MarshalReply from node. A remote
// error comes back as a *QuorumError (code quorum) or a *RemoteError; a
// malformed reply as ErrProtocol.
func UnmarshalReply(node string, b []byte) (Response, error) {
	var w wireReply
	ok := false
	if len(b) > 0 && b[0] == ProtocolVersion {
		w.Resp, ok = decodeReply(b[1:])
	}
	if ok {
		// Decoded by hand (message_fast.go); the checks below apply.
	} else if err := unmarshal(b, &w, checkReplyCounts); err != nil {
		return Response{}, err
	}
	if w.Err != nil {
		if w.Err.Code == "quorum" && w.Err.Op != "" {
			qe := &QuorumError{Op: w.Err.Op, Need: w.Err.Need, Got: w.Err.Got, Failures: make(map[string]error, len(w.Err.Failures)),
				Pending: w.Err.Pending, Unavailable: w.Err.Unavail, Reachable: w.Err.Reach,
				TargetNeed: w.Err.TNeed, TargetGot: w.Err.TGot, TargetReachable: w.Err.TReach}
			for n, m := range w.Err.Failures {
				qe.Failures[n] = errors.New(m)
			}
			return Response{}, qe
		}
		return Response{}, &RemoteError{Node: node, Code: w.Err.Code, Msg: w.Err.Msg}
	}
	if checkWireSiblings(w.Resp.Siblings) != nil || !w.Resp.Context.Valid() {
		return Response{}, fmt.Errorf("%w: reply from %s: non-canonical sibling set or context", ErrProtocol, node)
	}
	for i, d := range w.Resp.ae().Digests {
		if len(d.Key) == 0 {
			return Response{}, fmt.Errorf("%w: reply from %s: digest %d has an empty key", ErrProtocol, node, i)
		}
	}
	return w.Resp, nil
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(ProtocolVersion)
	enc := msgpack.NewEncoder(&buf)
	enc.SetOmitEmpty(true)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("replica: encode message: %w", err)
	}
	return buf.Bytes(), nil
}

// unmarshal decodes b into v after the version byte and two checks of
// the msgpack body: CheckEncoding, which bounds every length by the bytes
// present, and bound, which bounds the counts of v's list fields.
func unmarshal(b []byte, v any, bound func(body []byte) error) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty message", ErrProtocol)
	}
	if b[0] != ProtocolVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrProtocol, b[0], ProtocolVersion)
	}
	// A length prefix from a hostile peer must not size an allocation.
	if err := wire.CheckEncoding(b[1:]); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if err := bound(b[1:]); err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	r := bytes.NewReader(b[1:])
	if err := msgpack.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrProtocol, r.Len())
	}
	return nil
}
