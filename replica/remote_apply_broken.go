//go:build ringkvbroken

package replica

import (
	"context"

	"github.com/ringkv/ringkv/vclock"
)

// BrokenBuild reports whether this binary was built with the ringkvbroken
// tag. Here it is: the build loses acknowledged writes on purpose.
const BrokenBuild = true

// applyRemote is deliberately wrong. It exists only so that the chaos
// checker can be shown to catch lost writes: never ship a binary built
// with the ringkvbroken tag.
//
// It acknowledges a store from another node's coordinator without storing
// anything, and answers as if the set had been merged into an empty key.
// The coordinator's own copy, hints and handoff are untouched, so a write
// acknowledged at W=2 lives on its coordinator only, and wiping that
// node's data loses it, which a correct checker must report.
func applyRemote(_ context.Context, _ Store, _ []byte, set vclock.Siblings) (vclock.Siblings, error) {
	return set, nil
}
