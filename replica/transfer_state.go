package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/ringkv/ringkv/internal/atomicfile"
	"github.com/ringkv/ringkv/internal/vfs"
)

// TransfersFile is the name, in the puller's directory, of the file that
// records which partitions of the current plan's change this node has
// pulled completely. JSON, because operators read it when a change is
// stuck:
//
//	{"format": 1, "node": "n4", "epoch": 7, "plan_hash": 123, "done": [3, 17]}
//
// done is ascending. A file for another plan (epoch or hash), another node
// or another format is ignored: the worst a lost file costs is pulling
// again, which Merge makes harmless.
const TransfersFile = "transfers.json"

// ErrBadTransfers: TransfersFile exists but cannot be used (damaged, too
// large, of another node or format). The puller logs it and starts over.
var ErrBadTransfers = errors.New("replica: bad transfers file")

const (
	transfersFormat = 1
	// maxTransferPartitions bounds a partition number in the file; ring
	// partitions are fewer than 2^16.
	maxTransferPartitions = 1 << 16
	// maxTransfersFileBytes bounds the file: every partition below
	// maxTransferPartitions, written out, fits in well under half of it.
	maxTransfersFileBytes = 1 << 20
)

// transferState is what the puller persists: the plan it worked on and
// the partitions it completed for it.
type transferState struct {
	Epoch    uint64
	PlanHash uint64
	// Done is ascending, each in 0..maxTransferPartitions-1.
	Done []int32
}

// transfersBody is the JSON layout of TransfersFile.
type transfersBody struct {
	Format   int     `json:"format"`
	Node     string  `json:"node"`
	Epoch    uint64  `json:"epoch"`
	PlanHash uint64  `json:"plan_hash"`
	Done     []int32 `json:"done"`
}

// parseTransfers decodes and validates the body of a TransfersFile
// written by node. Errors do not wrap ErrBadTransfers; loadTransfers adds
// it with the path.
func parseTransfers(b []byte, node string) (transferState, error) {
	if len(b) > maxTransfersFileBytes {
		return transferState{}, fmt.Errorf("larger than %d bytes", maxTransfersFileBytes)
	}
	var body transfersBody
	if err := json.Unmarshal(b, &body); err != nil {
		return transferState{}, err
	}
	switch {
	case body.Format != transfersFormat:
		return transferState{}, fmt.Errorf("format %d, this build reads %d", body.Format, transfersFormat)
	case body.Node != node:
		return transferState{}, fmt.Errorf("belongs to node %q, not %q", body.Node, node)
	case body.Epoch == 0:
		return transferState{}, errors.New("epoch 0")
	case len(body.Done) > maxTransferPartitions:
		return transferState{}, fmt.Errorf("%d done partitions, at most %d", len(body.Done), maxTransferPartitions)
	}
	for i, p := range body.Done {
		if p < 0 || p >= maxTransferPartitions {
			return transferState{}, fmt.Errorf("done partition %d out of range 0..%d", p, maxTransferPartitions-1)
		}
		if i > 0 && body.Done[i-1] >= p {
			return transferState{}, fmt.Errorf("done partitions not ascending at %d", p)
		}
	}
	return transferState{Epoch: body.Epoch, PlanHash: body.PlanHash, Done: body.Done}, nil
}

// encodeTransfers returns the file body for st.
func encodeTransfers(node string, st transferState) ([]byte, error) {
	done := st.Done
	if done == nil {
		done = []int32{}
	}
	b, err := json.Marshal(transfersBody{Format: transfersFormat, Node: node, Epoch: st.Epoch, PlanHash: st.PlanHash, Done: done})
	if err != nil {
		return nil, fmt.Errorf("replica: encode %s: %w", TransfersFile, err)
	}
	return append(b, '\n'), nil
}

// loadTransfers reads the state persisted in dir by node. A missing file
// is an error wrapping fs.ErrNotExist; a damaged one wraps ErrBadTransfers
// and names the file. Never reads more than maxTransfersFileBytes+1.
func loadTransfers(fsys vfs.FS, dir, node string) (transferState, error) {
	// A crash between creating and renaming a temp file leaves it behind;
	// it was never the state of record.
	_ = atomicfile.RemoveStale(fsys, dir, TransfersFile)
	path := filepath.Join(dir, TransfersFile)
	b, err := atomicfile.Read(fsys, path, maxTransfersFileBytes)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return transferState{}, err
		}
		return transferState{}, fmt.Errorf("%w: read %s: %w", ErrBadTransfers, path, err)
	}
	st, err := parseTransfers(b, node)
	if err != nil {
		return transferState{}, fmt.Errorf("%w: %s: %w", ErrBadTransfers, path, err)
	}
	return st, nil
}

// saveTransfers writes st to dir atomically (see atomicfile.Write): a
// crash at any point leaves either the old or the new file, never a torn
// one, so a partition is reported done only once a restart would still
// know it.
func saveTransfers(fsys vfs.FS, dir, node string, st transferState) error {
	b, err := encodeTransfers(node, st)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(fsys, dir, TransfersFile, b); err != nil {
		return fmt.Errorf("replica: save %s: %w", TransfersFile, err)
	}
	return nil
}
