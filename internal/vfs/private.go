package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"runtime"
	"strconv"
)

// ErrNotPrivate is returned by CheckPrivateDir for a directory someone
// other than its user may write.
var ErrNotPrivate = errors.New("vfs: directory is writable by others")

// CheckPrivateDir refuses dir (fs.ErrNotExist and the like pass through
// wrapped) when anyone but the current user may write it: world-writable,
// or group-writable unless the group is the user's own private group (what
// mkdir makes under umask 002 on systems with user-private groups), or
// owned by another user than the current one or root. Windows keeps no
// unix modes, so nothing is checked there.
func CheckPrivateDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("vfs: %w", err)
	}
	perm := info.Mode().Perm()
	owner, _, okOwner := fileIDs(info)
	switch {
	case okOwner && owner != os.Geteuid() && owner != 0:
		return fmt.Errorf("%w: %s belongs to uid %d, not to this user", ErrNotPrivate, dir, owner)
	case perm&0o002 != 0:
		return fmt.Errorf("%w: %s has mode %#o (chmod o-w it)", ErrNotPrivate, dir, perm)
	case perm&0o020 != 0 && !(okOwner && owner == os.Geteuid() && ownPrivateGroup(info)):
		return fmt.Errorf("%w: %s has mode %#o and its group is not this user's own (chmod g-w it)", ErrNotPrivate, dir, perm)
	}
	return nil
}

// ownPrivateGroup reports whether info's group is the current user's
// private group: the user's primary group, named as the user is, so that
// no one else is in it by design.
func ownPrivateGroup(info fs.FileInfo) bool {
	_, gid, ok := fileIDs(info)
	if !ok || gid != os.Getegid() {
		return false
	}
	u, err := user.LookupId(strconv.Itoa(os.Geteuid()))
	if err != nil {
		return false
	}
	g, err := user.LookupGroupId(strconv.Itoa(gid))
	return err == nil && g.Name == u.Username
}
