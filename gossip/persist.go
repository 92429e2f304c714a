package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/ringkv/ringkv/internal/atomicfile"
	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/ring"
)

// StateFile is the name of the ring-membership file in the data directory.
const StateFile = "ring-membership.json"

// stateFileFormat versions the file layout: 2 added the plan. Format 1
// files (from before plans) are still read; see parseState.
const stateFileFormat = 2

// stateFileBody is the JSON layout of StateFile. JSON, not msgpack, because
// operators read this file when a cluster misbehaves.
type stateFileBody struct {
	Format  int    `json:"format"`
	Node    string `json:"node"`
	Members Map    `json:"members"`
	// Plan is the cluster plan; absent while none is known.
	Plan *ring.Plan `json:"plan,omitempty"`
}

// loadState reads the map and plan persisted in dir. A missing file is an
// empty map and no plan (a new node); a damaged file, or one written by
// another node, is an error that names the file: guessing the ring would
// be worse than not starting.
func loadState(fsys vfs.FS, dir, node string) (Map, ring.Plan, error) {
	// A crash between creating and renaming a temp file leaves it behind;
	// it was never the state of record, so it is simply dropped.
	_ = atomicfile.RemoveStale(fsys, dir, StateFile)
	path := filepath.Join(dir, StateFile)
	// Read one byte past the limit to tell a full file from a too-long one.
	b, err := atomicfile.Read(fsys, path, maxStateFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return Map{}, ring.Plan{}, nil
	}
	if err != nil {
		return nil, ring.Plan{}, fmt.Errorf("gossip: read %s: %w", path, err)
	}
	m, p, err := parseState(b, node)
	if err != nil {
		return nil, ring.Plan{}, fmt.Errorf("%w: %s: %w", ErrBadState, path, err)
	}
	return m, p, nil
}

// maxStateFileBytes bounds the state file: maxRows rows and a plan of the
// largest lists, of the longest names and addresses, indented, fit well
// below it.
const maxStateFileBytes = 2 << 20

// parseState decodes and validates the body of a state file belonging to
// node. Errors do not wrap ErrBadState; loadState adds it with the path.
//
// A format-1 file was written by a build from before plans, whose ring was
// its map's ring members: its plan is theirs, at epoch 1 and version 0
// (TRANSFER.md section 4), so that any plan a cluster has made wins over
// it; none if the map has no ring members. A format-2 file without a plan
// has none: that node never learnt one, and its map is not the cluster's
// ring (its own row alone could beat an upgraded cluster's version-0
// plan).
func parseState(b []byte, node string) (Map, ring.Plan, error) {
	if len(b) > maxStateFileBytes {
		return nil, ring.Plan{}, fmt.Errorf("larger than %d bytes", maxStateFileBytes)
	}
	var body stateFileBody
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, ring.Plan{}, err
	}
	switch body.Format {
	case 1:
		body.Plan = nil // before plans: a "plan" key means nothing here
		if members := body.Members.RingMembers(); len(members) > 0 {
			p := ring.NewPlan(members, 0)
			body.Plan = &p
		}
	case stateFileFormat:
	default:
		return nil, ring.Plan{}, fmt.Errorf("format %d, this build reads 1 and %d", body.Format, stateFileFormat)
	}
	if body.Node != node {
		return nil, ring.Plan{}, fmt.Errorf("belongs to node %q, not %q", body.Node, node)
	}
	if body.Members == nil {
		body.Members = Map{}
	}
	if err := body.Members.Validate(); err != nil {
		return nil, ring.Plan{}, err
	}
	var p ring.Plan
	if body.Plan != nil {
		if err := checkPlan(*body.Plan); err != nil {
			return nil, ring.Plan{}, err
		}
		if body.Plan.Known() {
			p = *body.Plan
		}
	}
	return body.Members, p, nil
}

// encodeStateFile returns the body of the state file of node holding m
// and p (if known).
func encodeStateFile(node string, m Map, p ring.Plan) ([]byte, error) {
	body := stateFileBody{Format: stateFileFormat, Node: node, Members: m}
	if p.Known() {
		body.Plan = &p
	}
	b, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("gossip: encode %s: %w", StateFile, err)
	}
	return append(b, '\n'), nil
}

// saveState writes m and p (if known) to dir atomically (see
// atomicfile.Write): a crash at any point leaves either the old or the new
// file, never a torn one.
func saveState(fsys vfs.FS, dir, node string, m Map, p ring.Plan) error {
	b, err := encodeStateFile(node, m, p)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(fsys, dir, StateFile, b); err != nil {
		return fmt.Errorf("gossip: save %s: %w", StateFile, err)
	}
	return nil
}
