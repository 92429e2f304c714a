package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/internal/vfs/vfstest"
)

type writeFunc func(fsys vfs.FS, dir, name string, data []byte) error

// crashStates runs write of data over a file holding old ("" for none) on
// a CrashFS, crashing before every operation it makes and after its
// return, plain and torn, and returns what the file reads after each
// crash and recovery (RemoveStale then Read): "<missing>" for no file.
func crashStates(t *testing.T, write writeFunc, old, data string) []string {
	t.Helper()
	c := vfstest.NewCrashFS()
	if err := c.MkdirDurable("/d"); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := Write(c, "/d", "state", []byte(old)); err != nil {
			t.Fatal(err)
		}
	}
	crashed, err := vfstest.CrashPoints(c, rand.New(rand.NewPCG(1, 2)), func(c *vfstest.CrashFS) error {
		return write(c, "/d", "state", []byte(data))
	})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, cc := range crashed {
		if err := RemoveStale(cc, "/d", "state"); err != nil {
			t.Fatal(err)
		}
		b, err := Read(cc, "/d/state", 1<<20)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			states = append(states, "<missing>")
		case err != nil:
			t.Fatal(err)
		default:
			states = append(states, string(b))
		}
		if names, _ := cc.List("/d"); len(names) > 1 {
			t.Errorf("recovery left %q", names)
		}
	}
	return states
}

// checkAtomic reports every crash state of write that is neither the old
// file nor the new one.
func checkAtomic(t *testing.T, write writeFunc) (bad []string) {
	t.Helper()
	for _, old := range []string{"", "old contents"} {
		const data = "new contents, longer than the old"
		want := map[string]bool{old: true, data: true}
		if old == "" {
			want = map[string]bool{"<missing>": true, data: true}
		}
		states := crashStates(t, write, old, data)
		for i, s := range states {
			if !want[s] {
				bad = append(bad, fmt.Sprintf("old %q, crash %d: file reads %q", old, i, s))
			}
		}
		if last := states[len(states)-1]; last != data {
			bad = append(bad, fmt.Sprintf("old %q: after Write returned, a crash leaves %q", old, last))
		}
	}
	return bad
}

func TestWriteIsAtomicAcrossCrashes(t *testing.T) {
	for _, b := range checkAtomic(t, Write) {
		t.Error(b)
	}
}

// The crash check must catch the mistakes it exists for: a writer that
// skips the file fsync before the rename (a crash can leave a torn or
// empty file under the real name), and one that skips the directory
// fsync (a crash after it returned loses the new file).
func TestCrashCheckCatchesMissingFsyncs(t *testing.T) {
	noFileSync := func(fsys vfs.FS, dir, name string, data []byte) error {
		tmp := filepath.Join(dir, name+TempSuffix)
		f, err := fsys.Create(tmp)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			return err
		}
		if err := errors.Join(f.Close(), fsys.Rename(tmp, filepath.Join(dir, name))); err != nil {
			return err
		}
		return fsys.SyncDir(dir)
	}
	noDirSync := func(fsys vfs.FS, dir, name string, data []byte) error {
		return Write(skipSyncDir{fsys}, dir, name, data)
	}
	for name, w := range map[string]writeFunc{"no file fsync": noFileSync, "no dir fsync": noDirSync} {
		if bad := checkAtomic(t, w); len(bad) == 0 {
			t.Errorf("%s: the crash check found nothing wrong", name)
		}
	}
}

type skipSyncDir struct{ vfs.FS }

func (skipSyncDir) SyncDir(string) error { return nil }

func TestWriteFailureLeavesOldFile(t *testing.T) {
	c := vfstest.NewCrashFS()
	if err := c.MkdirDurable("/d"); err != nil {
		t.Fatal(err)
	}
	if err := Write(c, "/d", "state", []byte("old")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	for _, op := range []vfstest.Op{vfstest.OpCreate, vfstest.OpWrite, vfstest.OpSync, vfstest.OpRename} {
		c.SetHook(func(o vfstest.Op, _ string) error {
			if o == op {
				return boom
			}
			return nil
		})
		if err := Write(c, "/d", "state", []byte("new")); !errors.Is(err, boom) {
			t.Errorf("%s fails: Write returned %v", op, err)
		}
		c.SetHook(nil)
		if b, _ := c.ReadFile("/d/state"); string(b) != "old" {
			t.Errorf("%s fails: state reads %q, want old", op, b)
		}
		if names, _ := c.List("/d"); len(names) != 1 {
			t.Errorf("%s fails: directory holds %q, want the temp file removed", op, names)
		}
	}
}

func TestRemoveStale(t *testing.T) {
	c := vfstest.NewCrashFS()
	if err := c.MkdirDurable("/d"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"state", "state.tmp", "state.tmp-123", "other.tmp", "statex.tmp"} {
		f, err := c.Create(filepath.Join("/d", n))
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
	if err := RemoveStale(c, "/d", "state"); err != nil {
		t.Fatal(err)
	}
	names, _ := c.List("/d")
	if fmt.Sprint(names) != "[other.tmp state statex.tmp]" {
		t.Errorf("left %q", names)
	}
	if err := RemoveStale(c, "/missing", "state"); err != nil {
		t.Errorf("missing directory: %v", err)
	}
}

func TestReadBounded(t *testing.T) {
	c := vfstest.NewCrashFS()
	if err := c.MkdirDurable("/d"); err != nil {
		t.Fatal(err)
	}
	if err := Write(c, "/d", "big", make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	b, err := Read(c, "/d/big", 10)
	if err != nil || len(b) != 11 {
		t.Errorf("Read with limit 10 of 100 bytes: %d bytes, %v; want 11", len(b), err)
	}
	if _, err := Read(c, "/d/none", 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	for _, tc := range []struct {
		limit int64
		err   error
	}{{99, ErrTooLarge}, {100, nil}, {101, nil}} {
		b, err := ReadBounded(c, "/d/big", tc.limit)
		if !errors.Is(err, tc.err) || (err == nil && len(b) != 100) {
			t.Errorf("ReadBounded with limit %d of 100 bytes: %d bytes, %v; want error %v", tc.limit, len(b), err, tc.err)
		}
	}
	if _, err := ReadBounded(c, "/d/none", 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadBounded of a missing file: %v", err)
	}
}
