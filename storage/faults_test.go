package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// A disk error fails the write that hit it and every later write until
// the engine is reopened; reads keep working; what was acknowledged
// before survives reopening.
func TestDiskErrorFailsEngine(t *testing.T) {
	tests := []struct {
		name string
		op   string
		err  error
	}{
		{"fsync error", "sync", syscall.EIO},
		{"disk full", "write", syscall.ENOSPC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ffs := &faultFS{}
			cfg := testConfig(t, t.TempDir())
			cfg.FS = ffs
			e := openT(t, cfg)
			for i := range 10 {
				put(t, e, fmt.Sprint("ok", i), "v")
			}
			ffs.setFail(func(op, name string) error {
				if op == tc.op && strings.HasSuffix(name, ".wal") {
					return tc.err
				}
				return nil
			})
			_, s := vclock.Mint(nil, "x", vclock.Write{Value: []byte("a")})
			_, err := e.Apply(t.Context(), []byte("bad"), s)
			if !errors.Is(err, ErrFailed) || !errors.Is(err, tc.err) {
				t.Fatalf("Apply on failing disk = %v, want ErrFailed wrapping %v", err, tc.err)
			}
			ffs.setFail(nil) // the disk recovers, the engine must not
			if _, err := e.Apply(t.Context(), []byte("later"), s); !errors.Is(err, ErrFailed) {
				t.Fatalf("Apply after failure = %v, want ErrFailed", err)
			}
			if !e.Stats().Failed {
				t.Fatal("Stats.Failed is false")
			}
			if _, ok := valueOf(e, "ok3"); !ok {
				t.Fatal("reads stopped working")
			}
			if err := e.Close(); !errors.Is(err, ErrFailed) {
				t.Fatalf("Close = %v, want the failure reported", err)
			}
			e = openT(t, cfg)
			defer e.Close()
			for i := range 10 {
				if _, ok := valueOf(e, fmt.Sprint("ok", i)); !ok {
					t.Fatalf("acknowledged key ok%d lost", i)
				}
			}
			if e.Get([]byte("later")) != nil {
				t.Fatal("a refused write appeared")
			}
		})
	}
}

func TestSnapshotFailureLeavesEngineWorking(t *testing.T) {
	ffs := &faultFS{}
	cfg := testConfig(t, t.TempDir())
	cfg.FS = ffs
	var reported []error
	cfg.OnSnapshot = func(_ time.Duration, err error) { reported = append(reported, err) }
	e := openT(t, cfg)
	defer e.Close()
	put(t, e, "a", "1")
	ffs.setFail(func(op, name string) error {
		if op == "sync" && strings.HasSuffix(name, ".snap.tmp") {
			return syscall.EIO
		}
		return nil
	})
	if err := e.Snapshot(t.Context()); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Snapshot = %v, want EIO", err)
	}
	if len(reported) != 1 || reported[0] == nil {
		t.Fatalf("OnSnapshot saw %v", reported)
	}
	if m, _ := filepath.Glob(filepath.Join(cfg.Dir, "*.tmp")); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
	ffs.setFail(nil)
	put(t, e, "b", "2")
	if err := e.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
}
