package vfs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// syncRecorder is OSFS recording the directories it syncs.
type syncRecorder struct {
	OSFS
	synced []string
}

func (r *syncRecorder) SyncDir(dir string) error {
	r.synced = append(r.synced, dir)
	return r.OSFS.SyncDir(dir)
}

// MkdirAllSynced syncs the closest existing ancestor and every directory
// it created above the new one, and nothing when the directory exists.
func TestMkdirAllSynced(t *testing.T) {
	root := t.TempDir()
	r := &syncRecorder{}
	dir := filepath.Join(root, "a", "b", "c")
	if err := MkdirAllSynced(r, dir); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("%s not made: %v", dir, err)
	}
	want := []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")}
	if !slices.Equal(r.synced, want) {
		t.Errorf("synced %v, want %v", r.synced, want)
	}

	r.synced = nil
	if err := MkdirAllSynced(r, dir+"/"); err != nil {
		t.Fatal(err)
	}
	if len(r.synced) != 0 {
		t.Errorf("an existing directory synced %v, want nothing", r.synced)
	}

	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := MkdirAllSynced(r, filepath.Join(file, "sub"))
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a directory under a file: err = %v, want not a directory", err)
	}
}
