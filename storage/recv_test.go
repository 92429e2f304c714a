package storage

import (
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// A key's receipt time is the engine clock's time of its last change,
// survives a crash through the WAL, and is the open time for WAL records
// written before receipt times existed.
func TestReceiptTime(t *testing.T) {
	clk := newFakeClock()
	dir := t.TempDir()
	e := gcEngine(t, dir, clk)
	t1 := clk.Now().UnixNano()
	put(t, e, "k", "v1")
	s := e.Get([]byte("k"))
	clk.Advance(time.Hour)
	applyT(t, e, "k", s) // changes nothing
	if got := recvOf(e, "k"); got != t1 {
		t.Fatalf("a no-op Apply moved the receipt time: %d -> %d", t1, got)
	}
	put(t, e, "j", "v")
	t2 := clk.Now().UnixNano()
	crash(t, e)

	clk.Advance(time.Hour)
	e = gcEngine(t, dir, clk)
	if recvOf(e, "k") != t1 || recvOf(e, "j") != t2 {
		t.Fatalf("after a crash: receipt times %d, %d; want %d, %d", recvOf(e, "k"), recvOf(e, "j"), t1, t2)
	}
	put(t, e, "k", "v2")
	if got := recvOf(e, "k"); got != clk.Now().UnixNano() {
		t.Fatalf("a change did not move the receipt time: %d", got)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// A record in the old form, appended by hand.
	lc := testConfig(t, dir).logConfig()
	l, err := OpenLog(lc)
	if err != nil {
		t.Fatal(err)
	}
	_, old := vclock.Mint(nil, "coord", vclock.Write{Value: []byte("old")})
	if _, err := l.Append(t.Context(), appendEntryV1(nil, []byte("old"), old)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	opened := clk.Now().UnixNano()
	e = gcEngine(t, dir, clk)
	defer e.Close()
	if !e.Get([]byte("old")).Equal(old) || recvOf(e, "old") != opened {
		t.Fatalf("old-form record: set %v, receipt time %d, want the open time %d", e.Get([]byte("old")), recvOf(e, "old"), opened)
	}
}
