package replica

import (
	"reflect"
	"testing"

	"github.com/ringkv/ringkv/internal/testkit"
	"github.com/ringkv/ringkv/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// goldenSet is a sibling set with every field and integer width in use.
func goldenSet(actor string) vclock.Siblings {
	return vclock.Siblings{
		{Dot: vclock.Dot{Actor: actor, Counter: 1 << 33}, Context: vclock.Clock{{Actor: "a", Counter: 3}, {Actor: "c", Counter: 65536}}, Value: []byte("value"), WallTime: 1_700_000_000_000_000_000},
		{Dot: vclock.Dot{Actor: actor + "2", Counter: 127}, Tombstone: true, WallTime: -5},
	}
}

// goldenRequests and goldenResponses are the messages off the fast path
// (they carry sets inside a forwarded write, a batch or a reply's
// context) whose bytes, as an older binary's reflection encoder wrote
// them, testdata/old_reflect_messages.hex holds.
func goldenRequests() []Request {
	return []Request{
		{Kind: KindForward, Key: []byte("k1"), Epoch: 3, Write: &ForwardWrite{Value: []byte("v"), Context: vclock.Clock{{Actor: "a", Counter: 1}, {Actor: "b", Counter: 1 << 40}}, HasContext: true, W: 2}},
		{Kind: KindForward, Key: []byte("k2"), Write: &ForwardWrite{Delete: true, HasContext: true, Strict: true}},
		{Kind: KindHandoff, Batch: []Entry{{Key: []byte("k3"), Siblings: goldenSet("n1")}, {Key: []byte("k4"), Siblings: goldenSet("n2")}}},
		{Kind: KindFetch, Partition: 5, AEQuery: &AEQuery{Keys: [][]byte{[]byte("k5")}}},
	}
}

func goldenResponses() []Response {
	return []Response{
		{Siblings: goldenSet("n1"), Context: vclock.Clock{{Actor: "n1", Counter: 1 << 33}, {Actor: "n12", Counter: 127}}, Replies: 2, Hinted: 1},
		{Batch: []Entry{{Key: []byte("k3"), Siblings: goldenSet("n3")}}, More: true, Keys: 10, Bytes: 1000},
	}
}

// testdata/old_reflect_messages.hex holds goldenRequests and
// goldenResponses as a node running the binary before the shared codec
// sends them (msgpack reflection, integers in 9 bytes).
func TestDecodesOldReflectMessages(t *testing.T) {
	msgs := oldReflectMessages(t)
	reqs, resps := goldenRequests(), goldenResponses()
	if len(msgs) != len(reqs)+len(resps) {
		t.Fatalf("%d messages, want %d", len(msgs), len(reqs)+len(resps))
	}
	for i, b := range msgs {
		if i < len(reqs) {
			got, err := UnmarshalRequest(b)
			if err != nil || !reflect.DeepEqual(got, reqs[i]) {
				t.Fatalf("request %d decoded as %+v, %v; want %+v", i, got, err, reqs[i])
			}
			continue
		}
		got, err := UnmarshalReply("n", b)
		if want := resps[i-len(reqs)]; err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("reply %d decoded as %+v, %v; want %+v", i, got, err, want)
		}
	}
}

// oldReflectMessages returns the messages of
// testdata/old_reflect_messages.hex, requests first.
func oldReflectMessages(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, l := range testkit.ReadHexFile(tb, "testdata/old_reflect_messages.hex") {
		out = append(out, l.Bytes)
	}
	return out
}

