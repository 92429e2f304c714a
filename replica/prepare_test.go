package replica

import (
	"bytes"
	"testing"

	"github.com/ringkv/ringkv/vclock"
)

// TestPreparedRequestSameBytes: a request encoded once for many sends is
// byte for byte what encoding it per send gives, the cached bytes never
// reach the wire themselves, and it decodes to the same request.
func TestPreparedRequestSameBytes(t *testing.T) {
	set := vclock.Siblings{{Dot: vclock.Dot{Actor: "a", Counter: 3}, Value: []byte("v"), Context: vclock.Clock{{Actor: "a", Counter: 2}}}}
	r := Request{Kind: KindStore, Key: []byte("k"), Siblings: set, Epoch: 7}
	plain, err := MarshalRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	p := prepare(r)
	if p.Encoded == nil {
		t.Fatal("prepare left no encoding")
	}
	got, err := MarshalRequest(p)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("prepared bytes %x (%v), want %x", got, err, plain)
	}
	// The cache itself never goes on the wire: the reflection encoder
	// (whose integers are wider than the fast encoder's) gives the same
	// bytes with and without it.
	again, err := marshal(&p)
	want, _ := marshal(&r)
	if err != nil || !bytes.Equal(again, want) {
		t.Fatalf("a prepared request encodes to %x, want %x", again, want)
	}
	back, err := UnmarshalRequest(got)
	if err != nil || back.Kind != KindStore || string(back.Key) != "k" || back.Epoch != 7 || len(back.Siblings) != 1 {
		t.Fatalf("decoded %+v, %v", back, err)
	}
}
