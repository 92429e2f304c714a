package gossip

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers check them with errors.Is; the returned errors
// wrap them with the node, file or field involved.
var (
	// ErrBadConfig is returned by Config.Validate and New for a bad Config.
	ErrBadConfig = errors.New("gossip: invalid config")
	// ErrBadName is returned for an empty, overlong or malformed node name.
	ErrBadName = errors.New("gossip: invalid node name")
	// ErrBadState is returned when membership state (from a peer or the
	// data directory) cannot be decoded.
	ErrBadState = errors.New("gossip: malformed membership state")
	// ErrBadMeta is returned when node metadata cannot be decoded or is too
	// large for memberlist.
	ErrBadMeta = errors.New("gossip: malformed node metadata")
	// ErrUnknownNode is returned by Remove for a name not in the ring map.
	ErrUnknownNode = errors.New("gossip: unknown node")
	// ErrRemoveSelf is returned by Remove when asked to remove this node;
	// a node takes itself out with Leave.
	ErrRemoveSelf = errors.New("gossip: a node cannot remove itself (use leave)")
	// ErrShutdown is returned by operations on a Gossip after Shutdown.
	ErrShutdown = errors.New("gossip: shut down")
)

// Liveness is what the failure detector currently believes about a node.
// It is independent of ring Status.
type Liveness int

// Liveness values.
const (
	// Dead: the node failed probes past its suspicion timeout, left
	// memberlist, or has never been seen since this process started.
	Dead Liveness = iota
	// Suspect: the node missed probes and may be dead; it is still given
	// time to refute.
	Suspect
	// Alive: the node answers probes.
	Alive
)

// String returns "alive", "suspect" or "dead".
func (l Liveness) String() string {
	switch l {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	}
	return fmt.Sprintf("liveness(%d)", int(l))
}

// MarshalText encodes l as its String form (so JSON shows "alive").
func (l Liveness) MarshalText() ([]byte, error) {
	switch l {
	case Alive, Suspect, Dead:
		return []byte(l.String()), nil
	}
	return nil, fmt.Errorf("gossip: unknown liveness %d", int(l))
}

// UnmarshalText parses "alive", "suspect" or "dead".
func (l *Liveness) UnmarshalText(b []byte) error {
	switch string(b) {
	case "alive":
		*l = Alive
	case "suspect":
		*l = Suspect
	case "dead":
		*l = Dead
	default:
		return fmt.Errorf("gossip: unknown liveness %q", b)
	}
	return nil
}

// Member is one node as this process sees it: ring status from the
// membership map, liveness and metadata from memberlist.
type Member struct {
	// Name is the node ID: memberlist name and ring member name.
	Name string `json:"name"`
	// Addr is the node's gossip address (host:port); empty if unknown.
	Addr string `json:"addr"`
	// Zone is the zone the node declares in its ring-map row; empty if
	// none (or no row).
	Zone string `json:"zone,omitempty"`
	// Meta is the node's advertised metadata; zero if never seen.
	Meta Meta `json:"meta"`
	// Liveness is the failure detector's view of the node.
	Liveness Liveness `json:"liveness"`
	// Status is the ring status; empty if the node is in memberlist but not
	// (yet) in the ring map.
	Status Status `json:"status"`
	// Version is the version of the node's ring-map row (0 if none).
	Version uint64 `json:"version"`
}
