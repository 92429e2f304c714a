package hints

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ringkv/ringkv/internal/vfs"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrHintWindow: the target has been down longer than Config.Window, so
	// the hint was dropped (counted, not stored); only a read repair of
	// the key brings the write to the target.
	ErrHintWindow = errors.New("hints: target down longer than the hint window")
	// ErrHintCap: storing the hint would take the target's pending hints
	// past Config.MaxBytesPerTarget, so it was dropped (counted, not stored).
	ErrHintCap = errors.New("hints: per-target hint cap reached")
	// ErrBadHint: an empty target or key, or a sibling set that is empty or
	// not canonical. Nothing was stored.
	ErrBadHint = errors.New("hints: bad hint")
	// ErrBadRecord: bytes read from a hint log that are not a valid record.
	ErrBadRecord = errors.New("hints: malformed hint record")
	// ErrClosed: the queue was closed.
	ErrClosed = errors.New("hints: closed")
	// ErrTooLarge: a Deliverer wraps it to say a batch can never be
	// carried to its target as sent (it exceeds the transport's frame
	// limit), however often it is retried. The queue then splits the
	// batch, and a single hint refused so is dropped and counted
	// (Stats.DroppedTooLarge) instead of blocking every hint behind it.
	ErrTooLarge = errors.New("hints: batch too large to deliver")
)

// Hint is one key's pending sibling set for a target: what a batch
// delivers. The receiver merges Siblings into its copy of Key.
type Hint struct {
	// Key is the key the set belongs to.
	Key []byte
	// Siblings is the merge of every set hinted for Key since it was last
	// delivered: a whole sibling set, never a lone version.
	Siblings vclock.Siblings
}

// Deliverer sends a batch of hints to a target node, which merges each set
// into its store (vclock.Merge, so a repeated batch changes nothing). It
// returns nil only once the target acknowledged every hint of the batch
// durably. An error wrapping ErrTooLarge means the batch can never be sent
// as it is (a permanent failure); any other error is taken as transient
// and ends the delivery round. Called from several goroutines at once (one per target); the
// batch must not be modified or retained after Deliver returns.
type Deliverer interface {
	Deliver(ctx context.Context, target string, batch []Hint) error
}

// DelivererFunc adapts a function to Deliverer.
type DelivererFunc func(ctx context.Context, target string, batch []Hint) error

// Deliver calls f.
func (f DelivererFunc) Deliver(ctx context.Context, target string, batch []Hint) error {
	return f(ctx, target, batch)
}

var _ Deliverer = DelivererFunc(nil)

// Clock is the queue's time source: Now for the window and delivery lag,
// After for the retry timer and rate pacing. Safe for concurrent use.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// realClock is the operating system's clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Queue. Build it from DefaultConfig.
type Config struct {
	// Dir holds one hint log directory per target (normally
	// <dataDir>/hints). Created if missing. Required.
	Dir string
	// Fsync is the hint logs' fsync policy, the same choice as the WAL's.
	// Default storage.FsyncAlways.
	Fsync storage.FsyncPolicy
	// FsyncInterval is the fsync period under storage.FsyncInterval.
	// Default 10ms.
	FsyncInterval time.Duration
	// SegmentBytes is the size at which a hint log rolls to a new segment.
	// Default 8 MiB.
	SegmentBytes int64
	// Window is how long a target may be down and still get new hints;
	// hints for a target down longer are dropped with ErrHintWindow.
	// Default 3h (Cassandra's max_hint_window). At most Grace.
	Window time.Duration
	// Grace is the longest a pending hint is kept: a key whose oldest
	// pending hint was stored longer ago than Grace (by Clock) is dropped,
	// never delivered, counted in Stats.DroppedExpired, and left to
	// anti-entropy. It must not exceed the target's tombstone GC grace
	// (storage.Config.TombstoneGC; node sets it from storage.tombstone_gc):
	// a hint delivered after the tombstone that superseded its value was
	// collected would bring the deleted value back. Default 240h (storage's
	// default TombstoneGC).
	Grace time.Duration
	// MaxKeyBytes and MaxValueBytes are the key and value limits of the
	// store (storage.Config's fields of the same names): a hint whose key
	// or one of whose values is larger fails with ErrBadHint wrapping
	// storage.ErrTooLarge. Defaults 1 KiB and 1 MiB.
	MaxKeyBytes, MaxValueBytes int
	// MaxBytesPerTarget caps the pending hints kept for one target, in
	// encoded bytes; a hint past it is dropped with ErrHintCap. Default
	// 1 GiB.
	MaxBytesPerTarget int64
	// DeliveryRate caps delivery to one target, in hints per second.
	// Targets are delivered to in parallel, each at this rate. Default 5000.
	DeliveryRate int
	// RetryInterval is how often pending hints are offered to targets that
	// are not known to be down. Default 10s.
	RetryInterval time.Duration
	// BatchSize is the most hints sent in one delivery call. Default 256.
	BatchSize int
	// BatchBytes bounds the encoded size of one batch (a single larger
	// hint still goes alone). Default 1 MiB.
	BatchBytes int
	// DeliveryTimeout bounds one delivery call. Default 10s.
	DeliveryTimeout time.Duration
	// Deliverer sends batches to targets. Required by Start; a queue that
	// is never started only stores hints.
	Deliverer Deliverer
	// Replicas returns the current replicas of a key; RingChanged,
	// RingSnapshot, Remove and the retry timer use it
	// to re-route the hints of a target removed from the ring. Nil drops
	// such hints (counted as DroppedRemoved).
	Replicas func(key []byte) []string
	// Clock is the time source; nil means the real clock.
	Clock Clock
	// Logger receives lifecycle and warning lines; nil discards.
	Logger *slog.Logger
	// FileMode is the most a hint file may allow; directories get
	// storage.DirMode(FileMode). Default storage.DefaultFileMode (0600,
	// directories 0700).
	FileMode os.FileMode
	// FS is the hint logs' filesystem: a DirFS, since each target has a
	// directory of its own. Tests set it to hold writes back or to
	// simulate crashes (vfstest.CrashFS). Default nil: the operating
	// system's, with FileMode.
	FS vfs.DirFS
}

