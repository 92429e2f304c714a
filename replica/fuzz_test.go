package replica

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ringkv/ringkv/vclock"
)

func sampleRequests() []Request {
	_, s := vclock.Mint(nil, "inc-a", vclock.Write{Value: []byte("v"), WallTime: 7})
	_, s2 := vclock.Mint(nil, "inc-b", vclock.Write{Tombstone: true})
	set := vclock.Merge(s, s2)
	return []Request{
		{Kind: KindPing},
		{Kind: KindRead, Key: []byte("k")},
		{Kind: KindStore, Key: []byte("k"), Siblings: set, HintFor: "n3"},
		{Kind: KindForward, Key: []byte("k"), Write: &ForwardWrite{Value: []byte("x"), Context: set.Context(), HasContext: true, W: QuorumAll}},
		{Kind: Kind(200), Key: []byte("future")},
	}
}

func FuzzUnmarshalRequest(f *testing.F) {
	for _, r := range sampleRequests() {
		b, err := MarshalRequest(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{ProtocolVersion})
	f.Add([]byte{9, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRequest(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is neither ErrProtocol nor ErrBadRequest", err)
			}
			return
		}
		again, err := MarshalRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := UnmarshalRequest(again)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if d := cmp.Diff(r, r2, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip changed the request:\n%s", d)
		}
	})
}

func FuzzUnmarshalReply(f *testing.F) {
	_, s := vclock.Mint(nil, "inc-a", vclock.Write{Value: []byte("v")})
	for _, c := range []struct {
		r   Response
		err error
	}{
		{Response{Siblings: s, Context: s.Context(), Replies: 2}, nil},
		{Response{}, &QuorumError{Op: "put", Need: 2, Got: 1, Failures: map[string]error{"n2": ErrReplicaDown}}},
		{Response{}, ErrBadQuorum},
	} {
		b, err := MarshalReply(c.r, c.err)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalReply("peer", b)
		if err != nil {
			return // any error is fine; a panic is not
		}
		again, err := MarshalReply(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := UnmarshalReply("peer", again)
		if err != nil || !cmp.Equal(r, r2, cmpopts.EquateEmpty()) {
			t.Fatalf("round trip: %+v, %v; want %+v", r2, err, r)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	for _, fr := range []frame{
		{typ: frameHello, body: helloBody(hello{self: "n1", peer: "n2"})},
		{typ: frameRequest, id: 7, budget: 1e9, body: []byte{1, 2, 3}},
		{typ: frameResponse, id: 7, body: []byte{4}},
	} {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := writeFrame(w, &fr); err != nil {
			f.Fatal(err)
		}
		_ = w.Flush()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxLen = 1 << 12
		fr, err := readFrame(bufio.NewReader(bytes.NewReader(b)), maxLen)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := writeFrame(w, &fr); err != nil {
			t.Fatal(err)
		}
		_ = w.Flush()
		if !bytes.HasPrefix(b, buf.Bytes()) {
			t.Fatalf("re-encoded frame %x is not a prefix of input %x", buf.Bytes(), b)
		}
	})
}

// TestUnmarshalRequestHostileShapes: a field this version does not know is
// skipped by msgpack with one recursion per nesting level, so 8 MB of
// nested arrays there overflowed the goroutine stack (a fatal error that
// kills the node). Sets of more siblings than any key can hold are
// refused before their (linear, but not free) validity check.
func TestUnmarshalRequestHostileShapes(t *testing.T) {
	deep := []byte{ProtocolVersion, 0x82, 0xa1, 'k', 0x01, 0xa2, 'z', 'z'}
	deep = append(deep, bytes.Repeat([]byte{0x91}, 8<<20)...)
	deep = append(deep, 0xc0)
	if _, err := UnmarshalRequest(deep); !errors.Is(err, ErrProtocol) {
		t.Fatalf("deeply nested unknown field: %v, want ErrProtocol", err)
	}

	many := make(vclock.Siblings, maxWireSiblings+1)
	for i := range many {
		many[i] = vclock.Version{Dot: vclock.Dot{Actor: fmt.Sprintf("a%06d", i), Counter: 1}, Value: []byte("v")}
	}
	for name, req := range map[string]Request{
		"store":   {Kind: KindStore, Key: []byte("k"), Siblings: many},
		"handoff": {Kind: KindHandoff, Batch: []Entry{{Key: []byte("k"), Siblings: many}}},
	} {
		b, err := MarshalRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnmarshalRequest(b); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s of %d siblings: %v, want ErrBadRequest", name, len(many), err)
		}
	}
	b, err := MarshalRequest(Request{Kind: KindStore, Key: []byte("k"), Siblings: many[:maxWireSiblings]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalRequest(b); err != nil {
		t.Fatalf("store of %d siblings: %v", maxWireSiblings, err)
	}
	rb, err := MarshalReply(Response{Siblings: many}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalReply("peer", rb); !errors.Is(err, ErrProtocol) {
		t.Fatalf("reply of %d siblings: %v, want ErrProtocol", len(many), err)
	}
}
