package node

import (
	"path/filepath"

	"github.com/ringkv/ringkv/gossip"
	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/storage"
)

// One function per package maps the node's configuration onto that
// package's Config, starting from the package's DefaultConfig: the fields
// a node does not expose keep the package's defaults, and Validate checks
// what these return with the package's own Validate. Dependencies that
// exist only at run time (callbacks, transports, loggers) are set by the
// builders in build.go.

// storageConfig is the storage engine's configuration, without its
// Partitioner and callbacks.
func (c Config) storageConfig() storage.Config {
	s := storage.DefaultConfig()
	s.Dir = c.DataDir()
	s.NodeID = c.Node.Name
	s.Fsync = storage.FsyncPolicy(c.Storage.Fsync)
	s.FsyncInterval = c.Storage.FsyncInterval
	s.SegmentBytes = c.Storage.SegmentBytes
	s.SnapshotBytes = c.Storage.SnapshotBytes
	s.TombstoneGC = c.Storage.TombstoneGC
	s.FileMode, _ = c.Storage.fileMode() // an unparsable mode is Validate's error
	// The limits hold where data enters storage, not only at the front
	// doors: peers' stores, repairs and handoffs go through the engine.
	s.MaxKeyBytes = c.Limits.MaxKeyBytes
	s.MaxValueBytes = max(c.Limits.MaxValueBytes, 1)
	s.Partitions = c.Cluster.Partitions
	return s
}

// hintsConfig is the hint queue's configuration, without its Deliverer,
// Replicas and Logger. The WAL settings are storage's.
func (c Config) hintsConfig() hints.Config {
	h := hints.DefaultConfig()
	h.Dir = filepath.Join(c.DataDir(), "hints")
	h.Fsync = storage.FsyncPolicy(c.Storage.Fsync)
	h.FsyncInterval = c.Storage.FsyncInterval
	h.FileMode, _ = c.Storage.fileMode()
	// A hint older than the tombstone grace is dropped: delivered after the
	// tombstone that superseded it was collected, it would bring the value
	// back. The hint's age is counted by this node's clock and the grace
	// by the replicas', so a tenth of the grace is kept as margin for
	// skew between them. No hint is taken for a target down longer.
	h.Grace = c.Storage.TombstoneGC - c.Storage.TombstoneGC/10
	h.Window = min(c.Hints.Window, h.Grace)
	h.MaxBytesPerTarget = c.Hints.MaxBytesPerTarget
	h.DeliveryRate = c.Hints.DeliveryRate
	h.RetryInterval = c.Hints.RetryInterval
	h.MaxKeyBytes = c.Limits.MaxKeyBytes
	h.MaxValueBytes = max(c.Limits.MaxValueBytes, 1)
	// A batch must fit one RPC frame with room to spare.
	h.BatchBytes = max(1<<20, 2*c.Limits.MaxValueBytes)
	return h
}

// replicaConfig is the coordinator's configuration, without the pieces it
// is wired to (placement, store, transport, liveness, hints, tree).
func (c Config) replicaConfig() replica.Config {
	r := replica.DefaultConfig()
	r.Self = c.Node.Name
	r.N = c.Cluster.Replication
	r.DefaultR, _ = replica.ParseQuorum(c.Quorum.R) // a bad spelling is Validate's error
	r.DefaultW, _ = replica.ParseQuorum(c.Quorum.W)
	r.Timeout = c.Quorum.Timeout
	r.Sloppy = c.Quorum.Sloppy
	r.ReadHedge = c.Quorum.ReadHedge
	r.MaxKeyBytes = c.Limits.MaxKeyBytes
	r.MaxSiblings, r.WarnSiblings = c.Limits.MaxSiblings, c.Limits.MaxSiblings/4
	r.Partitions = c.Cluster.Partitions
	r.TransferBatchBytes = transferBatchBytes(c.tcpConfig().MaxFrameBytes)
	return r
}

// tcpConfig is the internal RPC transport's configuration, without its
// resolver, logger and TLS.
func (c Config) tcpConfig() replica.TCPConfig {
	t := replica.DefaultTCPConfig()
	t.Self = c.Node.Name
	// Peer connections leave from the RPC listen IP, as gossip's leave
	// from its bind IP: rules that match a node by its address then see
	// its traffic both ways.
	t.SourceIP = sourceIP(c.Listen.RPC)
	// A store carries a whole sibling set: leave room for a few maximal values.
	t.MaxFrameBytes = max(t.MaxFrameBytes, 8*c.Limits.MaxValueBytes+(1<<20))
	return t
}

// gossipConfig is gossip's configuration, without its Meta, advertised
// address, Bootstrap and callbacks.
func (c Config) gossipConfig() gossip.Config {
	g := gossip.DefaultConfig()
	if c.Gossip.Profile == gossip.ProfileLocal {
		g = gossip.LocalConfig()
	}
	g.Name = c.Node.Name
	g.Zone = c.Node.Zone
	g.BindAddr = c.Listen.Gossip
	g.Seeds = c.Seeds
	g.Dir = c.DataDir()
	g.Keys, _ = c.Gossip.keys() // bad keys are Validate's error
	return g
}
