package ring

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// Plan is the cluster's placement decision, spread by gossip: the members
// whose ring serves requests now (Members) and, while a membership change
// is in progress, the members whose ring the data is moving to (Target).
// Ownership moves after the data: a node in Target but not in Members
// receives writes for its new partitions and copies them from the current
// replicas, and only when every new replica holds a full copy is the plan
// committed (Members becomes Target). A Plan is a value; its slices are
// sorted, distinct and never modified after construction.
type Plan struct {
	// Epoch numbers plans: each change (start of a transition, retarget,
	// commit) takes the previous epoch plus one. 0 means no plan is known.
	Epoch uint64 `json:"epoch"`
	// Version is the proposer's clock in milliseconds when it made the
	// plan; it breaks ties between two plans proposed from the same epoch.
	Version uint64 `json:"version"`
	// Members is the serving ring's member list, sorted.
	Members []string `json:"members"`
	// Target is the ring the data is moving to, sorted; nil when the plan
	// is stable (no change in progress).
	Target []string `json:"target,omitempty"`
	// Zones maps each node of Members and Target that has a zone to its
	// zone; nil when none has (see NewZoned). It travels with the plan so
	// that every node places partitions from the same zones. A node's zone
	// is fixed while it is in the plan: to move a node to another zone, it
	// leaves and joins again.
	Zones map[string]string `json:"zones,omitempty"`
}

// MaxPlanMembers bounds the names in Members and in Target.
const MaxPlanMembers = 1024

// Stable reports whether no membership change is in progress.
func (p Plan) Stable() bool { return p.Target == nil }

// Known reports whether p is a plan at all (a node that has not learnt the
// cluster's plan yet holds the zero Plan).
func (p Plan) Known() bool { return p.Epoch > 0 }

// TargetMembers returns the members the plan moves to: Target during a
// change, Members when stable. Shared; do not modify.
func (p Plan) TargetMembers() []string {
	if p.Stable() {
		return p.Members
	}
	return p.Target
}

// Involves reports whether node is in Members or Target.
func (p Plan) Involves(node string) bool {
	_, in := slices.BinarySearch(p.Members, node)
	_, tg := slices.BinarySearch(p.Target, node)
	return in || tg
}

// Compare orders plans: by epoch, then version, then members and target
// lexicographically. Gossip keeps the greater of two plans, so merging is
// commutative, associative and idempotent, and two plans proposed from the
// same epoch resolve to the same winner everywhere.
func (p Plan) Compare(o Plan) int {
	if c := cmp.Compare(p.Epoch, o.Epoch); c != 0 {
		return c
	}
	if c := cmp.Compare(p.Version, o.Version); c != 0 {
		return c
	}
	if c := slices.Compare(p.Members, o.Members); c != 0 {
		return c
	}
	if ps, os := p.Stable(), o.Stable(); ps != os {
		if ps {
			return -1 // a change in progress sorts after a stable plan of its epoch
		}
		return 1
	}
	if c := slices.Compare(p.Target, o.Target); c != 0 {
		return c
	}
	return slices.Compare(zonePairs(p.Zones), zonePairs(o.Zones))
}

// zonePairs flattens zones to name, zone, name, zone, ... sorted by name:
// the order Compare, Hash and the wire encoding use.
func zonePairs(zones map[string]string) []string {
	if len(zones) == 0 {
		return nil
	}
	out := make([]string, 0, 2*len(zones))
	for _, name := range slices.Sorted(maps.Keys(zones)) {
		out = append(out, name, zones[name])
	}
	return out
}

// ZonePairs returns the plan's zones as name, zone, name, zone, ... sorted
// by name; nil when there are none. It is how gossip encodes them.
func (p Plan) ZonePairs() []string { return zonePairs(p.Zones) }

// ZonesFromPairs is the inverse of ZonePairs: nil for no pairs, an error
// wrapping ErrBadPlan for an odd count or a name given twice.
func ZonesFromPairs(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	if len(pairs)%2 != 0 {
		return nil, fmt.Errorf("%w: %d zone fields, want name and zone pairs", ErrBadPlan, len(pairs))
	}
	out := make(map[string]string, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		if _, dup := out[pairs[i]]; dup {
			return nil, fmt.Errorf("%w: zone of %q given twice", ErrBadPlan, pairs[i])
		}
		out[pairs[i]] = pairs[i+1]
	}
	return out, nil
}

// Equal reports whether p and o are the same plan.
func (p Plan) Equal(o Plan) bool { return p.Compare(o) == 0 }

