package gossip

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/ring"
)

func TestPersistRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := Map{"n1": {StatusJoined, 2, "127.0.0.1:1", ""}, "n2": {StatusRemoved, 5, "127.0.0.1:2", ""}}
	p := ring.NewPlan([]string{"n1", "n2"}, 9).MoveTo([]string{"n1"}, 10)
	if err := saveState(vfs.OSFS{}, dir, "n1", m, p); err != nil {
		t.Fatal(err)
	}
	got, gotPlan, err := loadState(vfs.OSFS{}, dir, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(p, gotPlan); diff != "" {
		t.Errorf("plan round trip (-want +got):\n%s", diff)
	}
	// Overwrite with a newer map and plan: the file is replaced, no temp
	// files stay.
	m2 := Merge(m, Map{"n3": {StatusJoined, 1, "127.0.0.1:3", ""}})
	p2 := p.Commit(11)
	if err := saveState(vfs.OSFS{}, dir, "n1", m2, p2); err != nil {
		t.Fatal(err)
	}
	if got, gotPlan, _ := loadState(vfs.OSFS{}, dir, "n1"); !cmp.Equal(m2, got) || !cmp.Equal(p2, gotPlan) {
		t.Errorf("after overwrite got %v %+v, want %v %+v", got, gotPlan, m2, p2)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != StateFile {
		t.Errorf("dir holds %v, want only %s", entries, StateFile)
	}
}

func TestLoadStateMissingIsEmpty(t *testing.T) {
	got, p, err := loadState(vfs.OSFS{}, t.TempDir(), "n1")
	if err != nil || len(got) != 0 || p.Known() {
		t.Fatalf("loadState(empty dir) = %v, %+v, %v; want empty map, no plan", got, p, err)
	}
}

// TestLoadStateFormats: a file from before plans (format 1) loads with the
// plan of its ring members at version 0 (so that any plan a cluster made
// wins over it), none if it has none; a format-2 file without a plan (none
// known when saved) has none; the plan is written only when known, and
// the file says format 2.
func TestLoadStateFormats(t *testing.T) {
	row := Map{"n1": {StatusJoined, 2, "127.0.0.1:1", ""}}
	tests := []struct {
		name string
		body string
		plan ring.Plan
	}{
		{"format 1", `{"format":1,"node":"n1","members":{"n1":{"status":"joined","version":2,"addr":"127.0.0.1:1"}}}`, ring.NewPlan([]string{"n1"}, 0)},
		{"format 1 ignores a plan key", `{"format":1,"node":"n1","members":{"n1":{"status":"joined","version":2,"addr":"127.0.0.1:1"}},"plan":{"epoch":3,"version":1,"members":["n1"]}}`, ring.NewPlan([]string{"n1"}, 0)},
		{"format 2 without plan", `{"format":2,"node":"n1","members":{"n1":{"status":"joined","version":2,"addr":"127.0.0.1:1"}}}`, ring.Plan{}},
		{"format 2 with plan", `{"format":2,"node":"n1","members":{"n1":{"status":"joined","version":2,"addr":"127.0.0.1:1"}},"plan":{"epoch":3,"version":1,"members":["n1"],"target":["n1","n2"]}}`,
			ring.Plan{Epoch: 3, Version: 1, Members: []string{"n1"}, Target: []string{"n1", "n2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			m, p, err := loadState(vfs.OSFS{}, dir, "n1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(row, m); diff != "" {
				t.Errorf("map (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.plan, p); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(`{"format":1,"node":"n1","members":{"n1":{"status":"left","version":2}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, p, err := loadState(vfs.OSFS{}, dir, "n1"); err != nil || p.Known() {
		t.Errorf("format 1 file without ring members: plan %+v, %v; want none", p, err)
	}
	if err := saveState(vfs.OSFS{}, dir, "n1", row, ring.Plan{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"format": 2`) || strings.Contains(string(b), `"plan"`) {
		t.Errorf("file without a known plan:\n%s", b)
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
		{"future format", `{"format":3,"node":"n1","members":{}}`, "format 3"},
		{"unsorted plan", `{"format":2,"node":"n1","members":{},"plan":{"epoch":1,"version":1,"members":["b","a"]}}`, "sorted"},
		{"plan with a bad name", `{"format":2,"node":"n1","members":{},"plan":{"epoch":1,"version":1,"members":["a/b"]}}`, "a/b"},
		{"plan with empty target", `{"format":2,"node":"n1","members":{},"plan":{"epoch":2,"version":1,"members":["a"],"target":[]}}`, "empty"},
		{"plan epoch 0 with members", `{"format":2,"node":"n1","members":{},"plan":{"epoch":0,"version":1,"members":["a"]}}`, "epoch 0"},
		{"other node's file", `{"format":1,"node":"n9","members":{}}`, `"n9"`},
		{"bad status", `{"format":1,"node":"n1","members":{"n1":{"status":"zombie","version":1}}}`, "zombie"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := loadState(vfs.OSFS{}, dir, "n1")
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
	if _, _, err := loadState(vfs.OSFS{}, dir, "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file still there: %v", err)
	}
}

func TestSaveStateMissingDir(t *testing.T) {
	err := saveState(vfs.OSFS{}, filepath.Join(t.TempDir(), "nope"), "n1", Map{}, ring.Plan{})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("saveState(missing dir) = %v, want an error naming the dir", err)
	}
}
