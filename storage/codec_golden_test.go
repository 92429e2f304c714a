package storage

import (
	"bytes"
	"github.com/ringkv/ringkv/internal/testkit"
	"strings"
	"testing"
)

// testdata/old_entries.hex holds entries in each form ("2", "3", "4"
// element arrays) and testdata/old_snapshot.hex a whole snapshot, as the
// storage codec wrote them before it shared vclock's: they must decode,
// and encode back to the same bytes, since the on-disk form is unchanged.
func TestDecodesOldEntries(t *testing.T) {
	n := 0
	for _, line := range testkit.ReadHexFile(t, "testdata/old_entries.hex") {
		form, b := line.Label, line.Bytes
		e, err := newEntryDecoder(99).decode(b)
		if err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		var again []byte
		switch form {
		case "2":
			again = appendEntryV1(nil, e.key, e.s)
			if e.recv != 99 {
				t.Fatalf("line %d: old form got recv %d, want the default", n+1, e.recv)
			}
		case "3":
			again = appendEntry(nil, e.key, e.s, e.recv)
		case "4":
			again = appendEntryCandidate(nil, e.key, e.s, e.recv, e.cand)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("line %d: re-encoded as\n%x\nwant\n%x", n+1, again, b)
		}
		n++
	}
	if n != 20 {
		t.Fatalf("read %d entries, want 20", n)
	}

	snap := testkit.ReadHexFile(t, "testdata/old_snapshot.hex")[0].Bytes
	var keys []string
	h, err := decodeSnapshot(snap, 0, func(e decodedEntry) { keys = append(keys, string(e.key)) })
	if err != nil {
		t.Fatal(err)
	}
	if h.NodeID != "node-1" || h.Incarnation != "inc-a" || h.StartSegment != 7 || strings.Join(keys, ",") != "key-b,key-c,key-d,key-e" {
		t.Fatalf("snapshot decoded as %+v with keys %v", h, keys)
	}
}
