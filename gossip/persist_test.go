package gossip

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPersistRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := Map{"n1": {StatusJoined, 2, "127.0.0.1:1"}, "n2": {StatusRemoved, 5, "127.0.0.1:2"}}
	if err := saveState(dir, "n1", m); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Overwrite with a newer map: the file is replaced, no temp files stay.
	m2 := Merge(m, Map{"n3": {StatusJoined, 1, "127.0.0.1:3"}})
	if err := saveState(dir, "n1", m2); err != nil {
		t.Fatal(err)
	}
	if got, _ := loadState(dir, "n1"); !cmp.Equal(m2, got) {
		t.Errorf("after overwrite got %v, want %v", got, m2)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != StateFile {
		t.Errorf("dir holds %v, want only %s", entries, StateFile)
	}
}

func TestLoadStateMissingIsEmpty(t *testing.T) {
	got, err := loadState(t.TempDir(), "n1")
	if err != nil || len(got) != 0 {
		t.Fatalf("loadState(empty dir) = %v, %v; want empty map", got, err)
	}
}

func TestLoadStateRejects(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // in the error text
	}{
		{"not json", "{", StateFile},
		{"torn write", `{"format":1,"node":"n1","members":{"n1":{"status":"jo`, StateFile},
		{"future format", `{"format":2,"node":"n1","members":{}}`, "format 2"},
		{"other node's file", `{"format":1,"node":"n9","members":{}}`, `"n9"`},
		{"bad status", `{"format":1,"node":"n1","members":{"n1":{"status":"zombie","version":1}}}`, "zombie"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadState(dir, "n1")
			if !errors.Is(err, ErrBadState) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("loadState = %v, want ErrBadState mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLoadStateDropsStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, StateFile+".tmp-123")
	if err := os.WriteFile(stale, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(dir, "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file still there: %v", err)
	}
}

func TestSaveStateMissingDir(t *testing.T) {
	err := saveState(filepath.Join(t.TempDir(), "nope"), "n1", Map{})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("saveState(missing dir) = %v, want an error naming the dir", err)
	}
}
