package vfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func writeMode(t *testing.T, name string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte("x"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func modeOf(t *testing.T, name string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// The chmod goes through a handle opened without following links: a link
// (as an entry swapped for one after the walk saw it would be) has its
// target left alone.
func TestChmodNoFollow(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	writeMode(t, target, 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	from, to, err := chmodNoFollow(link, false, 0o600, os.Geteuid())
	if err != nil || from != to {
		t.Fatalf("chmodNoFollow on a link: %#o->%#o, %v; want no change", from, to, err)
	}
	if got := modeOf(t, target); got != 0o644 {
		t.Errorf("the link's target changed to %#o", got)
	}
	from, to, err = chmodNoFollow(target, false, 0o600, os.Geteuid())
	if err != nil || from != 0o644 || to != 0o600 || modeOf(t, target) != 0o600 {
		t.Errorf("chmodNoFollow on the file: %#o->%#o, %v, mode now %#o", from, to, err, modeOf(t, target))
	}
}
