package storage

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"
)

// identityFile records who owns a data directory. It is written once, when
// the directory is created, and never changes.
const identityFile = "IDENTITY"

// identity is the content of the identity file (JSON).
type identity struct {
	NodeID      string `json:"node_id"`
	Incarnation string `json:"incarnation"`
	Created     string `json:"created"`
}

// incarnationLen is the length of an incarnation ID: 12 base32 characters
// carry 60 random bits, so two incarnations collide with negligible
// probability even across thousands of wiped disks.
const incarnationLen = 12

func newIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go >= 1.24)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))[:incarnationLen]
}

// loadIdentity reads the identity of dir, creating it for nodeID if the
// directory holds no data yet. A directory of another node is refused with
// ErrWrongNode; one with data but no identity is corrupt.
func loadIdentity(fsys FS, dir, nodeID string, now time.Time) (identity, error) {
	path := filepath.Join(dir, identityFile)
	data, err := readAll(fsys, path)
	switch {
	case err == nil:
		var id identity
		if err := json.Unmarshal(data, &id); err != nil || id.NodeID == "" || len(id.Incarnation) != incarnationLen {
			return identity{}, &CorruptError{File: path, Err: fmt.Errorf("unreadable identity (%v)", err)}
		}
		if id.NodeID != nodeID {
			return identity{}, fmt.Errorf("%w: %s was created for node %q, not %q", ErrWrongNode, dir, id.NodeID, nodeID)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return identity{}, err
	}
	names, err := fsys.List(dir)
	if err != nil {
		return identity{}, fmt.Errorf("storage: list %s: %w", dir, err)
	}
	for _, n := range names {
		if _, ok := parseSnapshotName(n); ok || n == "wal" {
			return identity{}, &CorruptError{File: path, Err: errors.New("data directory holds data but no identity file")}
		}
	}
	id := identity{NodeID: nodeID, Incarnation: newIncarnation(), Created: now.UTC().Format(time.RFC3339)}
	data, err = json.MarshalIndent(id, "", "  ")
	if err != nil {
		return identity{}, fmt.Errorf("storage: encode identity: %w", err)
	}
	if err := writeFileAtomic(fsys, dir, identityFile, append(data, '\n')); err != nil {
		return identity{}, err
	}
	return id, nil
}

// writeFileAtomic writes name in dir through a temp file, fsync, rename and
// directory fsync, so a crash leaves either no file or the whole file.
func writeFileAtomic(fsys FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", tmp, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("storage: write %s: %w", name, err)
	}
	return nil
}
