package vfstest

import (
	"io/fs"
	"os"
	"testing"
)

// WriteMode writes a one-byte file name with permission bits mode, set
// past the umask, on the real filesystem: a file for the tests of
// permission tightening to find.
func WriteMode(t testing.TB, name string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte("x"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// ModeOf is the permission bits of name itself (a link's own, not its
// target's) on the real filesystem.
func ModeOf(t testing.TB, name string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}
