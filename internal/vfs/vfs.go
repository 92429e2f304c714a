// Package vfs is the filesystem seam of ringkv's durable state: the
// storage engine, the hint logs and the small atomically replaced state
// files all write through FS, so that tests can run them on a filesystem
// that simulates crashes (see vfstest) and check fsync and rename order.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// File is an open file as ringkv uses it. A File from Create
// or OpenAppend is written sequentially; one from Open is only read.
type File interface {
	io.Reader
	io.Writer
	io.Closer
	// Sync flushes the file's data to stable storage (fsync).
	Sync() error
	// Size returns the file's current size in bytes.
	Size() (int64, error)
}

// FS is the filesystem seam of the storage engine, the hint logs and the
// atomic file writer. The operating system's is OSFS; tests wrap it to
// inject disk errors or use vfstest's crash-simulating memory filesystem. Implementations must be safe
// for concurrent use. Names are full paths.
type FS interface {
	// MkdirAll creates dir and its parents.
	MkdirAll(dir string) error
	// Open opens an existing file for reading.
	Open(name string) (File, error)
	// Create creates or truncates a file for writing.
	Create(name string) (File, error)
	// OpenAppend opens an existing file for appending.
	OpenAppend(name string) (File, error)
	// Rename atomically replaces newName with oldName.
	Rename(oldName, newName string) error
	// Remove deletes a file.
	Remove(name string) error
	// Truncate cuts a file to size bytes.
	Truncate(name string, size int64) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// SyncDir fsyncs a directory so that creations, renames and removals
	// in it survive a crash.
	SyncDir(dir string) error
	// Lock takes an exclusive advisory lock on the file name (creating it)
	// so that two processes never open one data directory; Close releases.
	Lock(name string) (io.Closer, error)
}

// DefaultFileMode is the permission of every file a node writes in its data
// directory (etcd's choice): the data, hints and identity are the node's
// alone. Directories get DirMode(DefaultFileMode), 0700.
const DefaultFileMode os.FileMode = 0o600

// DirMode returns the directory permission that goes with file mode m:
// search (x) wherever read is allowed, so 0600 gives 0700 and 0640 0750.
func DirMode(m os.FileMode) os.FileMode {
	m &= 0o666
	return m | (m&0o444)>>2
}

// OSFS is the operating system's filesystem. It creates files with at most
// FileMode and directories with at most DirMode(FileMode) (the umask may
// take more away); zero FileMode means DefaultFileMode.
type OSFS struct {
	FileMode os.FileMode
}

var _ FS = OSFS{}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (o OSFS) fileMode() os.FileMode {
	if o.FileMode == 0 {
		return DefaultFileMode
	}
	return o.FileMode
}

// MkdirAll implements FS.
func (o OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, DirMode(o.fileMode())) }

// Open implements FS.
func (OSFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Create implements FS.
func (o OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, o.fileMode())
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// OpenAppend implements FS.
func (o OSFS) OpenAppend(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, o.fileMode())
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Rename implements FS.
func (OSFS) Rename(oldName, newName string) error { return os.Rename(oldName, newName) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Truncate implements FS.
func (OSFS) Truncate(name string, size int64) error { return os.Truncate(name, size) }

// List implements FS.
func (OSFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// Lock implements FS with flock(2); the lock dies with the process, so a
// SIGKILLed node never leaves a stale lock behind.
func (o OSFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, o.fileMode())
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		if lockUnsupported(err) {
			return nil, err
		}
		return nil, fmt.Errorf("lock %s: another process (or Engine) has this directory open: %w", filepath.Base(name), err)
	}
	return f, nil
}

// DirFS is the optional interface of an FS that also tells directories
// from files and removes whole trees; OSFS implements it. The hint queue,
// which keeps one directory per target node, needs it.
type DirFS interface {
	FS
	// ListDirs returns the names (not paths) of the directories in dir,
	// sorted; other entries are left out.
	ListDirs(dir string) ([]string, error)
	// RemoveAll removes dir and everything under it; a missing dir is
	// not an error.
	RemoveAll(dir string) error
}

var _ DirFS = OSFS{}

// ListDirs implements DirFS.
func (OSFS) ListDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// RemoveAll implements DirFS.
func (OSFS) RemoveAll(dir string) error { return os.RemoveAll(dir) }

// ExclFS is the optional interface of an FS that can create a file only
// where nothing is yet; OSFS and vfstest's CrashFS implement it.
// atomicfile.Replace needs it: its temp file sits in a directory that
// someone else may be able to write, who could otherwise plant a link or
// a file with loose permissions there for a key to be written through.
type ExclFS interface {
	FS
	// CreateExcl creates name for writing. When any entry is at name
	// already, a link included (which it never follows), it fails with
	// an error wrapping fs.ErrExist.
	CreateExcl(name string) (File, error)
}

var _ ExclFS = OSFS{}

// CreateExcl implements ExclFS.
func (o OSFS) CreateExcl(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY|oNoFollow, o.fileMode())
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}
