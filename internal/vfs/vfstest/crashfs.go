// Package vfstest holds test filesystems for vfs.FS: CrashFS, an
// in-memory filesystem that simulates a machine crash (in the style of
// pebble's vfs.NewCrashableMem), and RunFSTests, the conformance suite
// that every vfs.FS implementation, real or fake, runs; and WriteMode and
// ModeOf, for tests of file permissions on the real filesystem.
package vfstest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ringkv/ringkv/internal/vfs"
)

// Op names a mutating operation of CrashFS, as passed to its hook.
type Op string

// The operations a CrashFS hook sees.
const (
	OpMkdir    Op = "mkdir"
	OpCreate   Op = "create"
	OpWrite    Op = "write"
	OpSync     Op = "sync"
	OpRename   Op = "rename"
	OpRemove   Op = "remove"
	OpTruncate Op = "truncate"
	OpSyncDir  Op = "syncdir"
)

// CrashFS is an in-memory vfs.FS that tracks what a real disk would still
// hold after a power cut: a file's contents as of its last Sync, and a
// directory's entries (creations, renames, removals) as of its last
// SyncDir. CrashClone returns that durable state as a new CrashFS, so a
// test can "crash" at any point and recover from what is left, which a
// SIGKILL cannot show (the page cache survives a killed process).
//
// A directory made by MkdirAll is an entry of its parent like any other:
// it survives a crash once the parent is synced (vfs.MkdirAllSynced does
// that). MkdirDurable makes a test's root directories durable at once.
//
// Names are cleaned with filepath.Clean; relative and absolute names share
// one root. Safe for concurrent use.
type CrashFS struct {
	// mu guards the whole tree, every open file's state, locks and hook.
	mu    sync.Mutex
	root  *node
	locks map[string]bool
	hook  func(op Op, name string) error
}

var _ vfs.FS = (*CrashFS)(nil)

// node is a file or a directory.
type node struct {
	dir bool
	// data is a file's contents; synced its contents as of the last Sync.
	data, synced []byte
	// cut is the smallest size a Create or Truncate gave the file since
	// its last Sync, -1 if none did: a journaled size change may reach
	// the disk before the data does.
	cut int
	// children are a directory's entries; durable those as of its last
	// SyncDir (what a crash leaves).
	children, durable map[string]*node
}

func newDir() *node {
	return &node{dir: true, children: map[string]*node{}, durable: map[string]*node{}}
}

// NewCrashFS returns an empty CrashFS.
func NewCrashFS() *CrashFS {
	return &CrashFS{root: newDir(), locks: map[string]bool{}}
}

// SetHook installs fn, called before every mutating operation (see Op)
// with the name it applies to; a non-nil error fails the operation, which
// then changes nothing. fn runs without CrashFS's lock held, so it may
// call CrashClone to capture the state just before the operation. nil
// removes the hook.
func (c *CrashFS) SetHook(fn func(op Op, name string) error) {
	c.mu.Lock()
	c.hook = fn
	c.mu.Unlock()
}

func (c *CrashFS) before(op Op, name string) error {
	c.mu.Lock()
	h := c.hook
	c.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(op, name)
}

// CrashClone returns a new CrashFS holding what a crash now would leave:
// every directory's durable entries and every file's synced contents.
// Unsynced bytes are dropped. Locks are not carried over (they die with
// the process). The receiver is unchanged and still usable, so that the
// code under test can be shut down after the "crash".
func (c *CrashFS) CrashClone() *CrashFS {
	return c.crashClone(nil)
}

// CrashCloneTorn is CrashClone, except that it picks, with r, among the
// other states a real disk may be left in. A file whose unsynced contents
// extend its synced ones keeps a random prefix of that unsynced tail (the
// last writes reached the disk in part, as a torn write does), or that
// many zero bytes instead (the size reached the disk, the data did not, as
// XFS or ext4 in writeback mode may leave it). A file truncated, or
// created over, since its last Sync is either its synced contents or
// those cut to the smallest size it was given (the size change reached
// the disk, the new data did not).
func (c *CrashFS) CrashCloneTorn(r *rand.Rand) *CrashFS {
	return c.crashClone(r)
}

func (c *CrashFS) crashClone(r *rand.Rand) *CrashFS {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &CrashFS{root: cloneDurable(c.root, r), locks: map[string]bool{}}
}

