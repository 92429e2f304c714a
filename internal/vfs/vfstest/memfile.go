package vfstest

import (
	"io"
	"io/fs"
	"slices"

	"github.com/ringkv/ringkv/internal/vfs"
)

// memFile is an open CrashFS file. A file opened for reading reads from
// its offset; one opened for writing appends, as every vfs.File writer
// does.
type memFile struct {
	fs   *CrashFS
	n    *node
	name string
	read bool
	// off and closed are guarded by fs.mu.
	off    int
	closed bool
}

var _ vfs.File = (*memFile)(nil)

func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, pathErr("read", f.name, fs.ErrClosed)
	}
	if !f.read {
		return 0, pathErr("read", f.name, fs.ErrPermission)
	}
	if f.off >= len(f.n.data) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[f.off:])
	f.off += n
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	if err := f.fs.before(OpWrite, f.name); err != nil {
		return 0, err
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, pathErr("write", f.name, fs.ErrClosed)
	}
	if f.read {
		return 0, pathErr("write", f.name, fs.ErrPermission)
	}
	f.n.data = append(f.n.data, p...)
	return len(p), nil
}

// Sync makes the file's contents, not its directory entry, durable.
func (f *memFile) Sync() error {
	if err := f.fs.before(OpSync, f.name); err != nil {
		return err
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("sync", f.name, fs.ErrClosed)
	}
	f.n.synced = slices.Clone(f.n.data)
	f.n.cut = -1
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, pathErr("stat", f.name, fs.ErrClosed)
	}
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	return nil
}
