package node

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs/vfstest"
)

// Everything a node writes in its data directory is the node's alone
// (files 0600, directories 0700 by default), and what an older version
// left more open is tightened at start.
func TestDataDirectoryModes(t *testing.T) {
	cfg := testConfig(t, "n1")
	dir := cfg.DataDir()
	// As an older version, or a looser umask, would have left them.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "hints", "old")
	if err := os.MkdirAll(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(loose, "note"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(loose, "note"), 0o644); err != nil {
		t.Fatal(err)
	}
	rn := startNode(t, cfg)
	if err := rn.stop(t); err != nil {
		t.Fatal(err)
	}
	checkModes(t, dir, 0o600, 0o700)
	for _, name := range []string{"IDENTITY", "ACTOR", "CLEAN", "ring-membership.json", "wal"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("expected %s in the data directory: %v", name, err)
		}
	}

	// storage.file_mode opens them up to the group, and no further.
	cfg.Storage.FileMode = "0640"
	rn = startNode(t, cfg)
	if err := rn.stop(t); err != nil {
		t.Fatal(err)
	}
	checkModes(t, dir, 0o640, 0o750)
	// What the node wrote since then is created with the wider mode (less
	// what the umask takes): CLEAN is written anew at every clean stop.
	// What was there keeps its mode: nothing is opened up.
	umask, ok := processUmask(t)
	if !ok {
		t.Skip("umask unknown (no Umask line in /proc/self/status): the exact mode cannot be predicted")
	}
	if got, want := vfstest.ModeOf(t, filepath.Join(dir, "CLEAN")), fs.FileMode(0o640)&^umask; got != want {
		t.Errorf("CLEAN written under file_mode 0640 has mode %#o, want %#o (umask %#o)", got, want, umask)
	}
	if got := vfstest.ModeOf(t, filepath.Join(dir, "IDENTITY")); got != 0o600 {
		t.Errorf("IDENTITY, written once under 0600, has mode %#o after a start under 0640", got)
	}
}

// processUmask reads the umask without setting it (syscall.Umask would
// change it for every goroutine meanwhile).
func processUmask(t *testing.T) (fs.FileMode, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatalf("Umask line %q: %v", line, err)
			}
			return fs.FileMode(m), true
		}
	}
	return 0, false
}

// checkModes fails for any entry under dir with a permission beyond file
// (files) or dirMode (directories).
func checkModes(t *testing.T, dir string, file, dirMode fs.FileMode) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		allowed := file
		if d.IsDir() {
			allowed = dirMode
		}
		if perm := info.Mode().Perm(); perm&^allowed != 0 {
			t.Errorf("%s has mode %#o, more than %#o", path, perm, allowed)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("walked only %d entries under %s", n, dir)
	}
}

func TestFileModeConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want fs.FileMode
		ok   bool
	}{
		{"0600", 0o600, true}, {"600", 0o600, true}, {"0o640", 0o640, true}, {"0644", 0o644, true},
		{"0400", 0, false}, {"0700", 0, false}, {"0999", 0, false}, {"", 0, false}, {"01600", 0, false},
	} {
		got, err := StorageConfig{FileMode: tc.in}.fileMode()
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("file_mode %q: got %#o, %v; want %#o, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