// cloneDurable copies n's durable state; with r, files keep a random
// prefix of their unsynced appended bytes.
func cloneDurable(n *node, r *rand.Rand) *node {
	if !n.dir {
		data := slices.Clone(n.synced)
		switch {
		case r == nil:
		case n.cut >= 0 && n.cut < len(data) && r.IntN(2) == 0:
			data = data[:n.cut]
		case len(n.data) > len(n.synced) && string(n.data[:len(n.synced)]) == string(n.synced):
			tail := n.data[len(n.synced):]
			tail = tail[:r.IntN(len(tail)+1)]
			if r.IntN(2) == 0 {
				tail = make([]byte, len(tail))
			}
			data = append(data, tail...)
		}
		return &node{data: data, synced: slices.Clone(data), cut: -1}
	}
	d := newDir()
	for name, ch := range n.durable {
		cl := cloneDurable(ch, r)
		d.children[name] = cl
		d.durable[name] = cl
	}
	return d
}

// ReadFile returns a copy of name's current contents.
func (c *CrashFS) ReadFile(name string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, pathErr("read", name, errors.New("is a directory"))
	}
	return slices.Clone(n.data), nil
}

// split cleans name into its path elements; the root has none.
func split(name string) []string {
	name = strings.Trim(filepath.ToSlash(filepath.Clean(name)), "/")
	if name == "" || name == "." {
		return nil
	}
	return strings.Split(name, "/")
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// lookup finds name's node; c.mu is held.
func (c *CrashFS) lookup(op, name string) (*node, error) {
	n := c.root
	for _, el := range split(name) {
		if !n.dir {
			return nil, pathErr(op, name, fs.ErrNotExist)
		}
		ch, ok := n.children[el]
		if !ok {
			return nil, pathErr(op, name, fs.ErrNotExist)
		}
		n = ch
	}
	return n, nil
}

// parent finds the directory holding name and name's last element; c.mu
// is held.
func (c *CrashFS) parent(op, name string) (*node, string, error) {
	els := split(name)
	if len(els) == 0 {
		return nil, "", pathErr(op, name, fs.ErrInvalid)
	}
	d, err := c.lookup(op, strings.Join(els[:len(els)-1], "/"))
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", pathErr(op, name, fmt.Errorf("parent is not a directory: %w", fs.ErrInvalid))
	}
	return d, els[len(els)-1], nil
}

// MkdirAll implements vfs.FS; each directory it creates survives a crash
// once its parent is synced.
func (c *CrashFS) MkdirAll(dir string) error {
	return c.mkdirAll(dir, false)
}

// MkdirDurable is MkdirAll with the directories durable at once, as if
// their parents had been synced: for the directories a test starts from,
// which the code under test does not create.
func (c *CrashFS) MkdirDurable(dir string) error {
	return c.mkdirAll(dir, true)
}

func (c *CrashFS) mkdirAll(dir string, durable bool) error {
	if err := c.before(OpMkdir, dir); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.root
	for _, el := range split(dir) {
		ch, ok := n.children[el]
		if !ok {
			ch = newDir()
			n.children[el] = ch
		}
		if durable && ch.dir {
			n.durable[el] = ch
		}
		if !ch.dir {
			return pathErr("mkdir", dir, errors.New("not a directory"))
		}
		n = ch
	}
	return nil
}

// Open implements vfs.FS.
func (c *CrashFS) Open(name string) (vfs.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, pathErr("open", name, errors.New("is a directory"))
	}
	return &memFile{fs: c, n: n, name: name, read: true}, nil
}

// Create implements vfs.FS: an existing file is truncated (the same file,
// as O_TRUNC does: its old contents stay durable until the next Sync).
func (c *CrashFS) Create(name string) (vfs.File, error) { return c.create(name, false) }

var _ vfs.ExclFS = (*CrashFS)(nil)

// CreateExcl implements vfs.ExclFS; it counts as OpCreate for hooks.
func (c *CrashFS) CreateExcl(name string) (vfs.File, error) { return c.create(name, true) }

// create makes or truncates name; with excl, an existing name is
// fs.ErrExist instead.
func (c *CrashFS) create(name string, excl bool) (vfs.File, error) {
	if err := c.before(OpCreate, name); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, base, err := c.parent("create", name)
	if err != nil {
		return nil, err
	}
	n, ok := d.children[base]
	switch {
	case ok && excl:
		return nil, pathErr("create", name, fs.ErrExist)
	case !ok:
		n = &node{cut: -1}
		d.children[base] = n
	case n.dir:
		return nil, pathErr("create", name, errors.New("is a directory"))
	default:
		n.data = nil
		n.cut = 0
	}
	return &memFile{fs: c, n: n, name: name}, nil
}

// OpenAppend implements vfs.FS.
func (c *CrashFS) OpenAppend(name string) (vfs.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, pathErr("open", name, errors.New("is a directory"))
	}
	return &memFile{fs: c, n: n, name: name}, nil
}

