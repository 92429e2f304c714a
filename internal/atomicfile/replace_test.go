package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs"
)

// Replace is Write plus a removal that comes first: a crash before any
// of its steps, with unsynced bytes dropped or torn, still leaves the old
// file or the new one.
func TestReplaceIsAtomicAcrossCrashes(t *testing.T) {
	replace := func(fsys vfs.FS, dir, name string, data []byte) error {
		return Replace(fsys, filepath.Join(dir, name), data)
	}
	for _, b := range checkAtomic(t, replace) {
		t.Error(b)
	}
}

// What an earlier crash or someone else left at the temp name, a torn
// temp file with looser permissions or a link, decides neither the new
// file's contents nor its mode, and is gone afterwards; a link's target
// is not written.
func TestReplaceOverStaleTemp(t *testing.T) {
	leftovers := map[string]func(tmp, victim string) error{
		"torn temp file 0666":  func(tmp, _ string) error { return os.WriteFile(tmp, []byte("half a k"), 0o666) },
		"link to another file": func(tmp, victim string) error { return os.Symlink(victim, tmp) },
	}
	for what, leave := range leftovers {
		for _, mode := range []os.FileMode{0o600, 0o644} {
			dir := t.TempDir()
			path := filepath.Join(dir, "ca.key")
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("victim"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte("old key"), mode); err != nil {
				t.Fatal(err)
			}
			if err := leave(path+TempSuffix, victim); err != nil {
				t.Fatal(err)
			}
			if err := Replace(vfs.OSFS{FileMode: mode}, path, []byte("new key")); err != nil {
				t.Fatalf("%s, mode %#o: %v", what, mode, err)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != "new key" {
				t.Errorf("%s, mode %#o: ca.key reads %q, %v", what, mode, b, err)
			}
			st, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if perm := st.Mode().Perm(); !st.Mode().IsRegular() || perm&^mode != 0 || perm&0o600 != 0o600 {
				t.Errorf("%s, mode %#o: ca.key is %v, want a regular file of at most %#o", what, mode, st.Mode(), mode)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("%s, mode %#o: the directory holds %d entries, want only ca.key", what, mode, len(ents))
			}
			if b, _ := os.ReadFile(victim); string(b) != "victim" {
				t.Errorf("%s, mode %#o: the link's target was written: %q", what, mode, b)
			}
		}
	}
}
