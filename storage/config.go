package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// FsyncPolicy says when the WAL writer calls fsync.
type FsyncPolicy string

const (
	// FsyncAlways makes a write return only after its record is on disk.
	// Concurrent writers share one fsync per batch (group commit).
	FsyncAlways FsyncPolicy = "always"
	// FsyncInterval fsyncs every Config.FsyncInterval; a write returns once
	// its record reached the operating system, so it survives a process
	// crash but may be lost with the machine.
	FsyncInterval FsyncPolicy = "interval"
	// FsyncNone never fsyncs except on segment roll and Close.
	FsyncNone FsyncPolicy = "none"
)

func (p FsyncPolicy) valid() bool {
	return p == FsyncAlways || p == FsyncInterval || p == FsyncNone
}

var (
	// ErrClosed is returned by operations on a closed Engine or Log.
	ErrClosed = errors.New("storage: closed")
	// ErrWrongNode is returned by Open when the data directory was created
	// for another node ID.
	ErrWrongNode = errors.New("storage: data directory belongs to another node")
	// ErrCorrupt is returned when on-disk data fails its checks anywhere
	// but a torn WAL tail; the wrapping error names the file and offset.
	ErrCorrupt = errors.New("storage: corrupt data")
	// ErrFailed is returned when a write hit a disk error (ENOSPC, a failed
	// write or fsync). The engine refuses all further writes until it is
	// reopened, because the state of unsynced data is then unknown.
	ErrFailed = errors.New("storage: disk write failed; reopen required")
	// ErrTooLarge is returned by Apply and Update for a key longer than
	// Config.MaxKeyBytes or a new version whose value is larger than
	// Config.MaxValueBytes. Nothing is written.
	ErrTooLarge = errors.New("storage: key or value exceeds the configured limit")
	// ErrInvalid is returned for bad arguments: an empty key, a sibling set
	// that is not canonical, a partition out of range, a record too large.
	ErrInvalid = errors.New("storage: invalid argument")
)

// Config configures an Engine. Build it from DefaultConfig.
type Config struct {
	// Dir is the data directory; it is created if missing.
	Dir string
	// NodeID is this node's name. A directory created for another NodeID
	// is refused with ErrWrongNode.
	NodeID string
	// Fsync is the WAL fsync policy. Default FsyncAlways.
	Fsync FsyncPolicy
	// FsyncInterval is the fsync period under FsyncInterval. Default 10ms.
	FsyncInterval time.Duration
	// SegmentBytes is the size at which the WAL rolls to a new segment
	// file. Default 64 MiB.
	SegmentBytes int64
	// SnapshotBytes is the number of WAL bytes written since the last
	// snapshot began that triggers a background snapshot. Default 256 MiB
	// (also for 0); a negative value disables automatic snapshots.
	SnapshotBytes int64
	// TombstoneGC is how long a tombstone is kept: Engine.Collect drops a
	// key whose versions are all tombstones once it was received (by Now,
	// this node's clock) more than this long ago and anti-entropy marked
	// its partition in sync after it was received (Engine.MarkSynced).
	// Snapshots never drop keys. Default 240h (10 days).
	TombstoneGC time.Duration
	// MaxKeyBytes is the longest key Apply and Update accept; a longer one
	// fails with ErrTooLarge. The front ends check the same limit, but
	// data also enters through replication, read repair and handoff, from
	// peers that are not trusted to have checked. Default 1 KiB.
	MaxKeyBytes int
	// MaxValueBytes is the largest value of a version Apply and Update
	// accept (versions already stored are not checked again, so lowering
	// it never makes a key unwritable); a larger one fails with
	// ErrTooLarge. Default 1 MiB.
	MaxValueBytes int
	// Partitions is the number of partitions (index shards); required >= 1.
	Partitions int
	// Partitioner maps a key to its partition in [0, Partitions); required.
	// It must be a pure function: the index, Range and PartitionStats rely
	// on a key always landing in the same partition.
	Partitioner func(key []byte) int
	// Now is the clock for keys' receipt times and tombstone GC; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives lifecycle and recovery messages; nil discards.
	Logger *slog.Logger
	// OnFsync, if set, is called by the WAL writer after each batch fsync
	// with its duration and the number of records it made durable.
	OnFsync func(d time.Duration, batch int)
	// OnSnapshot, if set, is called after each snapshot attempt.
	OnSnapshot func(d time.Duration, err error)
	// FS is the filesystem; nil means the operating system's. Tests inject
	// faults through it.
	FS FS
	// FileMode is the most a file the engine writes may allow; directories
	// get DirMode(FileMode). Open takes away anything more from what is
	// already in Dir (hints and gossip state included), logging what it
	// changed. Used when FS is nil (OSFS) or implements Tighten. Default
	// DefaultFileMode (0600, directories 0700).
	FileMode os.FileMode
}

