package storage

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ringkv/ringkv/internal/atomicfile"
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

// maxIdentityBytes bounds what is read of IDENTITY and ACTOR: both are a
// few dozen bytes, and a larger file is damage, not something to allocate for.
const maxIdentityBytes = 4 << 10

// validActor reports whether a is an incarnation or actor as
// newIncarnation makes them: incarnationLen characters of lower-case
// base32. Anything else in IDENTITY or ACTOR is damage.
func validActor(a string) bool {
	if len(a) != incarnationLen {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// parseIdentity decodes the identity file. It checks the shape only; the
// caller compares the node ID.
func parseIdentity(data []byte) (identity, error) {
	if len(data) > maxIdentityBytes {
		return identity{}, fmt.Errorf("identity is %d bytes, more than %d", len(data), maxIdentityBytes)
	}
	var id identity
	if err := json.Unmarshal(data, &id); err != nil {
		return identity{}, fmt.Errorf("unreadable identity (%w)", err)
	}
	if id.NodeID == "" {
		return identity{}, errors.New("identity names no node")
	}
	if !validActor(id.Incarnation) {
		return identity{}, fmt.Errorf("incarnation %.40q is not %d characters of lower-case base32", id.Incarnation, incarnationLen)
	}
	return id, nil
}

// maxSavedCounter bounds the counter read from ACTOR: far above anything
// minted (vclock refuses stored counters beyond 2^62), so a larger value
// is damage.
const maxSavedCounter = 1 << 62

// parseActor decodes the actor file: "<actor> <counter>", surrounding
// space ignored. A file from before the counter existed holds the actor
// alone and reads as counter 0.
func parseActor(data []byte) (string, uint64, error) {
	if len(data) > maxIdentityBytes {
		return "", 0, fmt.Errorf("actor file is %d bytes, more than %d", len(data), maxIdentityBytes)
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 || len(fields) > 2 {
		return "", 0, fmt.Errorf("actor file holds %d fields, want the actor and a counter", len(fields))
	}
	actor := fields[0]
	if !validActor(actor) {
		return "", 0, fmt.Errorf("actor %.40q is not %d characters of lower-case base32", actor, incarnationLen)
	}
	var counter uint64
	if len(fields) == 2 {
		c, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil || c > maxSavedCounter {
			return "", 0, fmt.Errorf("counter %.40q is not a decimal number up to %d", fields[1], uint64(maxSavedCounter))
		}
		counter = c
	}
	return actor, counter, nil
}

// readSmall reads a file of at most maxIdentityBytes; a larger one is
// refused as corrupt without allocating for it, whatever its stat says.
func readSmall(fsys FS, name string) ([]byte, error) {
	data, err := atomicfile.ReadBounded(fsys, name, maxIdentityBytes)
	switch {
	case errors.Is(err, atomicfile.ErrTooLarge):
		return nil, &CorruptError{File: name, Err: fmt.Errorf("more than %d bytes", maxIdentityBytes)}
	case err != nil:
		return nil, fmt.Errorf("storage: read %s: %w", name, err)
	}
	return data, nil
}

func newIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go >= 1.24)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))[:incarnationLen]
}

