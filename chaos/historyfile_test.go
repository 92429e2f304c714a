package chaos

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHistoryFileRoundTrip(t *testing.T) {
	ops, finals := simulate(3, 200, 3, 2)
	ops[5].Outcome, ops[5].Err = Unknown, "context deadline exceeded"
	ops[6].Outcome, ops[6].Err, ops[6].Node = Failed, `503 {"unavailable":true} <&>`, "127.0.0.1:8001"
	finals[1].Values, finals[1].Err = nil, "timeout"
	windows := []FaultWindow{
		{Kind: FaultCut, Nodes: []string{"n1", "n2"}, Detail: "n1,n2 <-/-> n3", Start: t0, End: t0.Add(time.Second)},
		{Kind: FaultKill, Nodes: []string{"n3"}, Start: t0.Add(2 * time.Second)},
	}
	path := filepath.Join(t.TempDir(), "history.jsonl")
	if err := WriteHistory(path, ops, windows, finals); err != nil {
		t.Fatal(err)
	}
	gotOps, gotWindows, gotFinals, err := ReadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ops, gotOps); d != "" {
		t.Errorf("ops (-want +got):\n%s", d)
	}
	if d := cmp.Diff(windows, gotWindows); d != "" {
		t.Errorf("windows (-want +got):\n%s", d)
	}
	if d := cmp.Diff(finals, gotFinals); d != "" {
		t.Errorf("finals (-want +got):\n%s", d)
	}
	want, got := Check(ops, finals, CheckConfig{StrictReads: true}), Check(gotOps, gotFinals, CheckConfig{StrictReads: true})
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("check of the file differs (-want +got):\n%s", d)
	}
}

func TestReadHistoryBad(t *testing.T) {
	header := `{"type":"header","version":1}` + "\n"
	op := `{"type":"op","client":1,"kind":"write","key":"k","value":"v","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z","outcome":"ok"}` + "\n"
	cases := map[string]string{
		"empty":          "",
		"no header":      op,
		"other version":  `{"type":"header","version":2}` + "\n" + op,
		"two headers":    header + header,
		"unknown type":   header + `{"type":"nope"}` + "\n",
		"bad kind":       header + strings.Replace(op, `"write"`, `"delete"`, 1),
		"bad outcome":    header + strings.Replace(op, `"ok"`, `"fine"`, 1),
		"not json":       header + "{\n",
		"bad time":       header + strings.Replace(op, "2026-01-01T00:00:00Z", "yesterday", 1),
		"line too long":  header + `{"type":"op","key":"` + strings.Repeat("x", maxHistoryLine) + `"}` + "\n",
		"window not obj": header + `{"type":"window","nodes":"n1"}` + "\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "h.jsonl")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, _, err := ReadHistory(path)
			if !errors.Is(err, ErrHistoryFile) {
				t.Fatalf("ReadHistory = %v, want ErrHistoryFile", err)
			}
		})
	}
}
