package vfs_test

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs"
)

func TestCheckPrivateDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows keeps no unix modes")
	}
	mkdir := func(t *testing.T, mode os.FileMode) string {
		dir := filepath.Join(t.TempDir(), "d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, mode := range []os.FileMode{0o700, 0o750, 0o755, os.ModeSetgid | 0o750} {
		if err := vfs.CheckPrivateDir(mkdir(t, mode)); err != nil {
			t.Errorf("mode %v: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o777, 0o703, 0o757} {
		if err := vfs.CheckPrivateDir(mkdir(t, mode)); !errors.Is(err, vfs.ErrNotPrivate) {
			t.Errorf("mode %v: %v, want ErrNotPrivate", mode, err)
		}
	}
	t.Run("own private group", func(t *testing.T) {
		u, err := user.Current()
		if err != nil {
			t.Skip(err)
		}
		g, err := user.LookupGroupId(strconv.Itoa(os.Getegid()))
		if err != nil || g.Name != u.Username {
			t.Skipf("the primary group of %s is not its own private group", u.Username)
		}
		for _, mode := range []os.FileMode{0o770, 0o775, os.ModeSetgid | 0o770} {
			if err := vfs.CheckPrivateDir(mkdir(t, mode)); err != nil {
				t.Errorf("mode %v, group %s: %v", mode, g.Name, err)
			}
		}
	})
	t.Run("shared group", func(t *testing.T) {
		dir := mkdir(t, 0o770)
		// A group other than the user's own: root can give the directory
		// one; anyone else needs a second group of their own.
		other := os.Getegid() + 1
		if err := os.Chown(dir, -1, other); err != nil {
			t.Skipf("cannot give the directory another group: %v", err)
		}
		if err := vfs.CheckPrivateDir(dir); !errors.Is(err, vfs.ErrNotPrivate) {
			t.Errorf("group-writable, group %d: %v, want ErrNotPrivate", other, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		err := vfs.CheckPrivateDir(filepath.Join(t.TempDir(), "none"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v, want ErrNotExist", err)
		}
	})
}
