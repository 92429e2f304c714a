// Package atomicfile replaces small state files so that a crash at any
// point leaves either the old file or the new one, whole: the identity,
// ACTOR and CLEAN files of storage, gossip's ring-membership file and
// replica's transfers file all go through Write, and the certificates,
// keys and generated configs the CLI writes through Replace. ReadBounded
// reads a file from outside (a certificate, a token, a config) without
// letting its size decide what is allocated.
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

// ErrTooLarge is returned (wrapped, naming the file) by ReadBounded for a
// file longer than its limit.
var ErrTooLarge = errors.New("atomicfile: file too large")

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

// ReadBounded returns the contents of path, refusing with ErrTooLarge a
// file longer than limit bytes, of which it reads no more than limit+1.
// The error of a missing file wraps fs.ErrNotExist.
func ReadBounded(fsys vfs.FS, path string, limit int64) ([]byte, error) {
	b, err := Read(fsys, path, limit)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, path, limit)
	}
	return b, nil
}

// Replace is Write for the file at path, in a directory that may hold a
// temp file an earlier crash left: it removes that first (RemoveStale),
// because Create truncates an existing file and keeps its permissions,
// which the rename would then give the new file. So the file always ends
// up with the mode fsys creates files with (a private key 0600 even over
// a stale world-readable temp), and a link left at the temp name is
// removed, not written through.
func Replace(fsys vfs.FS, path string, data []byte) error {
	dir, name := filepath.Dir(path), filepath.Base(path)
	if err := RemoveStale(fsys, dir, name); err != nil {
		return fmt.Errorf("remove stale temp of %s: %w", path, err)
	}
	return Write(fsys, dir, name, data)
}
