package storage

import (
	"fmt"
	"os"

	"github.com/ringkv/ringkv/internal/vfs"
)

// File is an open file as the storage engine uses it. A File from Create
// or OpenAppend is written sequentially; one from Open is only read.
type File = vfs.File

// FS is the filesystem seam of the storage engine. The operating system's
// is OSFS; tests wrap it to inject disk errors or run the engine on a
// filesystem that simulates crashes. Implementations must be safe for
// concurrent use. Names are full paths.
type FS = vfs.FS

// OSFS is the operating system's filesystem. It creates files with at most
// FileMode and directories with at most DirMode(FileMode) (the umask may
// take more away); zero FileMode means DefaultFileMode.
type OSFS = vfs.OSFS

// TightenResult is what OSFS.Tighten did: the entries it changed and those
// it left alone because they are not the process's to change.
type TightenResult = vfs.TightenResult

// DefaultFileMode is the permission of every file a node writes in its data
// directory (etcd's choice): the data, hints and identity are the node's
// alone. Directories get DirMode(DefaultFileMode), 0700.
const DefaultFileMode os.FileMode = vfs.DefaultFileMode

// DirMode returns the directory permission that goes with file mode m:
// search (x) wherever read is allowed, so 0600 gives 0700 and 0640 0750.
func DirMode(m os.FileMode) os.FileMode { return vfs.DirMode(m) }

// ValidFileMode checks a file mode for the data directory: permission bits
// only, no execute, and the owner may read and write.
func ValidFileMode(m os.FileMode) error {
	if m&^0o666 != 0 || m&0o600 != 0o600 {
		return fmt.Errorf("%w: file mode %#o: want read and write for the owner and no bits beyond 0666", ErrInvalid, m)
	}
	return nil
}

// tightener is the optional interface of an FS whose files have Unix
// permissions; OSFS implements it.
type tightener interface {
	Tighten(dir string) (TightenResult, error)
}

var _ tightener = OSFS{}
