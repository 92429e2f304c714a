package replica

import (
	"math"

	"github.com/ringkv/ringkv/internal/wire"
	"github.com/ringkv/ringkv/vclock"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The hot messages of a replicated request (a store or read request and
// its reply) are encoded and decoded here by hand, without reflection:
// profiled, msgpack's reflection (and its omitempty walk over Response's
// fields) was a seventh of a replicated request's CPU. Sets go through
// vclock's codec on both paths (reflection reaches it through Siblings'
// msgpack methods), but reflection still costs 17-18 allocations to encode
// a store request where this costs 1, and 16-43 to decode one where this
// costs 6-18 (BenchmarkStoreCodecPath). They have the layout the reflection encoder
// gives these types (maps keyed by the msgpack field names), with integers
// in their smallest form where reflection writes Kind and Epoch in 2 and 9
// bytes; msgpack's reflection decoder reads every width, so a
// peer running an older binary decodes these bytes, and wire.Reader reads
// what such a peer sends (message_fast_test.go checks both directions on
// many random messages and on bytes an older binary wrote). Any input in
// a shape these do not take (other fields, a repeated field, an error
// reply) takes the reflection path, which gives the same result.

// fastRequest reports whether r has only the fields the fast encoder
// writes: Kind, Key, Siblings, HintFor and Epoch.
func fastRequest(r *Request) bool {
	return r.Write == nil && r.Batch == nil && r.Partition == 0 && len(r.After) == 0 && r.Limit == 0 && r.AEQuery == nil
}

// appendRequest appends r's msgpack encoding (no version byte); r must
// satisfy fastRequest.
func appendRequest(b []byte, r *Request) []byte {
	n := 0
	if r.Kind != 0 {
		n++
	}
	if len(r.Key) > 0 {
		n++
	}
	if len(r.Siblings) > 0 {
		n++
	}
	if r.HintFor != "" {
		n++
	}
	if r.Epoch != 0 {
		n++
	}
	b = append(b, msgpcode.FixedMapLow|byte(n))
	if r.Kind != 0 {
		b = wire.AppendStr(b, "k")
		b = wire.AppendUint(b, uint64(r.Kind))
	}
	if len(r.Key) > 0 {
		b = wire.AppendStr(b, "key")
		b = wire.AppendBin(b, r.Key)
	}
	if len(r.Siblings) > 0 {
		b = wire.AppendStr(b, "sib")
		b = vclock.AppendSiblings(b, r.Siblings)
	}
	if r.HintFor != "" {
		b = wire.AppendStr(b, "hint")
		b = wire.AppendStr(b, r.HintFor)
	}
	if r.Epoch != 0 {
		b = wire.AppendStr(b, "ep")
		b = wire.AppendUint(b, r.Epoch)
	}
	return b
}

// fastReply reports whether the reply to send is resp alone (no error)
// holding at most Siblings.
func fastReply(resp *Response, err error) bool {
	return err == nil && len(resp.Context) == 0 && resp.Replies == 0 && resp.Hinted == 0 &&
		len(resp.Batch) == 0 && !resp.More && resp.Keys == 0 && resp.Bytes == 0 && resp.Epoch == 0 &&
		resp.PlanHash == 0 && len(resp.Done) == 0 && resp.AEAnswer == nil && len(resp.Stats) == 0
}

// appendReply appends the wireReply encoding of resp (no version byte);
// resp must satisfy fastReply. An empty Response is omitted, as the
// reflection encoder omits an empty struct.
func appendReply(b []byte, resp *Response) []byte {
	if len(resp.Siblings) == 0 {
		return append(b, msgpcode.FixedMapLow)
	}
	b = append(b, msgpcode.FixedMapLow|1)
	b = wire.AppendStr(b, "r")
	b = append(b, msgpcode.FixedMapLow|1)
	b = wire.AppendStr(b, "sib")
	return vclock.AppendSiblings(b, resp.Siblings)
}

// decodeRequest decodes a body (after the version byte) written by
// appendRequest, with its fields in any order; ok is false for anything
// else, which the reflection decoder then reads.
func decodeRequest(b []byte) (req Request, ok bool) {
	r := wire.NewReader(b)
	n, _ := r.MapLen()
	var seen [5]bool // a repeated field takes the reflection path
	for range n {
		i := -1
		switch string(r.StrBytes()) {
		case "k":
			i = 0
			k := r.Uint()
			if k > math.MaxUint8 {
				return Request{}, false
			}
			req.Kind = Kind(k)
		case "key":
			i = 1
			req.Key = r.Bin()
		case "sib":
			i = 2
			// A set beyond maxWireSiblings fails r, so the reflection
			// path reads the request and refuses it with its error.
			req.Siblings = vclock.ReadSiblingsMax(r, nil, maxWireSiblings)
		case "hint":
			i = 3
			req.HintFor = r.Str()
		case "ep":
			i = 4
			req.Epoch = r.Uint()
		}
		if i < 0 || seen[i] || r.Err() != nil {
			return Request{}, false
		}
		seen[i] = true
	}
	if r.Done(); r.Err() != nil {
		return Request{}, false
	}
	return req, true
}

// decodeReply decodes a wireReply body written by appendReply; ok is
// false for anything else (errors included), which the reflection
// decoder then reads.
func decodeReply(b []byte) (resp Response, ok bool) {
	r := wire.NewReader(b)
	switch n, _ := r.MapLen(); n {
	case 0:
	case 1:
		if string(r.StrBytes()) != "r" {
			return Response{}, false
		}
		if m, _ := r.MapLen(); m != 1 || string(r.StrBytes()) != "sib" {
			return Response{}, false
		}
		// Failed in r beyond maxWireSiblings, as in decodeRequest.
		resp.Siblings = vclock.ReadSiblingsMax(r, nil, maxWireSiblings)
	default:
		return Response{}, false
	}
	if r.Done(); r.Err() != nil {
		return Response{}, false
	}
	return resp, true
}
