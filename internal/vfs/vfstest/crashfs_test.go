package vfstest

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
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
	if err := c.MkdirAll("/d"); err != nil {
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
	if err := c.MkdirAll("/d"); err != nil {
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

func TestCrashTornKeepsPrefix(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirAll("/d"); err != nil {
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
	for seed := range uint64(200) {
		got := content(t, c.CrashCloneTorn(rand.New(rand.NewPCG(seed, 1))), "/d/log")
		if len(got) < 4 || got != ("head" + tail)[:len(got)] {
			t.Fatalf("seed %d: torn file %q is not a prefix of the written bytes that keeps the synced ones", seed, got)
		}
		seen[len(got)] = true
	}
	if !seen[4] || !seen[4+len(tail)] || len(seen) < 5 {
		t.Errorf("torn lengths seen %v: want the synced length, the full length and cuts between", seen)
	}
}

func TestHookFailsAndCaptures(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirAll("/d"); err != nil {
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
