package replica

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
)

// randBytes returns nil, empty, or bytes of a length around msgpack's
// size-class edges.
func randBytes(rng *rand.Rand, nilOK bool) []byte {
	lens := []int{0, 1, 31, 32, 100, 255, 256}
	if rng.IntN(40) == 0 {
		lens = []int{65535, 65536}
	}
	switch rng.IntN(6) {
	case 0:
		if nilOK {
			return nil
		}
	case 1:
		return []byte{}
	}
	b := make([]byte, lens[rng.IntN(len(lens))])
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randString(rng *rand.Rand) string {
	lens := []int{0, 1, 5, 31, 32, 255, 256}
	if rng.IntN(200) == 0 {
		lens = []int{65535, 65536}
	}
	return string(bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, lens[rng.IntN(len(lens))]))
}

func randDot(rng *rand.Rand) vclock.Dot {
	return vclock.Dot{Actor: randString(rng), Counter: rng.Uint64() >> rng.IntN(64)}
}

func randSiblings(rng *rand.Rand) vclock.Siblings {
	counts := []int{0, 1, 2, 3, 15, 16, 17}
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return vclock.Siblings{}
	}
	s := make(vclock.Siblings, counts[rng.IntN(len(counts))])
	for i := range s {
		v := &s[i]
		v.Dot = randDot(rng)
		switch rng.IntN(3) {
		case 0:
		case 1:
			v.Context = vclock.Clock{}
		default:
			v.Context = make(vclock.Clock, rng.IntN(20))
			for j := range v.Context {
				v.Context[j] = randDot(rng)
			}
		}
		v.Value = randBytes(rng, true)
		v.Tombstone = rng.IntN(2) == 0
		v.WallTime = int64(rng.Uint64())
	}
	return s
}

// TestFastMessagesMatchReflection proves that the hand-written codec and
// the reflection codec (which a peer running an older binary uses for
// these messages) read each other's bytes to exactly the same value, on
// many random store and read requests and their replies.
func TestFastMessagesMatchReflection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		req := Request{Kind: Kind(rng.IntN(12)), Key: randBytes(rng, true), Siblings: randSiblings(rng)}
		if rng.IntN(3) == 0 {
			req.HintFor = randString(rng)
		}
		if rng.IntN(2) == 0 {
			req.Epoch = rng.Uint64() >> rng.IntN(64)
		}
		if !fastRequest(&req) {
			t.Fatalf("request %d: not taken by the fast path", i)
		}
		reflected, err := marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		fastBytes, _ := marshalRequest(&req)
		var want Request
		if err := unmarshal(reflected, &want, checkRequestCounts); err != nil {
			t.Fatalf("request %d: reflection decode: %v", i, err)
		}
		var slow Request
		if err := unmarshal(fastBytes, &slow, checkRequestCounts); err != nil || !reflect.DeepEqual(slow, want) {
			t.Fatalf("request %d: reflection decode of the fast encoding %+v, %v; want %+v", i, slow, err, want)
		}
		for _, b := range [][]byte{reflected, fastBytes} {
			if fast, ok := decodeRequest(b[1:]); !ok || !reflect.DeepEqual(fast, want) {
				t.Fatalf("request %d: fast decode of %x: %+v, %v; want %+v", i, b, fast, ok, want)
			}
		}

		resp := Response{Siblings: randSiblings(rng)}
		reflected, err = marshal(&wireReply{Resp: resp})
		if err != nil {
			t.Fatal(err)
		}
		fastBytes, _ = MarshalReply(resp, nil)
		var wantReply wireReply
		if err := unmarshal(reflected, &wantReply, checkReplyCounts); err != nil {
			t.Fatalf("reply %d: reflection decode: %v", i, err)
		}
		var slowReply wireReply
		if err := unmarshal(fastBytes, &slowReply, checkReplyCounts); err != nil || !reflect.DeepEqual(slowReply, wantReply) {
			t.Fatalf("reply %d: reflection decode of the fast encoding %+v, %v; want %+v", i, slowReply, err, wantReply)
		}
		for _, b := range [][]byte{reflected, fastBytes} {
			if fast, ok := decodeReply(b[1:]); !ok || !reflect.DeepEqual(fast, wantReply.Resp) {
				t.Fatalf("reply %d: fast decode of %x: %+v, %v; want %+v", i, b, fast, ok, wantReply.Resp)
			}
		}
	}
}

// testdata/old_messages.hex holds store and read requests and their
// replies as a node running an older binary sends them (the reflection
// encoder's bytes): the fast decoders read them as reflection does.
func TestDecodesOldMessages(t *testing.T) {
	lines := testkit.ReadHexFile(t, "testdata/old_messages.hex")
	if len(lines) != 6 {
		t.Fatalf("%d messages, want 6", len(lines))
	}
	for _, line := range lines {
		kind, b := line.Label, line.Bytes
		if kind == "req" {
			var want Request
			if err := unmarshal(b, &want, checkRequestCounts); err != nil {
				t.Fatal(err)
			}
			got, ok := decodeRequest(b[1:])
			if !ok || !reflect.DeepEqual(got, want) || want.Kind == 0 {
				t.Fatalf("request %x: fast decode %+v, %v; want %+v", b, got, ok, want)
			}
			continue
		}
		var want wireReply
		if err := unmarshal(b, &want, checkReplyCounts); err != nil {
			t.Fatal(err)
		}
		got, ok := decodeReply(b[1:])
		if !ok || !reflect.DeepEqual(got, want.Resp) {
			t.Fatalf("reply %x: fast decode %+v, %v; want %+v", b, got, ok, want.Resp)
		}
	}
}

