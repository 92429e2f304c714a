package node

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch reloads the files whenever something changes in their
// directories, until ctx is done. Directories rather than files are
// watched: a rotation that renames a new file into place (or swaps a
// symlinked directory, as Kubernetes secrets do) replaces the watched
// inode. Events come in bursts (cert, then key); one reload follows
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
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			timer.Reset(tlsReloadDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			t.log.Warn("tls file watch error", "err", err)
		case <-timer.C:
			_ = t.reload() // logged and counted by reload
		}
	}
}
