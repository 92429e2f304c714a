package node

import "github.com/ringkv/ringkv/ring"

// stablePlacement serves a ring with no change in progress as a
// replica.Placement.
type stablePlacement struct{ *ring.Ring }

func (stablePlacement) Pending(int) []string        { return nil }
func (p stablePlacement) Targets(part int) []string { return p.Replicas(part) }
func (stablePlacement) Epoch() uint64               { return 0 }
