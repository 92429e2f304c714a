package hints

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// concurrent returns n concurrent versions, one per actor, actors named
// from prefix.
func concurrent(prefix string, n int) vclock.Siblings {
	var s vclock.Siblings
	for i := range n {
		s = vclock.Merge(s, mint(nil, fmt.Sprintf("%s%d", prefix, i), "v"))
	}
	return s
}

// TestMergedHintOverWireBound: a key's merged pending set may not grow past
// vclock.MaxSiblings (no peer would accept it, and its record would not
// load): the hint that would take it there is refused and counted as
// dropped, what was pending stays, and the log reopens.
func TestMergedHintOverWireBound(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	q := openQueue(t, cfg)
	half := vclock.MaxSiblings*3/5 + 1
	if err := q.StoreHint(t.Context(), "n2", []byte("k"), concurrent("a", half)); err != nil {
		t.Fatalf("first StoreHint: %v", err)
	}
	err := q.StoreHint(t.Context(), "n2", []byte("k"), concurrent("b", half))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("second StoreHint: err = %v, want ErrTooLarge", err)
	}
	if st := q.Stats(); st.DroppedTooLarge != 1 || st.Stored != 1 {
		t.Fatalf("stats %+v, want 1 stored and 1 dropped as too large", st)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2 := openQueue(t, cfg)
	if p := q2.PendingFor("n2"); p.Hints != 1 {
		t.Fatalf("after reopen %d hints pending, want 1", p.Hints)
	}
}

// TestOpenSkipsOverBoundRecord: a log written by a binary that did not
// bound merged sets may hold a record over vclock.MaxSiblings. Open must
// not fail on the node's own log: the record is skipped and counted, and
// the key keeps what its earlier records held.
func TestOpenSkipsOverBoundRecord(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir).withDefaults()
	small := concurrent("a", 3)
	big := vclock.Merge(small, concurrent("b", vclock.MaxSiblings))
	wal, err := storage.OpenLog(cfg.logConfig(filepath.Join(dir, dirName("n2"))))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []vclock.Siblings{small, big} {
		rec, err := encodeRecord([]byte("k"), s, cfg.Clock.Now().UnixNano())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wal.Append(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := wal.Close(); err != nil {
		t.Fatal(err)
	}
	q := openQueue(t, testConfig(t, dir))
	if st := q.Stats(); st.DroppedTooLarge != 1 {
		t.Fatalf("DroppedTooLarge = %d, want 1", st.DroppedTooLarge)
	}
	q.mu.Lock()
	got := q.targets["n2"].index["k"].sibs
	q.mu.Unlock()
	if !got.Equal(small) {
		t.Fatalf("pending set has %d versions, want the %d of the record before", len(got), len(small))
	}
}
