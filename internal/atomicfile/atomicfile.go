// Package atomicfile replaces small state files so that a crash at any
// point leaves either the old file or the new one, whole: the identity,
// ACTOR and CLEAN files of storage, gossip's ring-membership file and
// replica's transfers file all go through Write.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/ringkv/ringkv/internal/vfs"
)

// TempSuffix ends the name of the temp file Write makes next to its
// target: name + TempSuffix.
const TempSuffix = ".tmp"

// Write replaces dir/name with data: it writes dir/name.tmp, fsyncs it,
// renames it over dir/name and fsyncs dir. The order matters: without the
// file fsync a crash after the rename could leave an empty or partial
// file under the final name, and without the directory fsync the rename
// itself may be lost. On error the temp file is removed (best effort) and
// dir/name is unchanged, unless only the directory fsync failed. Writes
// of one name must not run concurrently: callers serialise them.
func Write(fsys vfs.FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+TempSuffix)
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	err = writeSync(f, tmp, data)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", tmp, cerr)
	}
	if err == nil {
		if rerr := fsys.Rename(tmp, filepath.Join(dir, name)); rerr != nil {
			err = fmt.Errorf("rename %s to %s: %w", tmp, name, rerr)
		}
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

func writeSync(f vfs.File, tmp string, data []byte) error {
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	return nil
}

// RemoveStale removes the temp files of name in dir that a crash during
// Write left behind: name.tmp, and name.tmp-* made by older builds, which
// used random temp names. They were never the state of record. It returns
// the first error other than a missing directory.
func RemoveStale(fsys vfs.FS, dir, name string) error {
	names, err := fsys.List(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, n := range names {
		if n == name+TempSuffix || strings.HasPrefix(n, name+TempSuffix+"-") {
			if err := fsys.Remove(filepath.Join(dir, n)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Read returns the contents of path, reading at most limit+1 bytes so
// that a caller can tell a file of limit bytes from a longer one (hostile
// or damaged) without reading it all. The error of a missing file wraps
// fs.ErrNotExist.
func Read(fsys vfs.FS, path string, limit int64) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}