// DefaultConfig returns a complete Config except for Dir, NodeID,
// Partitions and Partitioner, which have no sensible defaults.
func DefaultConfig() Config {
	l := DefaultLogConfig()
	return Config{
		Fsync:         l.Fsync,
		FsyncInterval: l.FsyncInterval,
		SegmentBytes:  l.SegmentBytes,
		SnapshotBytes: 256 << 20,
		TombstoneGC:   240 * time.Hour,
		MaxKeyBytes:   1 << 10,
		MaxValueBytes: 1 << 20,
	}
}

// withDefaults fills the zero values that have documented defaults.
func (c Config) withDefaults() Config {
	// The WAL fields share LogConfig's defaults.
	l := c.logConfig().withDefaults()
	c.Fsync, c.FsyncInterval, c.SegmentBytes = l.Fsync, l.FsyncInterval, l.SegmentBytes
	d := DefaultConfig()
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = d.SnapshotBytes
	}
	if c.TombstoneGC == 0 {
		c.TombstoneGC = d.TombstoneGC
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = d.MaxKeyBytes
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = d.MaxValueBytes
	}
	if c.FileMode == 0 {
		c.FileMode = DefaultFileMode
	}
	return c
}

// Validate checks the configuration. Zero values of fields that have a
// default are accepted and mean that default.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: config: Dir is required", ErrInvalid)
	case c.NodeID == "":
		return fmt.Errorf("%w: config: NodeID is required", ErrInvalid)
	case c.Partitions < 1:
		return fmt.Errorf("%w: config: Partitions is %d, need >= 1", ErrInvalid, c.Partitions)
	case c.Partitioner == nil:
		return fmt.Errorf("%w: config: Partitioner is required", ErrInvalid)
	case c.TombstoneGC <= 0:
		return fmt.Errorf("%w: config: TombstoneGC is %v, need > 0", ErrInvalid, c.TombstoneGC)
	case c.MaxKeyBytes < 1 || c.MaxValueBytes < 1:
		return fmt.Errorf("%w: config: MaxKeyBytes (%d) and MaxValueBytes (%d) must be positive", ErrInvalid, c.MaxKeyBytes, c.MaxValueBytes)
	}
	if err := ValidFileMode(c.FileMode); err != nil {
		return fmt.Errorf("config: FileMode: %w", err)
	}
	return c.logConfig().Validate()
}

func (c Config) logConfig() LogConfig {
	return LogConfig{
		Dir:           c.Dir + "/wal",
		Fsync:         c.Fsync,
		FsyncInterval: c.FsyncInterval,
		SegmentBytes:  c.SegmentBytes,
		Logger:        c.Logger,
		OnFsync:       c.OnFsync,
		FS:            c.FS,
	}
}

// LogConfig configures a Log, the WAL used by the Engine and reusable by
// other packages (hinted handoff) that need durable append-only records.
type LogConfig struct {
	// Dir holds the segment files; it is created if missing.
	Dir string
	// Fsync is the fsync policy. Default FsyncAlways.
	Fsync FsyncPolicy
	// FsyncInterval is the fsync period under FsyncInterval. Default 10ms.
	FsyncInterval time.Duration
	// SegmentBytes is the size at which the log rolls to a new segment.
	// Default 64 MiB; a record larger than this gets a segment of its own.
	SegmentBytes int64
	// Logger receives recovery messages; nil discards.
	Logger *slog.Logger
	// OnFsync, if set, is called by the writer after each batch fsync.
	OnFsync func(d time.Duration, batch int)
	// FS is the filesystem; nil means the operating system's.
	FS FS
	// Expect, when set, is where a clean close left the log (see
	// LogEnd): OpenLog refuses a log that ends anywhere else instead of
	// cutting or accepting it. Default nil (no check).
	Expect *LogEnd
}

// DefaultLogConfig returns a complete LogConfig except for Dir.
func DefaultLogConfig() LogConfig {
	return LogConfig{Fsync: FsyncAlways, FsyncInterval: 10 * time.Millisecond, SegmentBytes: 64 << 20}
}

func (c LogConfig) withDefaults() LogConfig {
	d := DefaultLogConfig()
	if c.Fsync == "" {
		c.Fsync = d.Fsync
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = d.FsyncInterval
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	return c
}

// MinSegmentBytes is the smallest LogConfig.SegmentBytes (and
// Config.SegmentBytes) accepted: a page.
const MinSegmentBytes = 4096

// Validate checks the configuration. Zero values of fields that have a
// default are accepted and mean that default.
func (c LogConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: log config: Dir is required", ErrInvalid)
	case !c.Fsync.valid():
		return fmt.Errorf("%w: log config: Fsync is %q, want always, interval or none", ErrInvalid, c.Fsync)
	case c.Fsync == FsyncInterval && c.FsyncInterval <= 0:
		return fmt.Errorf("%w: log config: FsyncInterval is %v, need > 0", ErrInvalid, c.FsyncInterval)
	case c.SegmentBytes < MinSegmentBytes:
		return fmt.Errorf("%w: log config: SegmentBytes is %d, need >= %d", ErrInvalid, c.SegmentBytes, MinSegmentBytes)
	}
	return nil
}

func discardIfNil(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
