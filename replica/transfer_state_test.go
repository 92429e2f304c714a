package replica

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/vclock"
)

func TestParseTransfers(t *testing.T) {
	good := transferState{Epoch: 4, PlanHash: 1 << 63, Done: []int32{0, 7, 65520}}
	b, err := encodeTransfers("n4", good)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseTransfers(b, "n4")
	if err != nil {
		t.Fatalf("parse of an encoding: %v", err)
	}
	if d := cmp.Diff(good, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	for _, tc := range []struct {
		name string
		body string
		want string // part of the error
	}{
		{"empty", ``, "unexpected end"},
		{"garbage", "\x00\x01", "invalid character"},
		{"not an object", `[1,2]`, "cannot unmarshal"},
		{"format", `{"format":2,"node":"n4","epoch":1,"done":[]}`, "format 2"},
		{"no format", `{"node":"n4","epoch":1,"done":[]}`, "format 0"},
		{"wrong node", `{"format":1,"node":"n5","epoch":1,"done":[]}`, `node "n5"`},
		{"epoch zero", `{"format":1,"node":"n4","epoch":0,"done":[]}`, "epoch 0"},
		{"epoch negative", `{"format":1,"node":"n4","epoch":-1,"done":[]}`, "cannot unmarshal"},
		{"epoch string", `{"format":1,"node":"n4","epoch":"1","done":[]}`, "cannot unmarshal"},
		{"epoch float", `{"format":1,"node":"n4","epoch":1.5,"done":[]}`, "cannot unmarshal"},
		{"done not a list", `{"format":1,"node":"n4","epoch":1,"done":{}}`, "cannot unmarshal"},
		{"partition negative", `{"format":1,"node":"n4","epoch":1,"done":[-1]}`, "partition -1"},
		{"partition too large", `{"format":1,"node":"n4","epoch":1,"done":[65536]}`, "partition 65536"},
		{"partition overflows", `{"format":1,"node":"n4","epoch":1,"done":[99999999999]}`, "cannot unmarshal"},
		{"not ascending", `{"format":1,"node":"n4","epoch":1,"done":[3,2]}`, "ascending"},
		{"duplicate", `{"format":1,"node":"n4","epoch":1,"done":[2,2]}`, "ascending"},
		{"trailing", `{"format":1,"node":"n4","epoch":1,"done":[]}x`, "invalid character"},
		{"huge", `{"format":1,"node":"n4","epoch":1,"done":[` + strings.Repeat(" ", maxTransfersFileBytes) + `]}`, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTransfers([]byte(tc.body), "n4")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadAndSaveTransfers(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadTransfers(vfs.OSFS{}, dir, "n4"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("load without a file = %v, want ErrNotExist", err)
	}
	// A crash between creating and renaming left a temp file.
	if err := os.WriteFile(filepath.Join(dir, TransfersFile+".tmp-123"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := transferState{Epoch: 2, PlanHash: 9, Done: []int32{1, 3}}
	if err := saveTransfers(vfs.OSFS{}, dir, "n4", st); err != nil {
		t.Fatal(err)
	}
	got, err := loadTransfers(vfs.OSFS{}, dir, "n4")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(st, got); d != "" {
		t.Errorf("load after save (-want +got):\n%s", d)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, TransfersFile+".tmp-*")); len(m) != 0 {
		t.Errorf("temp files left behind: %v", m)
	}
	// Huge files are refused after reading no more than the bound.
	path := filepath.Join(dir, TransfersFile)
	if err := os.WriteFile(path, bytes.Repeat([]byte(" "), 3*maxTransfersFileBytes), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTransfers(vfs.OSFS{}, dir, "n4"); !errors.Is(err, ErrBadTransfers) || !strings.Contains(err.Error(), path) {
		t.Errorf("load of a huge file = %v, want ErrBadTransfers naming %s", err, path)
	}
}

func FuzzParseTransfers(f *testing.F) {
	for _, st := range []transferState{
		{Epoch: 1},
		{Epoch: 4, PlanHash: 1 << 63, Done: []int32{0, 7, 65520}},
	} {
		b, err := encodeTransfers("n4", st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":1,"node":"n4","epoch":1,"done":[3,2]}`))
	f.Add([]byte(`{"format":1,"node":"n4","epoch":1,"done":[1e3]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseTransfers(b, "n4")
		if err != nil {
			return
		}
		if st.Epoch == 0 || len(st.Done) > maxTransferPartitions {
			t.Fatalf("accepted %+v", st)
		}
		for i, p := range st.Done {
			if p < 0 || p >= maxTransferPartitions || (i > 0 && st.Done[i-1] >= p) {
				t.Fatalf("accepted done list %v", st.Done)
			}
		}
		again, err := encodeTransfers("n4", st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := parseTransfers(again, "n4")
		if err != nil {
			t.Fatalf("re-encoding does not parse: %v", err)
		}
		if d := cmp.Diff(st, st2, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip changed the state:\n%s", d)
		}
		if !json.Valid(again) {
			t.Fatal("encoding is not JSON")
		}
	})
}

// partOfFirstByte is a partition function for batch checks: the key's
// first byte modulo 4.
func partOfFirstByte(key []byte) int { return int(key[0]) % 4 }

func TestCheckBatch(t *testing.T) {
	_, set := vclock.Mint(nil, "a", vclock.Write{Value: []byte("v")})
	bad := vclock.Siblings{set[0], set[0]} // duplicate dot: not canonical
	big := make(vclock.Siblings, maxWireSiblings+1)
	ent := func(k string, s vclock.Siblings) Entry { return Entry{Key: []byte(k), Siblings: s} }
	// Keys of partition 0: first byte a multiple of 4 ('d' = 100, 'h' = 104, 'l' = 108).
	for _, tc := range []struct {
		name  string
		after string
		resp  Response
		ok    bool
	}{
		{"ascending", "", Response{Batch: []Entry{ent("d1", set), ent("d2", set), ent("h", set)}, More: true}, true},
		{"after the cursor", "d1", Response{Batch: []Entry{ent("d2", set)}}, true},
		{"empty last batch", "", Response{}, true},
		{"empty batch with more", "", Response{More: true}, false},
		{"at the cursor", "d1", Response{Batch: []Entry{ent("d1", set)}}, false},
		{"before the cursor", "h", Response{Batch: []Entry{ent("d9", set)}}, false},
		{"not ascending", "", Response{Batch: []Entry{ent("h", set), ent("d", set)}}, false},
		{"duplicate", "", Response{Batch: []Entry{ent("d", set), ent("d", set)}}, false},
		{"empty key", "", Response{Batch: []Entry{ent("", set)}}, false},
		{"other partition", "", Response{Batch: []Entry{ent("e", set)}}, false},
		{"non-canonical set", "", Response{Batch: []Entry{ent("d", bad)}}, false},
		{"too many siblings", "", Response{Batch: []Entry{ent("d", big)}}, false},
		{"empty set", "", Response{Batch: []Entry{ent("d", nil)}}, false},
		{"over the limit", "", Response{Batch: []Entry{ent("d1", set), ent("d2", set), ent("d3", set), ent("d4", set)}}, false},
		{"negative totals", "", Response{Keys: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var after []byte
			if tc.after != "" {
				after = []byte(tc.after)
			}
			err := checkBatch(partOfFirstByte, 0, after, 3, tc.resp)
			if (err == nil) != tc.ok {
				t.Errorf("checkBatch = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrProtocol) {
				t.Errorf("error %v does not wrap ErrProtocol", err)
			}
		})
	}
}

// FuzzTransferReply runs the puller's decode path for a transfer answer:
// UnmarshalReply, then checkBatch. Whatever passes must be safe to merge:
// keys ascending after the cursor, of the partition, canonical sets.
func FuzzTransferReply(f *testing.F) {
	_, set := vclock.Mint(nil, "a", vclock.Write{Value: []byte("v")})
	_, set2 := vclock.Mint(set, "b", vclock.Write{Tombstone: true})
	for _, r := range []Response{
		{},
		{Batch: []Entry{{Key: []byte("d1"), Siblings: set}, {Key: []byte("h"), Siblings: vclock.Merge(set, set2)}}, More: true, Keys: 10, Bytes: 1000},
		{Batch: []Entry{{Key: []byte("e"), Siblings: set}}},
	} {
		b, err := MarshalReply(r, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte(""))
		f.Add(b, []byte("d1"))
	}
	b, _ := MarshalReply(Response{}, ErrStalePlan)
	f.Add(b, []byte(""))
	f.Fuzz(func(t *testing.T, b, after []byte) {
		resp, err := UnmarshalReply("n1", b)
		if err != nil {
			return
		}
		if checkBatch(partOfFirstByte, 0, after, 3, resp) != nil {
			return
		}
		if len(resp.Batch) > 3 || (resp.More && len(resp.Batch) == 0) {
			t.Fatalf("accepted a batch of %d, more %v", len(resp.Batch), resp.More)
		}
		prev := after
		for _, e := range resp.Batch {
			if len(e.Key) == 0 || bytes.Compare(e.Key, prev) <= 0 || partOfFirstByte(e.Key) != 0 {
				t.Fatalf("accepted key %q after %q", e.Key, prev)
			}
			if len(e.Siblings) == 0 || !e.Siblings.Valid() {
				t.Fatalf("accepted set %v", e.Siblings)
			}
			_ = vclock.Merge(e.Siblings, set) // merging must not panic
			prev = e.Key
		}
	})
}

// TestCollectResults: the results ready are taken with the first, at
// most running in all, without waiting for more.
func TestCollectResults(t *testing.T) {
	ch := make(chan pullResult, 3)
	ch <- pullResult{part: 2}
	ch <- pullResult{part: 3}
	ch <- pullResult{part: 4}
	rs := collectResults(pullResult{part: 1}, ch, 3)
	if len(rs) != 3 || rs[0].part != 1 || rs[2].part != 3 {
		t.Fatalf("collected %+v, want parts 1, 2, 3", rs)
	}
	rs = collectResults(pullResult{part: 5}, ch, 10)
	if len(rs) != 2 || rs[1].part != 4 {
		t.Fatalf("collected %+v, want parts 5, 4", rs)
	}
}
