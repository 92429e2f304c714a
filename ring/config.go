package ring

import (
	"errors"
	"fmt"
	"math"
)

// Limits on Config fields. They keep a bad config from costing unbounded
// memory or build time; every realistic cluster sits far inside them.
const (
	// MaxPartitions is the largest prime below 2^16.
	MaxPartitions = 65521
	// MaxReplicationFactor bounds N; Dynamo-style stores use 3 or 5.
	MaxReplicationFactor = 16
	// MaxLoad bounds the bounded-load factor; above ~2 the bound no longer
	// bounds anything.
	MaxLoad = 16.0
	// MaxVirtualNodes bounds the hash-ring points per member.
	MaxVirtualNodes = 4096
	// MaxTableEntries bounds Partitions x members: a ring caches the full
	// ring-walk order (replicas and fallbacks) of every partition, one string
	// header per member per partition (16 bytes each, 64 MiB at the bound).
	MaxTableEntries = 1 << 22
	// MaxRingPoints bounds members x VirtualNodes. The library adds members
	// one at a time and re-sorts all points after each, so building a ring
	// costs about members^2 x VirtualNodes; at the bound (163 members at the
	// default 400 virtual nodes) that is about half a second. Larger
	// clusters should use fewer virtual nodes.
	MaxRingPoints = 1 << 16
	// MaxNodeNameBytes bounds one member name.
	MaxNodeNameBytes = 255
)

// Sentinel errors. Callers check them with errors.Is; the returned errors
// wrap them with the offending value.
var (
	// ErrInvalidConfig reports a Config field out of range.
	ErrInvalidConfig = errors.New("ring: invalid config")
	// ErrEmptyNode reports an empty member name.
	ErrEmptyNode = errors.New("ring: empty node name")
	// ErrNodeName reports a member name that is too long or not valid UTF-8.
	ErrNodeName = errors.New("ring: invalid node name")
	// ErrDuplicateNode reports a member listed twice, or a what-if that adds
	// a node the ring already has.
	ErrDuplicateNode = errors.New("ring: duplicate node")
	// ErrUnknownNode reports a node that is not a ring member.
	ErrUnknownNode = errors.New("ring: unknown node")
	// ErrTooManyNodes reports more members than the ring can place:
	// more than Partitions, Partitions x members above MaxTableEntries, or
	// members x VirtualNodes above MaxRingPoints.
	ErrTooManyNodes = errors.New("ring: too many nodes")
	// ErrNoRoom reports that bounded-load assignment could not place every
	// partition (the library would panic); Validate makes it unreachable
	// for valid configs, so seeing it means a bug.
	ErrNoRoom = errors.New("ring: no room to place partitions")
	// ErrHashCollision reports two virtual nodes hashing to the same ring
	// point; the library would silently drop one. Renaming a node fixes it.
	ErrHashCollision = errors.New("ring: virtual node hash collision")
	// ErrZone reports an invalid zone name (see ValidZone), or a plan that
	// gives one node two zones.
	ErrZone = errors.New("ring: invalid zone")
	// ErrBadPlan reports a Plan whose lists are unsorted, repeat a name,
	// hold an invalid name or are too long.
	ErrBadPlan = errors.New("ring: invalid plan")
	// ErrIncompatible reports a comparison of rings whose configs differ.
	ErrIncompatible = errors.New("ring: rings have different configs")
)

// Config fixes how keys map to partitions and partitions to members. Every
// node of a cluster must use the same Config: it is part of the cluster's
// identity, and changing Partitions re-maps every key.
type Config struct {
	// Partitions is the fixed number of partitions the key space is cut
	// into; a prime, 2..MaxPartitions. Default 2039.
	Partitions int
	// ReplicationFactor is N, the number of distinct members that hold each
	// partition, 1..MaxReplicationFactor. Default 3.
	ReplicationFactor int
	// Load is the bounded-load factor: no member owns more than
	// ceil(Load x Partitions / members) partitions. 1..MaxLoad; below 1 the
	// library cannot place every partition. Default 1.10.
	Load float64
	// VirtualNodes is the number of points each member gets on the hash
	// ring (the library's ReplicationFactor), 1..MaxVirtualNodes. Default 400.
	VirtualNodes int
}

// DefaultConfig returns the tuned defaults; docs/ring.md gives the balance
// and movement figures they were chosen for.
func DefaultConfig() Config {
	return Config{
		Partitions:        2039,
		ReplicationFactor: 3,
		Load:              1.10,
		VirtualNodes:      400,
	}
}

// Validate checks every field's range. A valid Config never makes the
// library panic: with Load >= 1 the members' combined capacity
// members x ceil(Load x Partitions / members) is at least Partitions.
func (c Config) Validate() error {
	if c.Partitions < 2 || c.Partitions > MaxPartitions || !isPrime(c.Partitions) {
		return fmt.Errorf("%w: partitions %d must be a prime in 2..%d", ErrInvalidConfig, c.Partitions, MaxPartitions)
	}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > MaxReplicationFactor {
		return fmt.Errorf("%w: replication factor %d must be in 1..%d", ErrInvalidConfig, c.ReplicationFactor, MaxReplicationFactor)
	}
	if math.IsNaN(c.Load) || c.Load < 1 || c.Load > MaxLoad {
		return fmt.Errorf("%w: load %v must be in 1..%v", ErrInvalidConfig, c.Load, MaxLoad)
	}
	if c.VirtualNodes < 1 || c.VirtualNodes > MaxVirtualNodes {
		return fmt.Errorf("%w: virtual nodes %d must be in 1..%d", ErrInvalidConfig, c.VirtualNodes, MaxVirtualNodes)
	}
	return nil
}

// isPrime reports whether n is prime, by trial division (n <= MaxPartitions).
func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := 3; d*d <= n; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func duplicateNode(node string) error { return fmt.Errorf("%w: %q", ErrDuplicateNode, node) }

func unknownNode(node string) error { return fmt.Errorf("%w: %q", ErrUnknownNode, node) }