// Hash identifies the plan in a few bytes, for nodes to tell each other
// which plan they follow; equal plans hash equal in every process.
func (p Plan) Hash() uint64 {
	b := binary.LittleEndian.AppendUint64(nil, p.Epoch)
	b = binary.LittleEndian.AppendUint64(b, p.Version)
	for _, list := range [][]string{p.Members, p.Target} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(list)))
		for _, name := range list {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(name)))
			b = append(b, name...)
		}
	}
	if p.Target != nil {
		b = append(b, 1)
	}
	// Zones are hashed only when present, so a plan without zones keeps
	// the hash it had before zones existed.
	for _, s := range zonePairs(p.Zones) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return Sum64(b)
}

// Validate checks the plan's shape: lists sorted, distinct, valid names,
// at most MaxPlanMembers each, and a known plan has members.
func (p Plan) Validate() error {
	if p.Epoch == 0 {
		if len(p.Members) > 0 || p.Target != nil || len(p.Zones) > 0 {
			return fmt.Errorf("%w: plan epoch 0 with members", ErrBadPlan)
		}
		return nil
	}
	if len(p.Members) == 0 {
		return fmt.Errorf("%w: epoch %d has no members", ErrBadPlan, p.Epoch)
	}
	if p.Target != nil && len(p.Target) == 0 {
		return fmt.Errorf("%w: epoch %d moves to an empty ring", ErrBadPlan, p.Epoch)
	}
	for _, l := range []struct {
		what string
		list []string
	}{{"members", p.Members}, {"target", p.Target}} {
		if len(l.list) > MaxPlanMembers {
			return fmt.Errorf("%w: %d %s, at most %d", ErrBadPlan, len(l.list), l.what, MaxPlanMembers)
		}
		for i, name := range l.list {
			switch {
			case name == "" || len(name) > MaxNodeNameBytes || !utf8.ValidString(name):
				return fmt.Errorf("%w: %s holds an invalid name (%d bytes)", ErrBadPlan, l.what, len(name))
			case i > 0 && l.list[i-1] >= name:
				return fmt.Errorf("%w: %s not sorted and distinct at %q", ErrBadPlan, l.what, name)
			}
		}
	}
	for name, zone := range p.Zones {
		if !p.Involves(name) {
			return fmt.Errorf("%w: zone given for %q, which is in neither members nor target", ErrBadPlan, name)
		}
		if zone == "" {
			return fmt.Errorf("%w: empty zone given for %q (leave it out)", ErrBadPlan, name)
		}
		if err := ValidZone(zone); err != nil {
			return fmt.Errorf("%w: node %q: %w", ErrBadPlan, name, err)
		}
	}
	return nil
}

// NewPlan returns the first plan of a cluster: epoch 1, members as given
// (copied and sorted), no change in progress, no zones.
func NewPlan(members []string, now uint64) Plan {
	return Plan{Epoch: 1, Version: now, Members: sortedCopy(members)}
}

// MoveTo returns the next plan: a change from p's Members to target
// (copied and sorted). A target equal to Members gives a stable plan, which
// abandons a change in progress. Nodes keep the zones p gives them; a node
// new to the plan has none (see MoveToZoned).
func (p Plan) MoveTo(target []string, now uint64) Plan { return p.MoveToZoned(target, nil, now) }

// MoveToZoned is MoveTo where zoneOf (nil: none) gives the zone of a node
// new to the plan. A node already in p (Members or Target) keeps p's zone
// whatever zoneOf says, and that includes having no zone: p's Members and
// Zones build the serving ring of the next plan too, and no transfer
// covers a change to it.
func (p Plan) MoveToZoned(target []string, zoneOf func(name string) string, now uint64) Plan {
	t := sortedCopy(target)
	if slices.Equal(t, p.Members) {
		t = nil
	}
	next := Plan{Epoch: p.Epoch + 1, Version: max(now, p.Version+1), Members: p.Members, Target: t}
	next.Zones = keepZones(p, next, zoneOf)
	return next
}

// Commit returns the next plan, in which Target serves: the change is
// done. A stable plan commits to itself with a new epoch.
func (p Plan) Commit(now uint64) Plan {
	next := Plan{Epoch: p.Epoch + 1, Version: max(now, p.Version+1), Members: p.TargetMembers()}
	next.Zones = keepZones(p, next, nil)
	return next
}

// keepZones returns the zones of next's nodes: prev's zone (which may be
// none) for a node prev involves, zoneOf's (nil: none) for a node new to
// the plan. Nil when no node has a zone.
func keepZones(prev, next Plan, zoneOf func(string) string) map[string]string {
	var out map[string]string
	for _, list := range [][]string{next.Members, next.Target} {
		for _, name := range list {
			z := prev.Zones[name]
			if zoneOf != nil && !prev.Involves(name) {
				z = zoneOf(name)
			}
			if z == "" {
				continue
			}
			if out == nil {
				out = map[string]string{}
			}
			out[name] = z
		}
	}
	return out
}

func sortedCopy(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}
