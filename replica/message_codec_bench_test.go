package replica

import (
	"fmt"
	"testing"

	"github.com/ringkv/ringkv/vclock"
)

func BenchmarkFastRequestCodec(b *testing.B) {
	for _, n := range []int{1, 4} {
		var s vclock.Siblings
		for i := range n {
			_, s2 := vclock.Mint(nil, fmt.Sprintf("actor-%d", i), vclock.Write{Value: make([]byte, 100), Context: vclock.Clock{{Actor: "ctx", Counter: 7}}, WallTime: 1 << 60})
			s = vclock.Merge(s, s2)
		}
		req := Request{Kind: KindStore, Key: []byte("some-key-0001"), Siblings: s}
		b.Run(fmt.Sprintf("op=encode/siblings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				buf = appendRequest(buf[:0], &req)
			}
		})
		enc := appendRequest(nil, &req)
		b.Run(fmt.Sprintf("op=decode/siblings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := decodeRequest(enc); !ok {
					b.Fatal("fast decode refused")
				}
			}
		})
	}
}

// BenchmarkStoreCodecPath compares the hand-written store request codec
// with msgpack reflection, which carries the set with vclock's codec too
// (Siblings' msgpack methods): the measure of whether the fast path still
// earns its code.
func BenchmarkStoreCodecPath(b *testing.B) {
	for _, n := range []int{1, 4} {
		var s vclock.Siblings
		for i := range n {
			_, s2 := vclock.Mint(nil, fmt.Sprintf("actor-%d", i), vclock.Write{Value: make([]byte, 100), Context: vclock.Clock{{Actor: "ctx", Counter: 7}}, WallTime: 1 << 60})
			s = vclock.Merge(s, s2)
		}
		req := Request{Kind: KindStore, Key: []byte("some-key-0001"), Siblings: s, Epoch: 3}
		enc, err := marshalRequest(&req)
		if err != nil {
			b.Fatal(err)
		}
		for _, path := range []string{"fast", "reflect"} {
			b.Run(fmt.Sprintf("op=encode/siblings=%d/path=%s", n, path), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if path == "fast" {
						_, err = marshalRequest(&req)
					} else {
						_, err = marshal(&req)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("op=decode/siblings=%d/path=%s", n, path), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if path == "fast" {
						if _, ok := decodeRequest(enc[1:]); !ok {
							b.Fatal("fast decode refused")
						}
					} else {
						var r Request
						if err := unmarshal(enc, &r, checkRequestCounts); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
		resp := Response{Siblings: s}
		renc, err := MarshalReply(resp, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, path := range []string{"fast", "reflect"} {
			b.Run(fmt.Sprintf("op=reply_encode/siblings=%d/path=%s", n, path), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if path == "fast" {
						_, err = MarshalReply(resp, nil)
					} else {
						_, err = marshal(&wireReply{Resp: resp})
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("op=reply_decode/siblings=%d/path=%s", n, path), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if path == "fast" {
						if _, ok := decodeReply(renc[1:]); !ok {
							b.Fatal("fast decode refused")
						}
					} else {
						var w wireReply
						if err := unmarshal(renc, &w, checkReplyCounts); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
