package ring

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/buraksezer/consistent"
)

// Ring is an immutable snapshot of partition placement for one membership.
// All methods are safe for concurrent use without locks because nothing in
// a Ring changes after New returns; a membership change builds a new Ring,
// and the owner swaps pointers (for example with atomic.Pointer[Ring]).
//
// Slices returned by Replicas, Fallbacks and Lookup are shared with the
// Ring; callers must not modify them. They have their capacity clipped, so
// an append by a caller copies instead of overwriting the ring's tables.
type Ring struct {
	cfg     Config
	members []string // sorted, distinct
	// owners[p] is the index in members of partition p's owner.
	owners []int32
	// walk holds, for partition p at walk[p*m:(p+1)*m], every member in
	// ring-walk order: the owner of p, then the distinct owners of p+1,
	// p+2, ... (mod Partitions), then members that own no partition. The
	// first n entries are the preference list and the rest the fallbacks.
	walk []string
	// zones[i] is the zone of members[i]; nil when no member has one.
	zones []string
	m     int // len(members)
	n     int // replicas per partition: min(ReplicationFactor, m)
	// fingerprint is a hash of cfg, members, owners and zones (see
	// Fingerprint).
	fingerprint uint64
}

// New builds the ring of members under cfg, none of them in a zone (see
// NewZoned). The order of members does not
// matter, and the same cfg and members give identical tables in every
// process. An empty members list gives a valid empty ring whose lookups
// return no replicas. Empty, over-long or duplicate names are errors, as
// is an invalid cfg.
func New(cfg Config, members []string) (*Ring, error) {
	return NewZoned(cfg, members, nil)
}

// checkMembers validates member names and returns them as a sorted copy.
func checkMembers(cfg Config, members []string) ([]string, error) {
	sorted := slices.Clone(members)
	slices.Sort(sorted)
	for i, name := range sorted {
		switch {
		case name == "":
			return nil, ErrEmptyNode
		case len(name) > MaxNodeNameBytes:
			return nil, fmt.Errorf("%w: %q is longer than %d bytes", ErrNodeName, name[:32]+"...", MaxNodeNameBytes)
		case !utf8.ValidString(name):
			return nil, fmt.Errorf("%w: %q is not valid UTF-8", ErrNodeName, name)
		case i > 0 && sorted[i-1] == name:
			return nil, duplicateNode(name)
		}
	}
	if len(sorted) > cfg.Partitions {
		return nil, fmt.Errorf("%w: %d nodes for %d partitions (some would own nothing)", ErrTooManyNodes, len(sorted), cfg.Partitions)
	}
	if len(sorted)*cfg.Partitions > MaxTableEntries {
		return nil, fmt.Errorf("%w: %d nodes x %d partitions exceeds %d table entries", ErrTooManyNodes, len(sorted), cfg.Partitions, MaxTableEntries)
	}
	if len(sorted)*cfg.VirtualNodes > MaxRingPoints {
		return nil, fmt.Errorf("%w: %d nodes x %d virtual nodes exceeds %d ring points; lower VirtualNodes", ErrTooManyNodes, len(sorted), cfg.VirtualNodes, MaxRingPoints)
	}
	return sorted, nil
}

