package node

import (
	"strings"
	"testing"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/ring"
	"github.com/ringkv/ringkv/storage"
)

// TestDefaultsArePackageDefaults: the node's defaults, mapped onto each
// package's Config, are that package's defaults, so a default changed in a
// package changes the server's and the two cannot drift. (Settings the
// node derives from others, such as the hint batch and the transfer batch
// that must fit an RPC frame, are the node's own rules.)
func TestDefaultsArePackageDefaults(t *testing.T) {
	c := DefaultConfig()
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s: node default maps to %v, package default is %v", what, got, want)
		}
	}
	sd, sg := storage.DefaultConfig(), c.storageConfig()
	check("storage.Fsync", sg.Fsync, sd.Fsync)
	check("storage.FsyncInterval", sg.FsyncInterval, sd.FsyncInterval)
	check("storage.SegmentBytes", sg.SegmentBytes, sd.SegmentBytes)
	check("storage.SnapshotBytes", sg.SnapshotBytes, sd.SnapshotBytes)
	check("storage.TombstoneGC", sg.TombstoneGC, sd.TombstoneGC)
	check("storage.MaxKeyBytes", sg.MaxKeyBytes, sd.MaxKeyBytes)
	check("storage.MaxValueBytes", sg.MaxValueBytes, sd.MaxValueBytes)
	check("storage.FileMode", sg.FileMode, storage.DefaultFileMode)

	hd, hg := hints.DefaultConfig(), c.hintsConfig()
	check("hints.Window", hg.Window, hd.Window)
	check("hints.MaxBytesPerTarget", hg.MaxBytesPerTarget, hd.MaxBytesPerTarget)
	check("hints.DeliveryRate", hg.DeliveryRate, hd.DeliveryRate)
	check("hints.RetryInterval", hg.RetryInterval, hd.RetryInterval)
	check("hints.SegmentBytes", hg.SegmentBytes, hd.SegmentBytes)
	check("hints.MaxKeyBytes", hg.MaxKeyBytes, hd.MaxKeyBytes)
	check("hints.MaxValueBytes", hg.MaxValueBytes, hd.MaxValueBytes)

	rd, rg := replica.DefaultConfig(), c.replicaConfig()
	check("replica.N", rg.N, rd.N)
	check("replica.DefaultR", rg.DefaultR, rd.DefaultR)
	check("replica.DefaultW", rg.DefaultW, rd.DefaultW)
	check("replica.Timeout", rg.Timeout, rd.Timeout)
	check("replica.Sloppy", rg.Sloppy, rd.Sloppy)
	check("replica.ReadHedge", rg.ReadHedge, rd.ReadHedge)
	check("replica.MaxSiblings", rg.MaxSiblings, rd.MaxSiblings)
	check("replica.WarnSiblings", rg.WarnSiblings, rd.WarnSiblings)

	td, tg := replica.DefaultTCPConfig(), c.tcpConfig()
	check("tcp.MaxFrameBytes", tg.MaxFrameBytes, td.MaxFrameBytes)

	gd, gg := gossip.DefaultConfig(), c.gossipConfig()
	check("gossip.Profile", gg.Profile, gd.Profile)

	check("ring.Partitions", c.RingConfig().Partitions, ring.DefaultConfig().Partitions)
	check("ring.ReplicationFactor", c.RingConfig().ReplicationFactor, ring.DefaultConfig().ReplicationFactor)
	check("transfer.max_in_flight", c.Transfer.MaxInFlight, replica.DefaultPullerConfig().MaxInFlight)
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
		{"segment below the engine's minimum", func(c *Config) { c.Storage.SegmentBytes, c.Storage.SnapshotBytes = 4095, 4096 }, "config storage: storage: invalid argument: log config: SegmentBytes is 4095, need >= 4096"},
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
