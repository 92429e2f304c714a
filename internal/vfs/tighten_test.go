package vfs_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/internal/vfs/vfstest"
)

// The chmod goes through a handle opened without following links: a link
// (as an entry swapped for one after the walk saw it would be) has its
// target left alone.
func TestChmodNoFollow(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	vfstest.WriteMode(t, target, 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	from, to, err := vfs.ChmodNoFollow(link, false, 0o600, os.Geteuid())
	if err != nil || from != to {
		t.Fatalf("chmodNoFollow on a link: %#o->%#o, %v; want no change", from, to, err)
	}
	if got := vfstest.ModeOf(t, target); got != 0o644 {
		t.Errorf("the link's target changed to %#o", got)
	}
	from, to, err = vfs.ChmodNoFollow(target, false, 0o600, os.Geteuid())
	if err != nil || from != 0o644 || to != 0o600 || vfstest.ModeOf(t, target) != 0o600 {
		t.Errorf("chmodNoFollow on the file: %#o->%#o, %v, mode now %#o", from, to, err, vfstest.ModeOf(t, target))
	}
}
