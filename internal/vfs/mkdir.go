package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// MkdirAllSynced creates dir and its missing parents and makes their
// creation durable: it fsyncs the closest existing ancestor and every
// directory it created above dir (as pebble's MkdirAllAndSyncParents
// does). A new directory's entry lives in its parent, and a crash before
// that parent is fsynced may take the directory away with everything
// already synced inside it. Entries made later inside dir itself are the
// caller's to sync. A dir that exists already costs one List.
func MkdirAllSynced(fsys FS, dir string) error {
	dir = filepath.Clean(dir)
	// missing holds the directories to create, deepest first.
	var missing []string
	for d := dir; ; {
		_, err := fsys.List(d)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			// It exists, or cannot be probed: MkdirAll reports what is
			// wrong with it, if anything.
			break
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		parent := filepath.Dir(missing[i])
		if err := fsys.SyncDir(parent); err != nil {
			return fmt.Errorf("sync %s after creating %s: %w", parent, filepath.Base(missing[i]), err)
		}
	}
	return nil
}
