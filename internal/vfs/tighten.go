package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// TightenResult is what Tighten did: the entries it changed and those it
// left alone because they are not the process's to change.
type TightenResult struct {
	// Changed names the first entries changed ("path 0644->0600"), at most
	// maxReported; ChangedTotal counts them all.
	Changed      []string
	ChangedTotal int
	// Skipped names the first entries left as they are ("path: reason"),
	// at most maxReported; SkippedTotal counts them all.
	Skipped      []string
	SkippedTotal int
}

func (r *TightenResult) changed(path string, from, to fs.FileMode) {
	if r.ChangedTotal++; len(r.Changed) < maxReported {
		r.Changed = append(r.Changed, fmt.Sprintf("%s %#o->%#o", path, from, to))
	}
}

func (r *TightenResult) skipped(path, reason string) {
	if r.SkippedTotal++; len(r.Skipped) < maxReported {
		r.Skipped = append(r.Skipped, path+": "+reason)
	}
}

// Tighten takes away, under dir and from dir itself, every permission bit
// beyond FileMode (files) and DirMode(FileMode) (directories), so that data
// written by an older version or copied in with a looser umask becomes
// private too. dir may be a symbolic link (it is resolved first); links
// under it are neither followed nor changed, nor is anything but regular
// files and directories. Entries another user owns (a root-owned
// lost+found on a mount point), that the process may not read or change,
// or that vanish during the walk are skipped and reported, not errors:
// they are not the node's, and refusing to start over them would help no
// one. Call it with the directory's lock held, so that no other process
// of the node's creates or replaces entries meanwhile.
func (o OSFS) Tighten(dir string) (TightenResult, error) {
	var res TightenResult
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return res, fmt.Errorf("storage: tighten modes under %s: %w", dir, err)
	}
	fileMode, uid := o.fileMode(), os.Geteuid()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			err = tightenEntry(path, d, fileMode, uid, &res)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, fs.ErrNotExist) && path != root:
			return nil
		case errors.Is(err, fs.ErrPermission):
			res.skipped(path, "permission denied")
			return nil
		}
		return err
	})
	if err != nil {
		return res, fmt.Errorf("storage: tighten modes under %s: %w", dir, err)
	}
	return res, nil
}

// tightenEntry tightens one entry of the walk.
func tightenEntry(path string, d fs.DirEntry, fileMode fs.FileMode, uid int, res *TightenResult) error {
	if !d.IsDir() && !d.Type().IsRegular() {
		return nil // links, sockets, devices: not written by the node
	}
	info, err := d.Info()
	if err != nil {
		return err
	}
	allowed := fileMode
	if d.IsDir() {
		allowed = DirMode(fileMode)
	}
	if info.Mode().Perm()&^allowed == 0 {
		return nil
	}
	if owner, _, ok := fileIDs(info); ok && owner != uid {
		res.skipped(path, fmt.Sprintf("owned by uid %d", owner))
		return nil
	}
	from, to, err := chmodNoFollow(path, d.IsDir(), allowed, uid)
	if err != nil || from == to {
		return err
	}
	res.changed(path, from, to)
	return nil
}

// chmodNoFollow takes the bits beyond allowed from path through a handle
// opened without following a symbolic link, so that an entry swapped for
// a link after the walk saw it does not get its target changed; the mode
// and owner are read from the handle for the same reason. It returns the
// mode before and after (equal when nothing was changed).
func chmodNoFollow(path string, dir bool, allowed fs.FileMode, uid int) (from, to fs.FileMode, err error) {
	// O_NONBLOCK: an entry swapped for a FIFO must not block the open.
	f, err := openNoFollow(path)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return 0, 0, nil // a link now: not ours to change
		}
		return 0, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if info.IsDir() != dir || (!dir && !info.Mode().IsRegular()) {
		return 0, 0, nil
	}
	if owner, _, ok := fileIDs(info); ok && owner != uid {
		return 0, 0, nil
	}
	from = info.Mode().Perm()
	if from&^allowed == 0 {
		return from, from, nil
	}
	if err := f.Chmod(from & allowed); err != nil {
		return 0, 0, err
	}
	return from, from & allowed, nil
}

// maxReported bounds the paths Tighten names, so that a data directory of
// thousands of loose files logs one line of reasonable length.
const maxReported = 8
