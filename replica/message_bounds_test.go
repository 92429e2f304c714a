package replica

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// encodeRaw encodes v (a map or an array standing for a message) after the
// version byte, as a hostile peer could.
func encodeRaw(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(ProtocolVersion)
	if err := msgpack.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAAECountBounds: the list fields of the anti-entropy calls are
// refused beyond their bounds, in requests (ErrBadRequest) and replies
// (ErrProtocol), and a message in array form, which the decoder would fill
// by field position past the check, is refused.
func TestAAECountBounds(t *testing.T) {
	nodes := func(n int) []uint32 { return make([]uint32, n) }
	keys := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = []byte{'k'}
		}
		return out
	}
	for _, c := range []struct {
		name string
		req  Request
		ok   bool
	}{
		{"256 nodes", Request{Kind: KindTree, AEQuery: &AEQuery{Level: 2, Nodes: nodes(256)}}, true},
		{"257 nodes", Request{Kind: KindTree, AEQuery: &AEQuery{Level: 2, Nodes: nodes(257)}}, false},
		{"1024 keys", Request{Kind: KindFetch, AEQuery: &AEQuery{Keys: keys(1024)}}, true},
		{"1025 keys", Request{Kind: KindFetch, AEQuery: &AEQuery{Keys: keys(1025)}}, false},
		{"empty key", Request{Kind: KindFetch, AEQuery: &AEQuery{Keys: [][]byte{{'a'}, {}}}}, false},
	} {
		b, err := MarshalRequest(c.req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = UnmarshalRequest(b)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrBadRequest)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A user key that contains a field name costs the walk, not a refusal.
	b, _ := MarshalRequest(Request{Kind: KindStore, Key: []byte("monkeys and nodes")})
	if _, err := UnmarshalRequest(b); err != nil {
		t.Errorf("key naming fields: %v", err)
	}
	// Array form: the 13 fields of Request by position, which msgpack
	// would decode.
	arr := encodeRaw(t, []any{uint8(KindTree), nil, nil, "", nil, nil, 0, 0, nil, 0, 0, make([]uint32, 300), nil})
	if _, err := UnmarshalRequest(arr); !errors.Is(err, ErrProtocol) {
		t.Errorf("request in array form: %v, want ErrProtocol", err)
	}

	for _, c := range []struct {
		name string
		resp Response
		ok   bool
	}{
		{"256 hashes", Response{AEAnswer: &AEAnswer{Hashes: make([]uint64, 256)}}, true},
		{"257 hashes", Response{AEAnswer: &AEAnswer{Hashes: make([]uint64, 257)}}, false},
		{"4097 digests", Response{AEAnswer: &AEAnswer{Digests: make([]KeyDigest, 4097)}}, false},
		{"empty digest key", Response{AEAnswer: &AEAnswer{Digests: []KeyDigest{{Digest: 1}}}}, false},
	} {
		b, err := MarshalReply(c.resp, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = UnmarshalReply("peer", b)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrProtocol)) {
			t.Errorf("reply %s: %v", c.name, err)
		}
	}
	// The 13 fields of Response by position; msgpack would decode this.
	arrReply := encodeRaw(t, map[string]any{"r": []any{nil, nil, 0, 0, nil, false, 0, 0, 0, 0, nil, make([]uint64, 300), nil}})
	if _, err := UnmarshalReply("peer", arrReply); !errors.Is(err, ErrProtocol) {
		t.Errorf("response in array form: %v, want ErrProtocol", err)
	}
	// A repeated "r": the decoder keeps the last one.
	dup := []byte{ProtocolVersion, 0x82, 0xa1, 'r', 0x80, 0xa1, 'r'}
	dup = append(dup, encodeRaw(t, []any{nil, nil, 0, 0, nil, false, 0, 0, 0, 0, nil, make([]uint64, 300), nil})[1:]...)
	if _, err := UnmarshalReply("peer", dup); !errors.Is(err, ErrProtocol) {
		t.Errorf("reply with a second response in array form: %v, want ErrProtocol", err)
	}
	// The error may come first.
	errFirst := encodeRaw(t, map[string]any{"e": map[string]any{"c": "internal", "m": "x"}, "r": map[string]any{"hashes": make([]uint64, 300)}})
	if _, err := UnmarshalReply("peer", errFirst); !errors.Is(err, ErrProtocol) {
		t.Errorf("reply with the error first and 300 hashes: %v, want ErrProtocol", err)
	}
}

// TestAAECountCheckedBeforeAllocating: a request claiming a million nodes
// in a few megabytes is refused after allocating a small fraction of what
// decoding it would take.
func TestAAECountCheckedBeforeAllocating(t *testing.T) {
	b, err := MarshalRequest(Request{Kind: KindTree, AEQuery: &AEQuery{Level: 2, Nodes: make([]uint32, 1<<20)}})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = UnmarshalRequest(b)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("%v, want ErrBadRequest", err)
	}
	// Decoding would allocate 4 MiB of uint32s (and more while growing).
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
		t.Fatalf("refusing %d bytes allocated %d bytes", len(b), got)
	}
}