// checkCollisions refuses member sets where two virtual nodes share a ring
// point: the library keeps one point per hash in a map, so a collision
// would silently drop a virtual node, and which one survives would depend
// on insertion order.
func checkCollisions(cfg Config, members []string) error {
	type point struct {
		h    uint64
		name string
	}
	points := make([]point, 0, len(members)*cfg.VirtualNodes)
	for _, name := range members {
		for i := range cfg.VirtualNodes {
			points = append(points, point{Sum64(replicaKey(name, i)), name})
		}
	}
	slices.SortFunc(points, func(a, b point) int { return cmpUint64(a.h, b.h) })
	for i := 1; i < len(points); i++ {
		if points[i].h == points[i-1].h {
			return fmt.Errorf("%w: nodes %q and %q share point %#x", ErrHashCollision, points[i-1].name, points[i].name, points[i].h)
		}
	}
	return nil
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// member adapts a name to consistent.Member.
type member string

func (m member) String() string { return string(m) }

// assignOwners runs the library's bounded-load assignment and returns each
// partition's owner as an index into members.
func assignOwners(cfg Config, members []string) (owners []int32, err error) {
	// The library panics when every member is at the load bound. Validate
	// (Load >= 1) makes that impossible; check the same arithmetic the
	// library uses anyway, so a future change surfaces as an error.
	bound := math.Ceil(float64(cfg.Partitions) / float64(len(members)) * cfg.Load)
	if bound*float64(len(members)) < float64(cfg.Partitions) {
		return nil, fmt.Errorf("%w: %d nodes x bound %v < %d partitions", ErrNoRoom, len(members), bound, cfg.Partitions)
	}
	defer func() {
		if p := recover(); p != nil {
			owners, err = nil, fmt.Errorf("%w: %v", ErrNoRoom, p)
		}
	}()
	ms := make([]consistent.Member, len(members))
	for i, name := range members {
		ms[i] = member(name)
	}
	c := consistent.New(ms, consistent.Config{
		Hasher:            hasher{},
		PartitionCount:    cfg.Partitions,
		ReplicationFactor: cfg.VirtualNodes,
		Load:              cfg.Load,
		ReplicaKey:        replicaKey,
	})
	owners = make([]int32, cfg.Partitions)
	for p := range owners {
		o := c.GetPartitionOwner(p)
		if o == nil {
			return nil, fmt.Errorf("%w: partition %d has no owner", ErrNoRoom, p)
		}
		i, ok := slices.BinarySearch(members, o.String())
		if !ok {
			return nil, fmt.Errorf("%w: partition %d owned by non-member %q", ErrNoRoom, p, o.String())
		}
		owners[p] = int32(i)
	}
	return owners, nil
}

// buildWalk computes every partition's ring-walk order. The order for p is
// the owner of p followed by the order for p+1 with that owner moved to the
// front, so one pass backwards from a naive walk of partition 0 fills the
// whole table in O(Partitions x members).
func buildWalk(members []string, owners []int32) []string {
	m, parts := len(members), len(owners)
	seq := make([]int, parts)
	for i := range seq {
		seq[i] = i
	}
	// cur is the order for the partition being filled, as member indexes.
	cur := make([]int32, 0, m)
	seen := make([]bool, m)
	for _, p := range seq {
		o := owners[p]
		if !seen[o] {
			seen[o] = true
			cur = append(cur, o)
		}
	}
	for i := range m {
		if !seen[i] {
			cur = append(cur, int32(i))
		}
	}
	walk := make([]string, parts*m)
	fill := func(p int) {
		row := walk[p*m : (p+1)*m]
		for i, idx := range cur {
			row[i] = members[idx]
		}
	}
	fill(seq[0])
	for i := parts - 1; i > 0; i-- {
		moveToFront(cur, owners[seq[i]])
		fill(seq[i])
	}
	return walk
}

// moveToFront moves x to cur[0], shifting the entries before it right.
func moveToFront(cur []int32, x int32) {
	i := slices.Index(cur, x)
	copy(cur[1:i+1], cur[:i])
	cur[0] = x
}

// fingerprint hashes everything that defines a ring's tables. Zones are
// hashed only when some member has one, so a ring without zones keeps the
// fingerprint it had before zones existed.
func fingerprint(cfg Config, members []string, owners []int32, zones []string) uint64 {
	b := binary.LittleEndian.AppendUint64(nil, uint64(cfg.Partitions))
	b = binary.LittleEndian.AppendUint64(b, uint64(cfg.ReplicationFactor))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(cfg.Load))
	b = binary.LittleEndian.AppendUint64(b, uint64(cfg.VirtualNodes))
	for _, name := range members {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(name)))
		b = append(b, name...)
	}
	for _, o := range owners {
		b = binary.LittleEndian.AppendUint32(b, uint32(o))
	}
	for _, z := range zones {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(z)))
		b = append(b, z...)
	}
	return Sum64(b)
}
