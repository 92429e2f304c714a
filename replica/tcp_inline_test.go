package replica

import (
	"bufio"
	"context"
	"sync"
	"testing"
	"time"
)

// inlineHandler serves reads in line (InlineHandler) and blocks stores
// until release is closed.
type inlineHandler struct {
	release chan struct{}
	mu      sync.Mutex // guards reads
	reads   int
}

func (h *inlineHandler) Inline(k Kind) bool { return k == KindRead }

func (h *inlineHandler) Handle(ctx context.Context, _ string, req Request) (Response, error) {
	if req.Kind == KindRead {
		h.mu.Lock()
		h.reads++
		h.mu.Unlock()
		return Response{Replies: 1}, nil
	}
	select {
	case <-h.release:
		return Response{Replies: 2}, nil
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
}

// TestTCPInlineCalls: calls an InlineHandler serves in line are answered,
// those of one write together, while a call on a worker blocks; the
// blocked call is answered once released.
func TestTCPInlineCalls(t *testing.T) {
	h := &inlineHandler{release: make(chan struct{})}
	_, addr := serveOn(t, "srv", "", h, nil)
	nc := rawHello(t, addr, ProtocolVersion)
	w, r := bufio.NewWriter(nc), bufio.NewReader(nc)
	_ = nc.SetDeadline(time.Now().Add(realSocketTimeout))
	send := func(id uint64, kind Kind) {
		body, err := MarshalRequest(Request{Kind: kind, Key: []byte("k")})
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFrame(w, &frame{typ: frameRequest, id: id, budget: int64(time.Minute), body: body}); err != nil {
			t.Fatal(err)
		}
	}
	send(1, KindStore) // blocks its worker
	for id := uint64(2); id <= 5; id++ {
		send(id, KindRead)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]int{2: 1, 3: 1, 4: 1, 5: 1}
	for range 4 {
		f, err := readFrame(r, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := UnmarshalReply("srv", f.body)
		if err != nil || resp.Replies != want[f.id] {
			t.Fatalf("answer to %d: %+v, %v; want Replies %d", f.id, resp, err, want[f.id])
		}
		delete(want, f.id)
	}
	close(h.release)
	f, err := readFrame(r, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := UnmarshalReply("srv", f.body); f.id != 1 || err != nil || resp.Replies != 2 {
		t.Fatalf("answer %d: %+v, %v; want the store's", f.id, resp, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reads != 4 {
		t.Fatalf("%d reads served, want 4", h.reads)
	}
}
