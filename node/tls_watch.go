package node

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch reloads the files whenever one of them changes, until ctx is
// done. Directories rather than files are watched: a rotation that
// renames a new file into place (or swaps a symlinked directory, as
// Kubernetes secrets do) replaces the watched inode. Other files in the
// directories are ignored (a WAL or a log there would otherwise reload
// without end), and so are rewrites that leave the bytes as they were.
// Events come in bursts (cert, then key); one reload follows
// tlsReloadDebounce after the last. When watching is not possible it
// logs why and returns: SIGHUP still reloads.
func (t *nodeTLS) watch(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.log.Warn("cannot watch the tls files; reload them with SIGHUP", "err", err)
		return
	}
	defer func() { _ = w.Close() }() // stopping; nothing to report
	dirs := map[string]bool{}
	files := tlsWatchedFiles(t.cfg)
	for _, f := range []string{t.cfg.CertFile, t.cfg.KeyFile, t.cfg.CAFile} {
		d := filepath.Dir(f)
		if dirs[d] {
			continue
		}
		dirs[d] = true
		if err := w.Add(d); err != nil {
			t.log.Warn("cannot watch a tls directory; reload with SIGHUP", "dir", d, "err", err)
		}
	}
	if t.watching != nil {
		t.watching()
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if tlsFileEvent(files, ev.Name) {
				timer.Reset(tlsReloadDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			t.log.Warn("tls file watch error", "err", err)
		case <-timer.C:
			_ = t.reloadFiles(true) // logged and counted by reloadFiles
		}
	}
}

// k8sDataLink is the symlink a Kubernetes secret or config map volume
// swaps to publish new files: the files themselves are symlinks through
// it and see no event of their own.
const k8sDataLink = "..data"

// tlsWatchedFiles is the set of cfg's three paths, cleaned as the
// watcher's event names are.
func tlsWatchedFiles(cfg TLSConfig) map[string]bool {
	return map[string]bool{
		filepath.Clean(cfg.CertFile): true,
		filepath.Clean(cfg.KeyFile):  true,
		filepath.Clean(cfg.CAFile):   true,
	}
}

// tlsFileEvent reports whether an event on path may have changed one of
// files: the file itself, or a Kubernetes volume's data link beside it.
func tlsFileEvent(files map[string]bool, path string) bool {
	path = filepath.Clean(path)
	if files[path] {
		return true
	}
	if filepath.Base(path) != k8sDataLink {
		return false
	}
	for f := range files {
		if filepath.Dir(f) == filepath.Dir(path) {
			return true
		}
	}
	return false
}
