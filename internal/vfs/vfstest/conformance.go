package vfstest

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs"
)

// RunFSTests checks that fsys behaves as vfs.FS promises, under the
// existing, empty directory root. Every implementation runs it, OSFS and
// CrashFS alike, so that the fake cannot drift from the real thing.
func RunFSTests(t *testing.T, fsys vfs.FS, root string) {
	t.Run("WriteReadAppend", func(t *testing.T) { testWriteReadAppend(t, fsys, root) })
	t.Run("RenameReplaces", func(t *testing.T) { testRenameReplaces(t, fsys, root) })
	t.Run("RemoveTruncateList", func(t *testing.T) { testRemoveTruncateList(t, fsys, root) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, fsys, root) })
	t.Run("Lock", func(t *testing.T) { testLock(t, fsys, root) })
	if d, ok := fsys.(vfs.DirFS); ok {
		t.Run("DirFS", func(t *testing.T) { testDirFS(t, d, root) })
	}
	if x, ok := fsys.(vfs.ExclFS); ok {
		t.Run("CreateExcl", func(t *testing.T) { testCreateExcl(t, x, root) })
	}
}

func testCreateExcl(t *testing.T, fsys vfs.ExclFS, root string) {
	name := filepath.Join(root, "excl")
	f, err := fsys.CreateExcl(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f2, err := fsys.CreateExcl(name); !errors.Is(err, fs.ErrExist) {
		if err == nil {
			_ = f2.Close()
		}
		t.Errorf("CreateExcl of an existing file: %v, want fs.ErrExist", err)
	}
	if b := mustRead(t, fsys, name); b != "first" {
		t.Errorf("after a refused CreateExcl the file reads %q, want first", b)
	}
}

func testDirFS(t *testing.T, fsys vfs.DirFS, root string) {
	dir := filepath.Join(root, "dirfs")
	for _, sub := range []string{"b", "a", "a/deep"} {
		if err := fsys.MkdirAll(filepath.Join(dir, sub)); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, fsys, filepath.Join(dir, "file"), []byte("x"))
	mustWrite(t, fsys, filepath.Join(dir, "a", "deep", "f"), []byte("y"))
	names, err := fsys.ListDirs(dir)
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("ListDirs = %q, %v; want [a b]", names, err)
	}
	if err := fsys.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.RemoveAll(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("RemoveAll of a missing directory: %v", err)
	}
	names, err = fsys.List(dir)
	if err != nil || !slices.Equal(names, []string{"b", "file"}) {
		t.Errorf("after RemoveAll, List = %q, %v; want [b file]", names, err)
	}
}

func mustWrite(t *testing.T, fsys vfs.FS, name string, data []byte) {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, fsys vfs.FS, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testWriteReadAppend(t *testing.T, fsys vfs.FS, root string) {
	dir := filepath.Join(root, "wra", "sub")
	if err := fsys.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "f")
	mustWrite(t, fsys, name, []byte("hello"))
	f, err := fsys.OpenAppend(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(" world")); err != nil {
		t.Fatal(err)
	}
	if size, err := f.Size(); err != nil || size != 11 {
		t.Errorf("Size = %d, %v; want 11", size, err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, fsys, name); got != "hello world" {
		t.Errorf("read %q after append", got)
	}
	mustWrite(t, fsys, name, []byte("new"))
	if got := mustRead(t, fsys, name); got != "new" {
		t.Errorf("read %q after Create of an existing file, want it truncated", got)
	}
	if err := fsys.SyncDir(dir); err != nil {
		t.Errorf("SyncDir: %v", err)
	}
}

func testRenameReplaces(t *testing.T, fsys vfs.FS, root string) {
	dir := filepath.Join(root, "rename")
	if err := fsys.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	mustWrite(t, fsys, a, []byte("A"))
	mustWrite(t, fsys, b, []byte("B"))
	if err := fsys.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, fsys, b); got != "A" {
		t.Errorf("b reads %q after rename, want A", got)
	}
	if _, err := fsys.Open(a); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open a after rename: %v, want fs.ErrNotExist", err)
	}
}

func testRemoveTruncateList(t *testing.T, fsys vfs.FS, root string) {
	dir := filepath.Join(root, "rtl")
	if err := fsys.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"c", "a", "b"} {
		mustWrite(t, fsys, filepath.Join(dir, n), []byte("12345"))
	}
	if err := fsys.Remove(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Truncate(filepath.Join(dir, "a"), 2); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, fsys, filepath.Join(dir, "a")); got != "12" {
		t.Errorf("a reads %q after Truncate(2)", got)
	}
	names, err := fsys.List(dir)
	if err != nil || !slices.Equal(names, []string{"a", "c"}) {
		t.Errorf("List = %q, %v; want [a c]", names, err)
	}
}

func testMissing(t *testing.T, fsys vfs.FS, root string) {
	missing := filepath.Join(root, "missing")
	if _, err := fsys.Open(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open: %v, want fs.ErrNotExist", err)
	}
	if _, err := fsys.OpenAppend(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenAppend: %v, want fs.ErrNotExist", err)
	}
	if err := fsys.Remove(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove: %v, want fs.ErrNotExist", err)
	}
	if _, err := fsys.List(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List: %v, want fs.ErrNotExist", err)
	}
	if _, err := fsys.Create(filepath.Join(missing, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create in a missing directory: %v, want fs.ErrNotExist", err)
	}
}

func testLock(t *testing.T, fsys vfs.FS, root string) {
	name := filepath.Join(root, "LOCK")
	l, err := fsys.Lock(name)
	if err != nil {
		t.Fatal(err)
	}
	if l2, err := fsys.Lock(name); err == nil {
		_ = l2.Close()
		t.Error("a second Lock of a held lock succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = fsys.Lock(name)
	if err != nil {
		t.Fatalf("Lock after Close: %v", err)
	}
	_ = l.Close()
}
