package hints

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ringkv/ringkv/internal/testkit"
)

// framedSink is a sink behind a transport with a frame limit: a batch
// whose values total more than limit bytes is refused with ErrTooLarge
// without reaching the target, as node's Deliverer reports
// replica.ErrFrameTooLarge.
type framedSink struct {
	*sink
	limit int

	mu      sync.Mutex // guards refused
	refused int
}

func (f *framedSink) Deliver(ctx context.Context, target string, batch []Hint) error {
	n := 0
	for _, h := range batch {
		for _, v := range h.Siblings {
			n += len(v.Value)
		}
	}
	if n > f.limit {
		f.mu.Lock()
		f.refused++
		f.mu.Unlock()
		return fmt.Errorf("%w: %d hints of %d value bytes, frame limit %d", ErrTooLarge, len(batch), n, f.limit)
	}
	return f.sink.Deliver(ctx, target, batch)
}

// A hint larger than the transport can carry, the oldest for its target,
// used to fail every round and hold every other hint back for good. Now
// it is dropped and counted, batches that are too large as a whole are
// split, and every other hint is delivered in the same round.
func TestTooLargeHintDoesNotBlockDelivery(t *testing.T) {
	synctest.Test(t, testTooLargeHintDoesNotBlockDelivery)
}

func testTooLargeHintDoesNotBlockDelivery(t *testing.T) {
	fs := &framedSink{sink: newSink(), limit: 50 << 10}
	cfg := testConfig(t, t.TempDir())
	cfg.Deliverer = fs
	q := openQueue(t, cfg)
	// Stored before Start so that the first round sees them all; the huge
	// one is the oldest and goes first.
	huge := mint(nil, "a", strings.Repeat("h", 300<<10))
	if err := q.StoreHint(t.Context(), "b", []byte("huge"), huge); err != nil {
		t.Fatal(err)
	}
	small := map[string]string{}
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		small[k] = strings.Repeat(string(rune('a'+i)), 10<<10) // 20 x 10 KiB: more than one frame together
		if err := q.StoreHint(t.Context(), "b", []byte(k), mint(nil, "a", small[k])); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "every deliverable hint delivered", func() bool { return q.PendingFor("b").Hints == 0 })
	st := q.Stats()
	if st.DroppedTooLarge != 1 {
		t.Fatalf("DroppedTooLarge = %d, want 1", st.DroppedTooLarge)
	}
	if st.Delivered != 20 {
		t.Fatalf("Delivered = %d, want 20", st.Delivered)
	}
	if fs.get("b", "huge") != nil {
		t.Fatal("the oversized hint reached the target")
	}
	for k, v := range small {
		got := fs.get("b", k)
		if len(got) != 1 || string(got[0].Value) != v {
			t.Fatalf("target holds %d versions for %s, want the hinted one", len(got), k)
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.refused == 0 {
		t.Fatal("no batch was refused: the test did not exercise the limit")
	}
	if st.PendingBytes != 0 {
		t.Fatalf("PendingBytes = %d after the drop, want 0", st.PendingBytes)
	}
}

// A transient failure still ends the round and drops nothing.
func TestTransientFailureKeepsHints(t *testing.T) { synctest.Test(t, testTransientFailureKeepsHints) }

func testTransientFailureKeepsHints(t *testing.T) {
	sk := newSink()
	sk.setFail("b", fmt.Errorf("connection refused"))
	cfg := testConfig(t, t.TempDir())
	cfg.Deliverer = sk
	q := openQueue(t, cfg)
	for i := range 3 {
		if err := q.StoreHint(t.Context(), "b", fmt.Appendf(nil, "k%d", i), mint(nil, "a", "v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, settle, "failed rounds", func() bool { return q.Stats().DeliveryFailures >= 3 })
	if st := q.Stats(); st.DroppedTooLarge != 0 || q.PendingFor("b").Hints != 3 {
		t.Fatalf("after transient failures: dropped %d, pending %d; want 0 and 3", st.DroppedTooLarge, q.PendingFor("b").Hints)
	}
}
