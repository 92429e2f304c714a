package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs/vfstest"
)

// A data directory reached through a symbolic link is tightened like any
// other: the link is resolved, not taken for an entry to leave alone.
func TestTightenSymlinkedDataDir(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(real, 0o755); err != nil {
		t.Fatal(err)
	}
	vfstest.WriteMode(t, filepath.Join(real, "old"), 0o644)
	link := filepath.Join(t.TempDir(), "data")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	e := openT(t, testConfig(t, link))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := vfstest.ModeOf(t, real); got != 0o700 {
		t.Errorf("data directory behind the link has mode %#o, want 0700", got)
	}
	if got := vfstest.ModeOf(t, filepath.Join(real, "old")); got != 0o600 {
		t.Errorf("file under the linked data directory has mode %#o, want 0600", got)
	}
}

// Open tightens nothing in a directory another process holds: it takes
// the lock first.
func TestTightenAfterLock(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	e := openT(t, cfg)
	defer e.Close()
	loose := filepath.Join(dir, "loose")
	vfstest.WriteMode(t, loose, 0o644)
	if e2, err := Open(cfg); err == nil {
		_ = e2.Close()
		t.Fatal("a second Open of a locked directory succeeded")
	}
	if got := vfstest.ModeOf(t, loose); got != 0o644 {
		t.Errorf("a refused Open changed %s to %#o", loose, got)
	}
}

// Entries another user owns (a root-owned lost+found on a mount point)
// are left alone and reported, and do not stop the node from starting.
func TestTightenSkipsEntriesOfOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give entries another owner")
	}
	const other = 65534
	dir := t.TempDir()
	lost := filepath.Join(dir, "lost+found")
	if err := os.Mkdir(lost, 0o755); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign")
	vfstest.WriteMode(t, foreign, 0o644)
	own := filepath.Join(dir, "own")
	vfstest.WriteMode(t, own, 0o644)
	for _, name := range []string{lost, foreign} {
		if err := os.Chmod(name, vfstest.ModeOf(t, name)|0o055); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(name, other, other); err != nil {
			t.Fatal(err)
		}
	}
	res, err := OSFS{}.Tighten(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := vfstest.ModeOf(t, lost); got != 0o755 {
		t.Errorf("another user's directory changed to %#o", got)
	}
	if got := vfstest.ModeOf(t, foreign); got != 0o655 {
		t.Errorf("another user's file changed to %#o", got)
	}
	if got := vfstest.ModeOf(t, own); got != 0o600 {
		t.Errorf("own file has mode %#o, want 0600", got)
	}
	if res.SkippedTotal != 2 || res.ChangedTotal < 1 || !strings.Contains(strings.Join(res.Skipped, " "), "owned by uid 65534") {
		t.Errorf("result %+v, want 2 skipped (owned by uid %d) and own changed", res, other)
	}
	e := openT(t, testConfig(t, dir))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// A directory the node may not read is skipped with a report, not an
// error that stops the node.
func TestTightenSkipsUnreadableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every directory")
	}
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	vfstest.WriteMode(t, filepath.Join(locked, "inside"), 0o644)
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(locked, 0o700) }) // so TempDir can remove it
	res, err := OSFS{}.Tighten(dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.SkippedTotal != 1 || !strings.Contains(res.Skipped[0], "permission denied") {
		t.Errorf("result %+v, want the locked directory skipped", res)
	}
}