// Rename implements vfs.FS; it is durable once both directories are
// synced.
func (c *CrashFS) Rename(oldName, newName string) error {
	if err := c.before(OpRename, newName); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	od, ob, err := c.parent("rename", oldName)
	if err != nil {
		return err
	}
	n, ok := od.children[ob]
	if !ok {
		return pathErr("rename", oldName, fs.ErrNotExist)
	}
	nd, nb, err := c.parent("rename", newName)
	if err != nil {
		return err
	}
	if old, ok := nd.children[nb]; ok && old.dir != n.dir {
		return pathErr("rename", newName, errors.New("file and directory"))
	}
	delete(od.children, ob)
	nd.children[nb] = n
	return nil
}

// Remove implements vfs.FS; a directory must be empty.
func (c *CrashFS) Remove(name string) error {
	if err := c.before(OpRemove, name); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, base, err := c.parent("remove", name)
	if err != nil {
		return err
	}
	n, ok := d.children[base]
	if !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n.dir && len(n.children) > 0 {
		return pathErr("remove", name, errors.New("directory not empty"))
	}
	delete(d.children, base)
	return nil
}

// Truncate implements vfs.FS; the new size is durable after a Sync.
func (c *CrashFS) Truncate(name string, size int64) error {
	if err := c.before(OpTruncate, name); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup("truncate", name)
	if err != nil {
		return err
	}
	if n.dir || size < 0 {
		return pathErr("truncate", name, fs.ErrInvalid)
	}
	if size <= int64(len(n.data)) {
		n.data = n.data[:size:size]
		if n.cut < 0 || int(size) < n.cut {
			n.cut = int(size)
		}
	} else {
		n.data = append(n.data, make([]byte, size-int64(len(n.data)))...)
	}
	return nil
}

// List implements vfs.FS.
func (c *CrashFS) List(dir string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.lookup("open", dir)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, pathErr("readdir", dir, errors.New("not a directory"))
	}
	names := make([]string, 0, len(d.children))
	for name := range d.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir implements vfs.FS: dir's entries as they are now become what a
// crash leaves.
func (c *CrashFS) SyncDir(dir string) error {
	if err := c.before(OpSyncDir, dir); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.lookup("open", dir)
	if err != nil {
		return err
	}
	if !d.dir {
		return pathErr("sync", dir, errors.New("not a directory"))
	}
	d.durable = make(map[string]*node, len(d.children))
	for name, ch := range d.children {
		d.durable[name] = ch
	}
	return nil
}

// Lock implements vfs.FS with an in-memory lock per cleaned name; the
// file is created as OSFS's Lock creates it.
func (c *CrashFS) Lock(name string) (io.Closer, error) {
	c.mu.Lock()
	_, err := c.lookup("open", name)
	c.mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		f, err := c.Create(name)
		if err != nil {
			return nil, err
		}
		_ = f.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := filepath.Clean(name)
	if c.locks[key] {
		return nil, fmt.Errorf("lock %s: another process (or Engine) has this directory open: %w", filepath.Base(name), fs.ErrExist)
	}
	c.locks[key] = true
	return &memLock{fs: c, key: key}, nil
}

type memLock struct {
	fs   *CrashFS
	key  string
	once sync.Once
}

func (l *memLock) Close() error {
	l.once.Do(func() {
		l.fs.mu.Lock()
		delete(l.fs.locks, l.key)
		l.fs.mu.Unlock()
	})
	return nil
}

// CrashPoints runs op on c and returns what a crash would leave at every
// point of it: a CrashClone and a CrashCloneTorn (torn by r) taken before
// each mutating operation op makes, and a pair taken after op returned,
// last. op's error is returned. It replaces c's hook while it runs.
func CrashPoints(c *CrashFS, r *rand.Rand, op func(*CrashFS) error) ([]*CrashFS, error) {
	var states []*CrashFS
	c.SetHook(func(Op, string) error {
		states = append(states, c.CrashClone(), c.CrashCloneTorn(r))
		return nil
	})
	err := op(c)
	c.SetHook(nil)
	return append(states, c.CrashClone(), c.CrashCloneTorn(r)), err
}

var _ vfs.DirFS = (*CrashFS)(nil)

// ListDirs implements vfs.DirFS.
func (c *CrashFS) ListDirs(dir string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.lookup("open", dir)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, pathErr("readdir", dir, errors.New("not a directory"))
	}
	var names []string
	for name, ch := range d.children {
		if ch.dir {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// RemoveAll implements vfs.DirFS: dir leaves its parent (durably once the
// parent is synced; what is under it goes with it).
func (c *CrashFS) RemoveAll(dir string) error {
	if err := c.before(OpRemove, dir); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, base, err := c.parent("remove", dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	delete(d.children, base)
	return nil
}
