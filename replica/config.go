package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// Store is the node's local storage engine (satisfied by *storage.Engine).
// Every method is safe for concurrent use.
type Store interface {
	// Get returns the key's sibling set, nil if absent. It never blocks on
	// fsync. The result is shared: callers must not modify it.
	Get(key []byte) vclock.Siblings
	// Apply merges s into the key's set, persists the result durably and
	// returns the merged set.
	Apply(ctx context.Context, key []byte, s vclock.Siblings) (vclock.Siblings, error)
	// Update calls fn with the key's current set under the key's lock; the
	// set fn returns replaces the stored one and is persisted durably
	// before Update returns it. An error from fn aborts without writing.
	Update(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, error)
	// Incarnation is the vclock actor for dots this node mints.
	Incarnation() string
	// Scan returns, in key order, up to maxKeys entries of partition whose
	// keys sort after after (all when after is empty), stopping early once
	// maxBytes are collected but returning at least one entry when any
	// remains; more reports keys beyond the last returned. The sets are
	// shared: callers must not modify them.
	Scan(partition int, after []byte, maxKeys int, maxBytes int64) (keys [][]byte, sets []vclock.Siblings, more bool)
}

// Placement is an immutable placement snapshot (satisfied by
// *ring.Transition). Its methods are pure lookups, safe for concurrent use.
//
// During a membership change a partition has two replica sets: Replicas,
// which hold a full copy and serve reads and coordinate writes, and
// Targets, the replicas after the change. Pending (Targets not in
// Replicas) receive every write and coordinate none; a read asks them too,
// and their answers count only toward the quorum of Targets (a read also
// needs R of Replicas, which hold a full copy). When no change is in
// progress Pending is empty and Targets equals Replicas.
type Placement interface {
	// Partition maps a key to its partition.
	Partition(key []byte) int
	// Replicas is the partition's serving preference list: up to N
	// distinct node names, fewer when the cluster is smaller. The slice is
	// shared: do not modify it.
	Replicas(partition int) []string
	// Fallbacks is the remaining members in ring order, the stand-ins for
	// hinted handoff; it holds no node of Replicas or Pending. Shared, do
	// not modify.
	Fallbacks(partition int) []string
	// Pending is the partition's replicas-to-be that are not serving yet:
	// Targets minus Replicas. Empty when no change is in progress. Shared.
	Pending(partition int) []string
	// Targets is the partition's preference list after the change in
	// progress; equal to Replicas when there is none. Shared.
	Targets(partition int) []string
	// Epoch is the epoch of the plan the snapshot was built from; requests
	// carry it so that a replica can tell a coordinator with an older view.
	// 0 when unknown.
	Epoch() uint64
}

// ZonedPlacement is optionally implemented by a Placement whose members
// may have zones (satisfied by *ring.Transition). A write then hands a
// down replica's hint to a live fallback of the replica's own zone when
// there is one, so the hint stays where the copy would have been.
type ZonedPlacement interface {
	// Zoned reports whether any member has a zone.
	Zoned() bool
	// Zone returns node's zone, "" when it has none. It must not block
	// or allocate.
	Zone(node string) string
}

// Liveness reports whether a node is believed up (satisfied by
// *gossip.Gossip). Safe for concurrent use, never blocks.
type Liveness interface {
	Alive(node string) bool
}

// HintSink keeps a sibling set for a replica that is down, to be delivered
// later (satisfied by the hinted-handoff queue). Optional: without one, a
// store request carrying HintFor is refused with ErrNoHints.
type HintSink interface {
	// StoreHint durably records s for key on behalf of target.
	StoreHint(ctx context.Context, target string, key []byte, s vclock.Siblings) error
}

// Tree constants fix the shape of every partition's hash tree: level 0 is
// the root, level 1 has TreeFanout nodes, level 2 (the leaves) has
// TreeLeaves. They are protocol: peers compare node hashes by index, so
// every node of a cluster must agree (node checks at wiring that storage
// builds the same tree).
const (
	// TreeLevels is the number of levels: root, inner nodes, leaves.
	TreeLevels = 3
	// TreeFanout is the number of children of every inner node.
	TreeFanout = 16
	// TreeLeaves is the number of leaves: TreeFanout^(TreeLevels-1). A key's
	// leaf is xxhash64(key) % TreeLeaves.
	TreeLeaves = TreeFanout * TreeFanout
)

// KeyDigest is one key of a tree leaf as the anti-entropy exchange
// compares it (storage.KeyDigest, adapted by node).
type KeyDigest struct {
	_msgpack struct{} `msgpack:",as_array"`
	// Key is the key; never empty.
	Key []byte
	// Digest hashes the key and the dots of its sibling set (not their
	// contexts): equal digests mean equal sets, except that every set
	// of tombstones alone has digest 0.
	Digest uint64
	// Tombstone is set when every version of the set is a tombstone. A
	// key one replica lacks while the other holds only tombstones for it
	// is left alone by anti-entropy: the side lacking it has no value the
	// tombstones could delete (or collected them after a full sync), and
	// sending them back would only bounce them between replicas whose
	// grace periods end at different times, never letting them go.
	Tombstone bool
}

