package node

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/ring"
	"github.com/ringkv/ringkv/storage"
)

// TestDefaultsArePackageDefaults: the server's defaults are the values
// written here, as the node's Config, as mapped onto each package's
// Config and as each package's own DefaultConfig (the node takes its
// defaults from there). A default changed in a package, or a mapping that
// loses one, fails here, so it is a decision and not a side effect; the
// values are those documented in docs/configuration.md. (Settings the
// node derives from others, such as the hint batch and the transfer batch
// that must fit an RPC frame, are the node's own rules.)
func TestDefaultsArePackageDefaults(t *testing.T) {
	c := DefaultConfig()
	sd, sg := storage.DefaultConfig(), c.storageConfig()
	hd, hg := hints.DefaultConfig(), c.hintsConfig()
	rd, rg := replica.DefaultConfig(), c.replicaConfig()
	td, tg := replica.DefaultTCPConfig(), c.tcpConfig()
	gd, gg := gossip.DefaultConfig(), c.gossipConfig()
	quorum := replica.QuorumMajority
	tests := []struct {
		what string
		want any
		// got holds the node's value, then the mapped one and the
		// package's default, where each exists.
		got []any
	}{
		{"cluster.partitions", 2039, []any{c.Cluster.Partitions, c.RingConfig().Partitions, ring.DefaultConfig().Partitions}},
		{"cluster.replication", 3, []any{c.Cluster.Replication, rg.N, rd.N, c.RingConfig().ReplicationFactor, ring.DefaultConfig().ReplicationFactor}},
		{"quorum.r", quorum, []any{rg.DefaultR, rd.DefaultR}},
		{"quorum.w", quorum, []any{rg.DefaultW, rd.DefaultW}},
		{"quorum.r spelling", "quorum", []any{c.Quorum.R, c.Quorum.W}},
		{"quorum.timeout", 2 * time.Second, []any{c.Quorum.Timeout, rg.Timeout, rd.Timeout}},
		{"quorum.sloppy", true, []any{c.Quorum.Sloppy, rg.Sloppy, rd.Sloppy}},
		{"quorum.read_hedge", 5 * time.Millisecond, []any{c.Quorum.ReadHedge, rg.ReadHedge, rd.ReadHedge}},
		{"storage.fsync", storage.FsyncAlways, []any{storage.FsyncPolicy(c.Storage.Fsync), sg.Fsync, sd.Fsync, hg.Fsync}},
		{"storage.fsync_interval", 10 * time.Millisecond, []any{c.Storage.FsyncInterval, sg.FsyncInterval, sd.FsyncInterval}},
		{"storage.segment_bytes", int64(64 << 20), []any{c.Storage.SegmentBytes, sg.SegmentBytes, sd.SegmentBytes}},
		{"storage.snapshot_bytes", int64(256 << 20), []any{c.Storage.SnapshotBytes, sg.SnapshotBytes, sd.SnapshotBytes}},
		{"storage.tombstone_gc", 240 * time.Hour, []any{c.Storage.TombstoneGC, sg.TombstoneGC, sd.TombstoneGC}},
		{"storage.file_mode", os.FileMode(0o600), []any{sg.FileMode, storage.DefaultFileMode, hg.FileMode}},
		{"storage.file_mode spelling", "0600", []any{c.Storage.FileMode}},
		{"limits.max_key_bytes", 1024, []any{c.Limits.MaxKeyBytes, sg.MaxKeyBytes, sd.MaxKeyBytes, hg.MaxKeyBytes, hd.MaxKeyBytes}},
		{"limits.max_value_bytes", 1 << 20, []any{c.Limits.MaxValueBytes, sg.MaxValueBytes, sd.MaxValueBytes, hg.MaxValueBytes, hd.MaxValueBytes}},
		{"limits.max_siblings", 100, []any{c.Limits.MaxSiblings, rg.MaxSiblings, rd.MaxSiblings}},
		{"replica.WarnSiblings", 25, []any{rg.WarnSiblings, rd.WarnSiblings}},
		{"hints.window", 3 * time.Hour, []any{c.Hints.Window, hg.Window, hd.Window}},
		{"hints.max_bytes_per_target", int64(1 << 30), []any{c.Hints.MaxBytesPerTarget, hg.MaxBytesPerTarget, hd.MaxBytesPerTarget}},
		{"hints.delivery_rate", 5000, []any{c.Hints.DeliveryRate, hg.DeliveryRate, hd.DeliveryRate}},
		{"hints.retry_interval", 10 * time.Second, []any{c.Hints.RetryInterval, hg.RetryInterval, hd.RetryInterval}},
		{"hints.SegmentBytes", int64(8 << 20), []any{hg.SegmentBytes, hd.SegmentBytes}},
		{"tcp.MaxFrameBytes", 64 << 20, []any{tg.MaxFrameBytes, td.MaxFrameBytes}},
		{"gossip.profile", gossip.ProfileLAN, []any{c.Gossip.Profile, gg.Profile, gd.Profile}},
		{"transfer.max_in_flight", 4, []any{c.Transfer.MaxInFlight, replica.DefaultPullerConfig().MaxInFlight}},
	}
	for _, tt := range tests {
		for i, got := range tt.got {
			if got != tt.want {
				t.Errorf("%s: value %d of %v is %v (%T), want %v (%T)", tt.what, i, tt.got, got, got, tt.want, tt.want)
			}
		}
	}
}

// TestValidateDelegates: the storage engine's own rules decide what the
// node accepts (segments down to its 4096-byte minimum, snapshots off with
// a negative size), and quorum spellings are read in any case.
func TestValidateDelegates(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // "" accepts
	}{
		{"smallest segment", func(c *Config) { c.Storage.SegmentBytes, c.Storage.SnapshotBytes = 4096, 4096 }, ""},
		{"segment below the engine's minimum", func(c *Config) { c.Storage.SegmentBytes, c.Storage.SnapshotBytes = 4095, 4096 }, "config storage.segment_bytes: must be at least 4096 (the storage engine's minimum), got 4095"},
		{"snapshots off", func(c *Config) { c.Storage.SnapshotBytes = -1 }, ""},
		{"snapshot smaller than a segment", func(c *Config) { c.Storage.SnapshotBytes = 0 }, "config storage.snapshot_bytes: must be at least storage.segment_bytes"},
		{"quorum in capitals", func(c *Config) { c.Quorum.R, c.Quorum.W = "QUORUM", "All" }, ""},
		{"quorum above N", func(c *Config) { c.Quorum.W = "4" }, "config quorum.w: must be in 1..3 (cluster.replication), got 4"},
		{"hint window 0", func(c *Config) { c.Hints.Window = 0 }, "config hints: window, max_bytes_per_target, delivery_rate and retry_interval must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
