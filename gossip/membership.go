package gossip

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/ringkv/ringkv/ring"
)

// Status is a node's ring-membership status. It is not liveness: a crashed
// node keeps its status, requests skip it and its writes become hints.
type Status string

// The ring statuses. Nodes with StatusJoined or StatusLeaving are ring
// members (they own partitions); StatusLeft and StatusRemoved are not.
const (
	// StatusJoined marks a node that owns partitions.
	StatusJoined Status = "joined"
	// StatusLeaving marks a node that is handing its data off but still owns
	// partitions until it is done.
	StatusLeaving Status = "leaving"
	// StatusLeft marks a node that left the ring by its own request.
	StatusLeft Status = "left"
	// StatusRemoved marks a node an operator removed from the ring.
	StatusRemoved Status = "removed"
)

// rank orders statuses for the tie-break between entries of equal version:
// removed > left > leaving > joined. Favouring the "further out" status means
// a concurrent remove or leave is never undone by a stale join. Unknown
// statuses rank 0 and never come out of decode (it rejects them).
func (s Status) rank() int {
	switch s {
	case StatusJoined:
		return 1
	case StatusLeaving:
		return 2
	case StatusLeft:
		return 3
	case StatusRemoved:
		return 4
	}
	return 0
}

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool { return s.rank() > 0 }

// InRing reports whether a node with this status owns partitions.
func (s Status) InRing() bool { return s == StatusJoined || s == StatusLeaving }

// Entry is one node's row in the ring-membership map.
type Entry struct {
	// Status is the node's ring status.
	Status Status `json:"status"`
	// Version orders changes to this row. Whoever changes the row sets it
	// to its clock in milliseconds since the Unix epoch, or to one more than
	// the row's current version if that is higher (Map.Set).
	Version uint64 `json:"version"`
	// Addr is the node's gossip address (host:port), used to re-join ring
	// members memberlist has forgotten.
	Addr string `json:"addr"`
	// Zone is the zone the node declares (ring.ValidZone); "" for none.
	// The plan fixes a ring member's zone; this is what the claimant gives
	// a node new to the plan.
	Zone string `json:"zone,omitempty"`
}

// compareEntry is a total order on entries: version, then status rank, then
// address. Merge keeps the greater entry, so merging is the join of a
// semilattice (commutative, associative, idempotent) and every node that has
// seen the same rows ends with the same map whatever the order of arrival.
func compareEntry(a, b Entry) int {
	if c := cmp.Compare(a.Version, b.Version); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Status.rank(), b.Status.rank()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Addr, b.Addr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Zone, b.Zone); c != 0 {
		return c
	}
	// Unknown statuses share rank 0; compare their text so the order stays
	// total even for values that validation would reject.
	return cmp.Compare(a.Status, b.Status)
}

// Map is the ring-membership map: node name -> Entry. Functions in this file
// are pure; they never modify their arguments and return fresh maps.
type Map map[string]Entry

// Merge returns the join of a and b: for every name, the greater entry under
// (version, status rank, address).
func Merge(a, b Map) Map {
	out := make(Map, max(len(a), len(b)))
	maps.Copy(out, a)
	for name, e := range b {
		if cur, ok := out[name]; !ok || compareEntry(e, cur) > 0 {
			out[name] = e
		}
	}
	return out
}

// Changed returns the rows of next that differ from prev, i.e. the delta
// worth broadcasting after a merge.
func Changed(prev, next Map) Map {
	out := Map{}
	for name, e := range next {
		if cur, ok := prev[name]; !ok || cur != e {
			out[name] = e
		}
	}
	return out
}

// Clone returns a copy of m that the caller may modify.
func (m Map) Clone() Map {
	out := make(Map, len(m))
	maps.Copy(out, m)
	return out
}

// RingMembers returns the sorted names whose status is joined or leaving.
func (m Map) RingMembers() []string {
	out := make([]string, 0, len(m))
	for name, e := range m {
		if e.Status.InRing() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Names returns every name in m, sorted.
func (m Map) Names() []string {
	return slices.Sorted(maps.Keys(m))
}

// Set returns a copy of m in which name has the given status and address
// and a version newer than its current row: the clock now (milliseconds
// since the Unix epoch, see versionAt) or, if that is not ahead, one more
// than the current version. At the largest version it saturates instead of
// wrapping to 0, which would make the row lose every later merge. It is how
// a node records a change it makes itself (start, leave, remove).
// The row keeps its zone (see SetZoned).
func (m Map) Set(name string, s Status, addr string, now uint64) Map {
	return m.SetZoned(name, s, addr, m[name].Zone, now)
}

// SetZoned is Set that also sets the row's zone.
func (m Map) SetZoned(name string, s Status, addr, zone string, now uint64) Map {
	out := m.Clone()
	v := m[name].Version
	if v < math.MaxUint64 {
		v++
	}
	out[name] = Entry{Status: s, Version: max(v, now), Addr: addr, Zone: zone}
	return out
}

// ahead returns the names whose row version is above limit, sorted.
func (m Map) ahead(limit uint64) []string {
	var out []string
	for name, e := range m {
		if e.Version > limit {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Validate checks that m has at most maxRows rows and that every row has a
// valid name and status.
func (m Map) Validate() error {
	if len(m) > maxRows {
		return fmt.Errorf("%w: %d rows, limit %d", ErrBadState, len(m), maxRows)
	}
	for name, e := range m {
		if err := validName(name); err != nil {
			return err
		}
		if !e.Status.Valid() {
			return fmt.Errorf("%w: node %q has status %q", ErrBadState, name, e.Status)
		}
		if len(e.Addr) > maxAddrLen {
			return fmt.Errorf("%w: node %q address is %d bytes, limit %d", ErrBadState, name, len(e.Addr), maxAddrLen)
		}
		if err := ring.ValidZone(e.Zone); err != nil {
			return fmt.Errorf("%w: node %q: %w", ErrBadState, name, err)
		}
	}
	return nil
}

// Bounds on the ring-membership map, so that no message can pin a row
// forever or grow the map without limit (docs/gossip.md, "Accepting rows").
const (
	// maxVersionLead is how far (in milliseconds) a row's version may be
	// ahead of this node's clock: versions are minted from the clock, so
	// only clock skew puts an honest row ahead, and a row from further in
	// the future is refused (Cassandra refuses gossip generations more than
	// a year ahead for the same reason). It also keeps versions far from
	// 2^64, so they never wrap.
	maxVersionLead = uint64(24 * time.Hour / time.Millisecond)
	// maxRows bounds the rows in one message and in the map.
	maxRows = 1024
	// maxPending bounds the rows held for names memberlist has not (yet)
	// seen join.
	maxPending = 64
)

// versionAt converts a wall-clock time to a row version: milliseconds since
// the Unix epoch (0 before it).
func versionAt(t time.Time) uint64 { return uint64(max(t.UnixMilli(), 0)) }

// maxNameLen bounds a node name so that one map row always fits in a single
// gossip packet (memberlist's UDP buffer is 1400 bytes).
const maxNameLen = 128

// maxAddrLen bounds a gossip address for the same reason.
const maxAddrLen = 256

func validName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty node name", ErrBadName)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: %q is %d bytes, limit %d", ErrBadName, name, len(name), maxNameLen)
	}
	for _, r := range name {
		// The name doubles as the memberlist join prefix "name/host:port",
		// so '/' would be misread; control characters make logs lie.
		if r == '/' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %q contains %q", ErrBadName, name, r)
		}
	}
	return nil
}
