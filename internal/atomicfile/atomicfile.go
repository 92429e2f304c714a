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
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ringkv/ringkv/internal/vfs"
)

// ErrTooLarge is returned (wrapped, naming the file) by ReadBounded for a
// file longer than its limit. Its text has no package prefix: operators
// read it in the CLI's errors, where "atomicfile:" would say nothing.
var ErrTooLarge = errors.New("file too large")

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
	return finish(fsys, f, tmp, dir, name, data)
}

// finish writes data to f, the new temp file tmp, and renames it over
// dir/name as Write describes.
func finish(fsys vfs.FS, f vfs.File, tmp, dir, name string, data []byte) error {
	err := writeSync(f, tmp, data)
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
	return removeStale(fsys, dir, name, false)
}

// removeStale is RemoveStale; dotted also removes .name.tmp*, the
// os.CreateTemp names of the CLI's writes in older builds.
func removeStale(fsys vfs.FS, dir, name string, dotted bool) error {
	names, err := fsys.List(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, n := range names {
		if n == name+TempSuffix || strings.HasPrefix(n, name+TempSuffix+"-") ||
			dotted && strings.HasPrefix(n, "."+name+TempSuffix) {
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

// createTries bounds Replace's attempts at a fresh temp name: a clash
// of random names is rare enough that repeated ones mean something else
// is wrong.
const createTries = 8

// Replace is Write for the file at path, for files in a directory that
// someone else may be able to write (certificates, keys, configs). Its
// temp file has a random name (name.tmp-RANDOM) and is created only where
// nothing is (vfs.ExclFS), so a link or a loosely permitted file planted
// at the temp name is never written through, the new file always gets
// the mode fsys creates files with, and two concurrent Replaces never
// share a temp file. It first removes the temp files of earlier crashed
// writes (RemoveStale, and .name.tmp* of older builds, which were copies
// of private keys too). fsys must implement vfs.ExclFS.
func Replace(fsys vfs.FS, path string, data []byte) error {
	ex, ok := fsys.(vfs.ExclFS)
	if !ok {
		return fmt.Errorf("replace %s: %T cannot create a file exclusively", path, fsys)
	}
	dir, name := filepath.Dir(path), filepath.Base(path)
	if err := removeStale(fsys, dir, name, true); err != nil {
		return fmt.Errorf("remove stale temp of %s: %w", path, err)
	}
	for range createTries {
		tmp := filepath.Join(dir, name+TempSuffix+"-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := ex.CreateExcl(tmp)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", tmp, err)
		}
		return finish(fsys, f, tmp, dir, name, data)
	}
	return fmt.Errorf("replace %s: %d random temp names were all taken", path, createTries)
}
