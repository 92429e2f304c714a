package vfstest

import (
	"errors"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs"
)

func TestConformanceOSFS(t *testing.T) { RunFSTests(t, vfs.OSFS{}, t.TempDir()) }

func TestConformanceCrashFS(t *testing.T) { RunFSTests(t, NewCrashFS(), "/data") }

// content returns name's contents in c, or "<missing>".
func content(t *testing.T, c *CrashFS, name string) string {
	t.Helper()
	b, err := c.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCrashDropsUnsynced(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirDurable("/d"); err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("synced")); err != nil {
		t.Fatal(err)
	}
	if got := content(t, c.CrashClone(), "/d/f"); got != "<missing>" {
		t.Errorf("a created file before SyncDir survives the crash as %q", got)
	}
	if err := errors.Join(f.Sync(), c.SyncDir("/d")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("+lost")); err != nil {
		t.Fatal(err)
	}
	if got := content(t, c.CrashClone(), "/d/f"); got != "synced" {
		t.Errorf("after crash %q, want the synced bytes only", got)
	}
	if got := content(t, c, "/d/f"); got != "synced+lost" {
		t.Errorf("the crashed-from FS changed: %q", got)
	}
}

func TestCrashRenameNeedsSyncDir(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirDurable("/d"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, "/d/f", []byte("old"))
	mustWrite(t, c, "/d/f.tmp", []byte("new"))
	if err := c.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("/d/f.tmp", "/d/f"); err != nil {
		t.Fatal(err)
	}
	crashed := c.CrashClone()
	if got := content(t, crashed, "/d/f"); got != "old" {
		t.Errorf("rename without SyncDir: f is %q after the crash, want old", got)
	}
	if got := content(t, crashed, "/d/f.tmp"); got != "new" {
		t.Errorf("rename without SyncDir: f.tmp is %q after the crash, want new", got)
	}
	if err := c.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	crashed = c.CrashClone()
	if got, tmp := content(t, crashed, "/d/f"), content(t, crashed, "/d/f.tmp"); got != "new" || tmp != "<missing>" {
		t.Errorf("after SyncDir: f %q, f.tmp %q; want new and missing", got, tmp)
	}
}

// A torn crash keeps the synced bytes and a prefix of the unsynced tail,
// either as written or as zeros of the same length.
func TestCrashTornKeepsPrefix(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirDurable("/d"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, "/d/log", []byte("head"))
	if err := c.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	f, err := c.OpenAppend("/d/log")
	if err != nil {
		t.Fatal(err)
	}
	const tail = "0123456789"
	if _, err := f.Write([]byte(tail)); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	zeros := 0
	for seed := range uint64(200) {
		got := content(t, c.CrashCloneTorn(rand.New(rand.NewPCG(seed, 1))), "/d/log")
		if len(got) < 4 || len(got) > 4+len(tail) || got[:4] != "head" {
			t.Fatalf("seed %d: torn file %q does not keep the synced bytes and a part of the tail", seed, got)
		}
		switch torn := got[4:]; torn {
		case tail[:len(torn)]:
		case strings.Repeat("\x00", len(torn)):
			zeros++
		default:
			t.Fatalf("seed %d: torn tail %q is neither a prefix of the written one nor zeros", seed, torn)
		}
		seen[len(got)] = true
	}
	if !seen[4] || !seen[4+len(tail)] || len(seen) < 5 {
		t.Errorf("torn lengths seen %v: want the synced length, the full length and cuts between", seen)
	}
	if zeros == 0 {
		t.Error("no torn tail was zeros")
	}
}

// A file truncated or created over since its last Sync comes back from a
// plain crash as synced, and from a torn one either as synced or cut to
// the size it was given.
func TestCrashTruncateMayReachDiskFirst(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirDurable("/d"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, "/d/a", []byte("old contents"))
	mustWrite(t, c, "/d/b", []byte("old contents"))
	if err := c.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	if err := c.Truncate("/d/a", 3); err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("/d/b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if got := content(t, c.CrashClone(), "/d/a") + "|" + content(t, c.CrashClone(), "/d/b"); got != "old contents|old contents" {
		t.Errorf("plain crash: %q, want the synced contents", got)
	}
	seen := map[string]bool{}
	for seed := range uint64(50) {
		cl := c.CrashCloneTorn(rand.New(rand.NewPCG(seed, 2)))
		seen["a="+content(t, cl, "/d/a")] = true
		seen["b="+content(t, cl, "/d/b")] = true
	}
	want := map[string]bool{"a=old contents": true, "a=old": true, "b=old contents": true, "b=": true}
	if !maps.Equal(seen, want) {
		t.Errorf("torn crashes left %v, want exactly %v", seen, want)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := content(t, c.CrashCloneTorn(rand.New(rand.NewPCG(1, 2))), "/d/b"); got != "new" {
		t.Errorf("after Sync: %q, want new", got)
	}
}

func TestHookFailsAndCaptures(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirDurable("/d"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	var before *CrashFS
	c.SetHook(func(op Op, name string) error {
		if op == OpRename {
			before = c.CrashClone()
			return boom
		}
		return nil
	})
	mustWrite(t, c, filepath.Join("/d", "a"), []byte("x"))
	if err := c.Rename("/d/a", "/d/b"); !errors.Is(err, boom) {
		t.Fatalf("Rename: %v, want the hook's error", err)
	}
	if before == nil || content(t, c, "/d/a") != "x" {
		t.Error("the failed rename changed the FS or the hook did not run")
	}
	if got := content(t, before, "/d/a"); got != "<missing>" {
		t.Errorf("the state before the rename (no SyncDir yet) holds a as %q", got)
	}
}

// A directory MkdirAll made is an entry of its parent: a crash before the
// parent is synced takes it away, with a file synced inside it.
// vfs.MkdirAllSynced syncs the parents it has to; MkdirDurable needs none.
func TestCrashMkdirNeedsParentSync(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirDurable("/root"); err != nil {
		t.Fatal(err)
	}
	if err := c.MkdirAll("/root/a/b"); err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("/root/a/b/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Sync(), f.Close(), c.SyncDir("/root/a/b")); err != nil {
		t.Fatal(err)
	}
	if got := content(t, c.CrashClone(), "/root/a/b/f"); got != "<missing>" {
		t.Errorf("a file in directories whose parents were never synced survives as %q", got)
	}
	if err := c.SyncDir("/root/a"); err != nil {
		t.Fatal(err)
	}
	if got := content(t, c.CrashClone(), "/root/a/b/f"); got != "<missing>" {
		t.Errorf("with /root unsynced the file survives as %q", got)
	}
	if err := c.SyncDir("/root"); err != nil {
		t.Fatal(err)
	}
	if got := content(t, c.CrashClone(), "/root/a/b/f"); got != "data" {
		t.Errorf("with every parent synced the file is %q, want data", got)
	}

	if err := vfs.MkdirAllSynced(c, "/root/x/y/z"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CrashClone().List("/root/x/y/z"); err != nil {
		t.Errorf("after MkdirAllSynced the directory is lost in a crash: %v", err)
	}
}