// loadIdentity reads the identity of dir, creating it for nodeID if the
// directory holds no data yet. A directory of another node is refused with
// ErrWrongNode; one with data but no identity is corrupt.
func loadIdentity(fsys FS, dir, nodeID string, now time.Time) (id identity, created bool, err error) {
	path := filepath.Join(dir, identityFile)
	data, err := readSmall(fsys, path)
	switch {
	case err == nil:
		if id, err = parseIdentity(data); err != nil {
			return identity{}, false, &CorruptError{File: path, Err: err}
		}
		if id.NodeID != nodeID {
			return identity{}, false, fmt.Errorf("%w: %s was created for node %q, not %q", ErrWrongNode, dir, id.NodeID, nodeID)
		}
		return id, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return identity{}, false, err
	}
	names, err := fsys.List(dir)
	if err != nil {
		return identity{}, false, fmt.Errorf("storage: list %s: %w", dir, err)
	}
	for _, n := range names {
		if _, ok := parseSnapshotName(n); ok || n == "wal" {
			return identity{}, false, &CorruptError{File: path, Err: errors.New("data directory holds data but no identity file")}
		}
	}
	// ACTOR and CLEAN left over from wiped data would make loadActor mint
	// under the old actor, whose dots exist elsewhere while nothing here
	// remembers their counters. Remove them before the identity appears
	// (its directory fsync makes the removals durable with it).
	for _, n := range []string{actorFile, cleanFile} {
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return identity{}, false, fmt.Errorf("storage: remove stale %s: %w", n, err)
		}
	}
	id = identity{NodeID: nodeID, Incarnation: newIncarnation(), Created: now.UTC().Format(time.RFC3339)}
	data, err = json.MarshalIndent(id, "", "  ")
	if err != nil {
		return identity{}, false, fmt.Errorf("storage: encode identity: %w", err)
	}
	if err := writeFileAtomic(fsys, dir, identityFile, append(data, '\n')); err != nil {
		return identity{}, false, err
	}
	return id, true, nil
}

// writeFileAtomic writes name in dir through a temp file, fsync, rename and
// directory fsync, so a crash leaves either no file or the whole file.
func writeFileAtomic(fsys FS, dir, name string, data []byte) error {
	if err := atomicfile.Write(fsys, dir, name, data); err != nil {
		return fmt.Errorf("storage: write %s: %w", name, err)
	}
	return nil
}

// actorFile holds the vclock actor this node mints dots under. It starts as
// the directory's incarnation and is renewed after every unclean shutdown.
//
// Why: Update installs a new version in the index before its WAL record is
// on disk (reads never wait for an fsync), so a read or a read repair can
// carry a freshly minted dot (actor, c) to other replicas an instant before
// a crash loses it here. Were the restarted node to mint under the same
// actor, it would mint (actor, c) again for a different write, and Merge
// would keep only one of the two versions that share the dot. A fresh actor
// after a crash makes such a collision impossible, at the cost of one more
// entry in the contexts of keys written after each crash.
//
// The file reads "<actor> <counter>\n": the counter is the actor's minting
// counter (see ReserveCounter) as of the last clean Close, trusted only
// when CLEAN says that Close completed.
const actorFile = "ACTOR"

// cleanFile marks a data directory whose engine was closed cleanly: its
// WAL holds every dot the node ever handed out. It holds the LogEnd the
// close left (JSON; empty from builds before it was recorded) and is
// present only between a clean Close and the end of the next Open's
// recovery.
const cleanFile = "CLEAN"

// loadActor returns the actor to mint under and its counter. It renews
// the actor (counter 0) unless the directory is new or the last shutdown
// was clean and the WAL ended where it should (shortened is false): after
// a crash, or a WAL that lost its tail, dots this node handed out may be
// missing here while they live on elsewhere, and the same actor would
// mint them again for other writes. The counter in ACTOR is trusted only
// after a clean shutdown, which wrote it. The clean marker is left for
// the caller to remove once recovery succeeded (removeClean).
func loadActor(fsys FS, dir string, id identity, created, clean, shortened bool) (string, uint64, error) {
	actor := id.Incarnation
	var counter uint64
	data, err := readSmall(fsys, filepath.Join(dir, actorFile))
	switch {
	case err == nil:
		if actor, counter, err = parseActor(data); err != nil {
			return "", 0, &CorruptError{File: filepath.Join(dir, actorFile), Err: err}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", 0, err
	}
	if clean && !shortened {
		return actor, counter, nil
	}
	if created {
		return actor, 0, nil
	}
	actor = newIncarnation()
	if err := writeActor(fsys, dir, actor, 0); err != nil {
		return "", 0, err
	}
	return actor, 0, nil
}

// writeActor replaces the actor file with actor and its counter.
func writeActor(fsys FS, dir, actor string, counter uint64) error {
	return writeFileAtomic(fsys, dir, actorFile, fmt.Appendf(nil, "%s %d\n", actor, counter))
}