// Tree is the local store's anti-entropy view: a hash tree per partition
// over its keys' sibling sets (satisfied, through a small adapter in node,
// by *storage.Engine). Every method is safe for concurrent use and does
// not block on I/O.
type Tree interface {
	// TreeHashes returns the hashes of the named nodes of partition's tree
	// at level (0..TreeLevels-1), in the order named; nodes nil or empty
	// names every node of the level. A bad partition, level or index is an
	// error. The result belongs to the caller.
	TreeHashes(partition, level int, nodes []uint32) ([]uint64, error)
	// LeafKeys returns partition's keys whose leaf is in leaves, sorted by
	// key, with their digests and Tombstone flags; at most maxKeys of
	// them, the first in key order, and more reports that keys were left
	// out. The result belongs to the caller.
	LeafKeys(partition int, leaves []uint32, maxKeys int) (keys []KeyDigest, more bool, err error)
	// MarkSynced records that anti-entropy saw every replica of partition
	// in sync for everything this node received before at (the store
	// keeps the latest such time; tombstone collection depends on it).
	MarkSynced(partition int, at time.Time)
}

// TreePager is an optional interface of a Tree (type-asserted by the
// server of KindKeys; *storage.Engine has it through node's adapter):
// LeafKeys for the keys after a cursor, so that reading a large leaf page
// by page does not list the whole leaf for every page.
type TreePager interface {
	// LeafKeysAfter is Tree.LeafKeys for the keys that sort after after.
	LeafKeysAfter(partition int, leaves []uint32, after []byte, maxKeys int) (keys []KeyDigest, more bool, err error)
}

// CounterReserver is an optional interface of a Store (type-asserted by
// the coordinator; *storage.Engine has it): it numbers the dots this node
// mints from one counter across all keys, so that a key the store forgot
// (a collected tombstone) can never make the coordinator mint a dot it
// minted before. A Store without it mints as vclock.Mint alone does.
type CounterReserver interface {
	// ReserveCounter returns a counter c >= atLeast, strictly greater than
	// every counter it returned before under the store's incarnation.
	ReserveCounter(atLeast uint64) uint64
	// Counter returns the highest counter reserved or seen under the
	// store's incarnation: no genuine dot of it is higher.
	Counter() uint64
}

// AsyncUpdater is an optional Store extension: Update without the wait
// for disk, which durable does. A coordinator whose store has it mints and
// installs the new version, sends it to the other replicas at once and
// counts its own acknowledgement when durable returns, so its fsync and
// theirs overlap instead of running one after the other. The store must
// renew its Incarnation after a crash that may have lost such a version
// (as storage.Engine does after any unclean stop), so that a dot the other
// replicas hold is never minted again.
type AsyncUpdater interface {
	UpdateAsync(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, func(context.Context) error, error)
}

// Config configures a Coordinator.
type Config struct {
	// Self is this node's name as it appears in preference lists. Required.
	Self string
	// N is the replication factor, against which one/quorum/all and numeric
	// R and W are resolved. Default 3.
	N int
	// Placement returns the current ring snapshot; it is called once per
	// request (the caller makes it an atomic load). Required.
	Placement func() Placement
	// Store is the local storage engine. Required.
	Store Store
	// Transport carries calls to other nodes. Required.
	Transport Transport
	// Liveness says which replicas to skip; nil treats every node as alive.
	Liveness Liveness
	// Hints keeps hinted copies sent to this node as a stand-in, and the
	// copies of a write for a down replica that no stand-in took (the
	// coordinator keeps them itself, as Cassandra does; they never count
	// toward W); nil refuses the former and drops the latter.
	Hints HintSink
	// Tree serves peers' anti-entropy exchanges (KindTree, KindKeys,
	// KindFetch). Optional: without it those calls are refused with
	// ErrNoTree.
	Tree Tree
	// MaxKeyBytes refuses a KindFetch naming a longer key (no such key can
	// be stored here); 0 checks only the RPC frame limit. Node sets it to
	// limits.max_key_bytes.
	MaxKeyBytes int
	// DefaultR and DefaultW replace QuorumDefault in requests. Default
	// QuorumMajority.
	DefaultR, DefaultW Quorum
	// Timeout is the per-request deadline when the caller's ctx has none.
	// Default 2s.
	Timeout time.Duration
	// ReadRepair sends the merged set to replicas that answered a read
	// with less. DefaultConfig sets true.
	ReadRepair bool
	// ReadHedge is how long a read waits for the replicas it asks first
	// (this node when it is a replica, then the first live ones of the
	// preference list, as many as R needs) before it asks the others too
	// (a speculative retry); a failure among the first asks the others at
	// once. 0 asks every replica at once. It is taken as given, like
	// ReadRepair; DefaultConfig sets DefaultReadHedge.
	ReadHedge time.Duration
	// Sloppy lets a write count the acknowledgement of a stand-in that
	// keeps a hint for a down replica toward W (sloppy quorum). Without
	// it, and for writes with WriteOptions.Strict, hints are still sent
	// but only the key's own replicas count. DefaultConfig sets true.
	Sloppy bool
	// MaxSiblings refuses a client write that would leave a key with more
	// versions (siblings and tombstones) than this, with
	// ErrTooManySiblings; 0 turns the cap off. Default 100, as Riak's
	// max_siblings.
	MaxSiblings int
	// WarnSiblings logs a warning for a write that leaves a key with more
	// versions than this; 0 turns it off. Default 25.
	WarnSiblings int
	// Now is the wall clock stamped on minted versions. Default time.Now.
	Now func() time.Time
	// Logger receives debug and warning lines; nil discards.
	Logger *slog.Logger

	// Partitions is the number of partitions of the ring; a transfer pull
	// for a partition outside 0..Partitions-1 is refused with
	// ErrBadRequest. Without it (0) such a pull would be answered with an
	// empty batch, which a puller with a mismatched ring would take for a
	// finished partition. 0 checks only that the partition is not
	// negative.
	Partitions int
	// TransferBatchBytes bounds the keys and sets (by
	// vclock.Siblings.Size) of one transfer batch this node serves; a
	// batch holds at least one entry when any remains, so a single larger
	// set still goes out alone. It must stay well below the RPC frame
	// limit (TCPConfig.MaxFrameBytes / 4 at most). Default 1 MiB.
	TransferBatchBytes int64
	// PartitionStats returns this node's totals for a partition, keys and
	// bytes (as storage.Engine.PartitionStats), which a transfer batch
	// carries so that the puller can estimate what is left. Optional: nil
	// answers 0, 0.
	PartitionStats func(partition int) (keys, bytes int64)
	// Progress answers KindStatus: the plan this node follows (epoch and
	// hash) and, ascending, the partitions of that plan's change it holds
	// a full copy of as a new replica (Puller.Progress). Optional: nil
	// answers the placement's epoch, its PlanHash when the placement has
	// one, and no done partitions.
	Progress func() (epoch, planHash uint64, done []int32)
}