// TestFastDecodersFallBack checks that what the fast decoders do not take
// (other fields, repeated fields, truncation, other number forms) is left
// to the reflection decoder rather than misread.
func TestFastDecodersFallBack(t *testing.T) {
	store, _ := marshalRequest(&Request{Kind: KindStore, Key: []byte("k"), Epoch: 7,
		Siblings: vclock.Siblings{{Dot: vclock.Dot{Actor: "a", Counter: 1}, Value: []byte("v"), WallTime: 5}}})
	for n := 1; n < len(store); n++ {
		if _, ok := decodeRequest(store[1:n]); ok {
			t.Fatalf("truncated request of %d bytes decoded", n)
		}
	}
	fw, _ := marshal(&Request{Kind: KindForward, Key: []byte("k"), Write: &ForwardWrite{Value: []byte("v")}})
	if _, ok := decodeRequest(fw[1:]); ok {
		t.Fatal("a forward request took the fast path")
	}
	// {"k": 2, "k": 3} and {"k": 258}: a repeated field and a kind beyond
	// uint8, which the fast path does not take; reflection reads both.
	for _, body := range [][]byte{{0x82, 0xa1, 'k', 0xcc, 2, 0xa1, 'k', 0xcc, 3}, {0x81, 0xa1, 'k', 0xcd, 1, 2}} {
		if _, ok := decodeRequest(body); ok {
			t.Fatalf("%x took the fast path", body)
		}
		r, err := UnmarshalRequest(append([]byte{ProtocolVersion}, body...))
		if err != nil || r.Kind == 0 {
			t.Fatalf("%x: reflection fallback: %+v, %v", body, r, err)
		}
	}
	errReply, _ := MarshalReply(Response{}, ErrNotReplica)
	if _, ok := decodeReply(errReply[1:]); ok {
		t.Fatal("an error reply took the fast path")
	}
	if _, err := UnmarshalReply("n1", errReply); err == nil {
		t.Fatal("an error reply decoded without its error")
	}
	// A set claiming more versions than the bytes could hold is refused
	// before it is allocated.
	if _, ok := decodeReply([]byte{0x81, 0xa1, 'r', 0x81, 0xa3, 's', 'i', 'b', 0xdd, 0x7f, 0xff, 0xff, 0xff}); ok {
		t.Fatal("a huge claimed set took the fast path")
	}
}

// TestFastDecodeAllocations pins what decoding a store request costs: the
// request's own key, set, value and actor strings, nothing for its field
// names or framing.
func TestFastDecodeAllocations(t *testing.T) {
	b, _ := marshalRequest(&Request{Kind: KindStore, Key: []byte("key"), Epoch: 3,
		Siblings: vclock.Siblings{{Dot: vclock.Dot{Actor: "a", Counter: 1}, Value: []byte("v"), WallTime: 5}}})
	n := testing.AllocsPerRun(100, func() {
		if _, ok := decodeRequest(b[1:]); !ok {
			t.Fatal("not decoded")
		}
	})
	// Key, the Siblings array, the actor string and the value.
	if n > 4 {
		t.Fatalf("decoding a store request allocates %v times, want at most 4", n)
	}
}

// FuzzFastDecoders is differential: whatever body the hand-written
// decoders accept, the reflection decoder must accept too and decode to
// the very same value (nil and empty told apart), since a peer cannot
// choose which of the two reads its bytes.
func FuzzFastDecoders(f *testing.F) {
	// Small seeds: the fuzzer mutates and minimizes them quickly.
	sib := vclock.Siblings{
		{Dot: vclock.Dot{Actor: "a", Counter: 1}, Value: []byte("v"), WallTime: 5},
		{Dot: vclock.Dot{Actor: "b", Counter: 300}, Context: vclock.Clock{{Actor: "a", Counter: 1}}, Tombstone: true, WallTime: -1},
	}
	for _, req := range []Request{
		{Kind: KindStore, Key: []byte("k"), Siblings: sib, HintFor: "n3", Epoch: 7},
		{Kind: KindRead, Key: []byte("key")},
		{Kind: KindStore, Key: []byte{}, Siblings: vclock.Siblings{}},
	} {
		f.Add(appendRequest(nil, &req))
	}
	f.Add(appendReply(nil, &Response{Siblings: sib}))
	f.Add([]byte{0x80})                                             // {} reply and empty request
	f.Add([]byte{0x81, 0xa1, 'r', 0x81, 0xa3, 's', 'i', 'b', 0xc0}) // {"r":{"sib":nil}}
	f.Add([]byte{0x81, 0xa1, 'r', 0x81, 0xa3, 's', 'i', 'b', 0x90}) // {"r":{"sib":[]}}
	f.Add([]byte{0x81, 0xa3, 'k', 'e', 'y', 0xc4, 0x00})            // {"key":bin8 ""}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := append([]byte{ProtocolVersion}, body...)
		if fast, ok := decodeRequest(body); ok {
			var slow Request
			if err := unmarshal(b, &slow, checkRequestCounts); err != nil {
				t.Fatalf("request %x: fast decoder accepted %+v, reflection refused: %v", body, fast, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("request %x: fast decode %#v, reflection %#v", body, fast, slow)
			}
		}
		if fast, ok := decodeReply(body); ok {
			var slow wireReply
			if err := unmarshal(b, &slow, checkReplyCounts); err != nil {
				t.Fatalf("reply %x: fast decoder accepted %+v, reflection refused: %v", body, fast, err)
			}
			if slow.Err != nil || !reflect.DeepEqual(fast, slow.Resp) {
				t.Fatalf("reply %x: fast decode %#v, reflection %#v (error %+v)", body, fast, slow.Resp, slow.Err)
			}
		}
	})
}