// DefaultConfig returns a complete Config except for Dir and Deliverer.
func DefaultConfig() Config {
	return Config{
		Fsync:             storage.FsyncAlways,
		FsyncInterval:     10 * time.Millisecond,
		SegmentBytes:      8 << 20,
		Window:            3 * time.Hour,
		Grace:             240 * time.Hour,
		MaxBytesPerTarget: 1 << 30,
		DeliveryRate:      5000,
		RetryInterval:     10 * time.Second,
		BatchSize:         256,
		BatchBytes:        1 << 20,
		DeliveryTimeout:   10 * time.Second,
		MaxKeyBytes:       1 << 10,
		MaxValueBytes:     1 << 20,
	}
}

// withDefaults fills the zero values that have documented defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	// Fsync and FsyncInterval stay as given: storage.LogConfig fills its
	// own defaults for zero values.
	if c.SegmentBytes == 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	if c.FileMode == 0 {
		c.FileMode = storage.DefaultFileMode
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.Grace == 0 {
		c.Grace = d.Grace
	}
	if c.MaxBytesPerTarget == 0 {
		c.MaxBytesPerTarget = d.MaxBytesPerTarget
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = d.MaxKeyBytes
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = d.MaxValueBytes
	}
	if c.DeliveryRate == 0 {
		c.DeliveryRate = d.DeliveryRate
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = d.RetryInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = d.BatchBytes
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = d.DeliveryTimeout
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration. Zero values of fields that have a
// default are accepted and mean that default.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("hints: config: "+f, a...)) }
	if c.Dir == "" {
		bad("Dir is required")
	}
	if c.Window < 0 {
		bad("Window is %v, need > 0", c.Window)
	}
	if c.Grace < 0 {
		bad("Grace is %v, need > 0", c.Grace)
	} else if c.Window > c.Grace {
		// A hint stored at the end of the window must still be
		// deliverable for a while before it expires.
		bad("Window %v is longer than Grace %v, need Window <= Grace", c.Window, c.Grace)
	}
	if c.MaxBytesPerTarget < 0 {
		bad("MaxBytesPerTarget is %d, need > 0", c.MaxBytesPerTarget)
	}
	if c.DeliveryRate < 0 {
		bad("DeliveryRate is %d hints/s, need > 0", c.DeliveryRate)
	}
	if c.RetryInterval < 0 {
		bad("RetryInterval is %v, need > 0", c.RetryInterval)
	}
	if c.BatchSize < 0 {
		bad("BatchSize is %d, need > 0", c.BatchSize)
	}
	if c.BatchBytes < 0 {
		bad("BatchBytes is %d, need > 0", c.BatchBytes)
	}
	if c.DeliveryTimeout < 0 {
		bad("DeliveryTimeout is %v, need > 0", c.DeliveryTimeout)
	}
	if err := c.logConfig("x").Validate(); err != nil {
		bad("%w", err)
	}
	if err := storage.ValidFileMode(c.FileMode); err != nil {
		bad("FileMode: %w", err)
	}
	return errors.Join(errs...)
}

// logConfig is the storage.Log configuration of one target's log in dir.
func (c Config) logConfig(dir string) storage.LogConfig {
	return storage.LogConfig{
		Dir:           dir,
		Fsync:         c.Fsync,
		FsyncInterval: c.FsyncInterval,
		SegmentBytes:  c.SegmentBytes,
		Logger:        c.Logger,
		FS:            c.logFS(),
	}
}

// logFS is the hint logs' filesystem: the injected one, else the
// operating system's with the configured modes.
func (c Config) logFS() vfs.DirFS {
	if c.FS != nil {
		return c.FS
	}
	return storage.OSFS{FileMode: c.FileMode}
}
