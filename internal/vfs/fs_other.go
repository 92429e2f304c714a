//go:build !unix

package vfs

import (
	"errors"
	"io/fs"
	"os"
)

// errNotUnix is why a data directory cannot be used on this platform: the
// engine relies on flock(2) to keep a second process out of a data
// directory, and on unix owners and modes to keep it private. The package
// builds here so that tools and clients can; a node does not start.
var errNotUnix = errors.New("vfs: data directories need a unix system (flock(2), file owners and modes)")

func lockFile(*os.File) error { return errNotUnix }

func fileIDs(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

func openNoFollow(string) (*os.File, error) { return nil, errNotUnix }

const oNoFollow = 0

func lockUnsupported(err error) bool { return errors.Is(err, errNotUnix) }
