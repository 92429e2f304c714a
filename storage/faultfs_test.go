package storage

import (
	"io"
	"sync"
)

// faultFS wraps OSFS and fails chosen operations: fail is asked before
// each mutating operation (op is "write", "sync", "create", "rename",
// "remove", "syncdir") with the file's path, and its error is returned
// instead of doing the operation.
type faultFS struct {
	OSFS
	mu   sync.Mutex
	fail func(op, name string) error
}

var _ FS = (*faultFS)(nil)

func (f *faultFS) check(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		return nil
	}
	return f.fail(op, name)
}

func (f *faultFS) setFail(fn func(op, name string) error) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

type faultFile struct {
	File
	fs   *faultFS
	name string
}

func (f faultFile) Write(p []byte) (int, error) {
	if err := f.fs.check("write", f.name); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f faultFile) Sync() error {
	if err := f.fs.check("sync", f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFS) Create(name string) (File, error) {
	if err := f.check("create", name); err != nil {
		return nil, err
	}
	file, err := f.OSFS.Create(name)
	if err != nil {
		return nil, err
	}
	return faultFile{file, f, name}, nil
}

func (f *faultFS) OpenAppend(name string) (File, error) {
	file, err := f.OSFS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return faultFile{file, f, name}, nil
}

func (f *faultFS) Rename(o, n string) error {
	if err := f.check("rename", n); err != nil {
		return err
	}
	return f.OSFS.Rename(o, n)
}

func (f *faultFS) Remove(name string) error {
	if err := f.check("remove", name); err != nil {
		return err
	}
	return f.OSFS.Remove(name)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.check("syncdir", dir); err != nil {
		return err
	}
	return f.OSFS.SyncDir(dir)
}

func (f *faultFS) Lock(name string) (io.Closer, error) { return f.OSFS.Lock(name) }