// Plain mirrors of the message types, without the codec's methods on
// sets and clocks: how the reflection decoder of a node running the binary
// before the shared codec reads a message.
type (
	plainDot struct {
		_msgpack struct{} `msgpack:",as_array"`
		Actor    string
		Counter  uint64
	}
	plainVersion struct {
		_msgpack  struct{} `msgpack:",as_array"`
		Dot       plainDot
		Context   []plainDot
		Value     []byte
		Tombstone bool
		WallTime  int64
	}
	plainEntry struct {
		_msgpack struct{} `msgpack:",as_array"`
		Key      []byte
		Siblings []plainVersion
	}
	plainWrite struct {
		Value      []byte     `msgpack:"v"`
		Delete     bool       `msgpack:"del"`
		Context    []plainDot `msgpack:"ctx"`
		HasContext bool       `msgpack:"hasctx"`
		W          Quorum     `msgpack:"w"`
		Strict     bool       `msgpack:"strict"`
	}
	plainRequest struct {
		Kind      Kind           `msgpack:"k"`
		Key       []byte         `msgpack:"key"`
		Siblings  []plainVersion `msgpack:"sib"`
		Write     *plainWrite    `msgpack:"fw"`
		Batch     []plainEntry   `msgpack:"batch"`
		Epoch     uint64         `msgpack:"ep"`
		Partition int32          `msgpack:"part"`
		Keys      [][]byte       `msgpack:"keys"`
		Hint      string         `msgpack:"hint"`
	}
	plainResponse struct {
		Siblings []plainVersion `msgpack:"sib"`
		Context  []plainDot     `msgpack:"ctx"`
		Replies  int            `msgpack:"n"`
		Hinted   int            `msgpack:"hinted"`
		Batch    []plainEntry   `msgpack:"batch"`
		More     bool           `msgpack:"more"`
		Keys     int64          `msgpack:"pk"`
		Bytes    int64          `msgpack:"pb"`
	}
	plainReply struct {
		Resp plainResponse `msgpack:"r"`
	}
)

func (d plainDot) dot() vclock.Dot { return vclock.Dot{Actor: d.Actor, Counter: d.Counter} }

func plainClock(c []plainDot) vclock.Clock {
	if c == nil {
		return nil
	}
	out := make(vclock.Clock, len(c))
	for i, d := range c {
		out[i] = d.dot()
	}
	return out
}

func plainSiblings(s []plainVersion) vclock.Siblings {
	if s == nil {
		return nil
	}
	out := make(vclock.Siblings, len(s))
	for i, v := range s {
		out[i] = vclock.Version{Dot: v.Dot.dot(), Context: plainClock(v.Context), Value: v.Value, Tombstone: v.Tombstone, WallTime: v.WallTime}
	}
	return out
}

func plainBatch(b []plainEntry) []Entry {
	if b == nil {
		return nil
	}
	out := make([]Entry, len(b))
	for i, e := range b {
		out[i] = Entry{Key: e.Key, Siblings: plainSiblings(e.Siblings)}
	}
	return out
}

// TestOldDecoderReadsNewMessages decodes what this binary sends, fast path
// or not, as a node running the binary before the shared codec does.
func TestOldDecoderReadsNewMessages(t *testing.T) {
	reqs := append(goldenRequests(), Request{Kind: KindStore, Key: []byte("k"), Siblings: goldenSet("n9"), HintFor: "n2", Epoch: 9})
	for i, r := range reqs {
		b, err := MarshalRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		var p plainRequest
		if err := msgpack.Unmarshal(b[1:], &p); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got := Request{Kind: p.Kind, Key: p.Key, Siblings: plainSiblings(p.Siblings), HintFor: p.Hint, Batch: plainBatch(p.Batch), Epoch: p.Epoch, Partition: p.Partition}
		if p.Write != nil {
			w := *p.Write
			got.Write = &ForwardWrite{Value: w.Value, Delete: w.Delete, Context: plainClock(w.Context), HasContext: w.HasContext, W: w.W, Strict: w.Strict}
		}
		if p.Keys != nil {
			got.AEQuery = &AEQuery{Keys: p.Keys}
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("request %d: old decoder read %+v, want %+v", i, got, r)
		}
	}
	for i, r := range goldenResponses() {
		b, err := MarshalReply(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		var p plainReply
		if err := msgpack.Unmarshal(b[1:], &p); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		q := p.Resp
		got := Response{Siblings: plainSiblings(q.Siblings), Context: plainClock(q.Context), Replies: q.Replies, Hinted: q.Hinted,
			Batch: plainBatch(q.Batch), More: q.More, Keys: q.Keys, Bytes: q.Bytes}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("reply %d: old decoder read %+v, want %+v", i, got, r)
		}
	}
}
