//go:build unix

package vfs

import (
	"io/fs"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock(2) on f without waiting.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// fileIDs are the uid and gid that own the file info describes.
func fileIDs(info fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// openNoFollow opens path for reading without following a symbolic link
// (ELOOP when it is one); O_NONBLOCK so that an entry swapped for a FIFO
// does not block the open.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
}

// oNoFollow keeps an open from following a link at the last element
// (O_EXCL refuses one already; this says so twice).
const oNoFollow = syscall.O_NOFOLLOW

// lockUnsupported reports whether lockFile failed for want of flock(2):
// never here.
func lockUnsupported(error) bool { return false }