// DefaultConfig returns a Config with every default set; the caller fills
// Self, Placement, Store and Transport.
func DefaultConfig() Config {
	return Config{
		N:            3,
		DefaultR:     QuorumMajority,
		DefaultW:     QuorumMajority,
		Timeout:      2 * time.Second,
		ReadRepair:   true,
		ReadHedge:    DefaultReadHedge,
		Sloppy:       true,
		MaxSiblings:  100,
		WarnSiblings: 25,
		Now:          time.Now,

		TransferBatchBytes: DefaultTransferBatchBytes,
	}
}

// DefaultReadHedge is the default Config.ReadHedge: tens of times a
// loopback or LAN round trip, so that a healthy replica almost never
// triggers the speculative retry, and short beside a request's deadline.
const DefaultReadHedge = 5 * time.Millisecond

// DefaultTransferBatchBytes is the default Config.TransferBatchBytes: a
// sixty-fourth of the default RPC frame limit.
const DefaultTransferBatchBytes = 1 << 20

// Validate checks required fields and ranges after zero values were given
// their documented defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("replica: config: "+f, a...)) }
	if c.Self == "" {
		bad("Self is required")
	}
	if c.Placement == nil {
		bad("Placement is required")
	}
	if c.Store == nil {
		bad("Store is required")
	}
	if c.Transport == nil {
		bad("Transport is required")
	}
	if c.N < 1 {
		bad("N must be >= 1, got %d", c.N)
	}
	for name, q := range map[string]Quorum{"DefaultR": c.DefaultR, "DefaultW": c.DefaultW} {
		if q == QuorumDefault {
			continue
		}
		if _, err := q.Resolve(max(c.N, 1)); err != nil {
			bad("%s: %w", name, err)
		}
	}
	if c.Timeout < 0 {
		bad("Timeout must not be negative, got %v", c.Timeout)
	}
	if c.ReadHedge < 0 {
		bad("ReadHedge must not be negative, got %v", c.ReadHedge)
	}
	if c.MaxSiblings < 0 || c.WarnSiblings < 0 {
		bad("MaxSiblings and WarnSiblings must not be negative, got %d and %d", c.MaxSiblings, c.WarnSiblings)
	}
	if c.MaxSiblings > vclock.MaxSiblings {
		bad("MaxSiblings must be at most %d (vclock.MaxSiblings: no node accepts a larger set), got %d", vclock.MaxSiblings, c.MaxSiblings)
	}
	if c.Partitions < 0 {
		bad("Partitions must not be negative, got %d", c.Partitions)
	}
	if c.MaxKeyBytes < 0 {
		bad("MaxKeyBytes must not be negative, got %d", c.MaxKeyBytes)
	}
	if c.TransferBatchBytes < 0 {
		bad("TransferBatchBytes must not be negative, got %d", c.TransferBatchBytes)
	}
	return errors.Join(errs...)
}

// withDefaults fills the documented zero values.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.N == 0 {
		c.N = d.N
	}
	if c.DefaultR == QuorumDefault {
		c.DefaultR = d.DefaultR
	}
	if c.DefaultW == QuorumDefault {
		c.DefaultW = d.DefaultW
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.TransferBatchBytes == 0 {
		c.TransferBatchBytes = d.TransferBatchBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
