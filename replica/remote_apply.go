//go:build !ringkvbroken

package replica

import (
	"context"

	"github.com/ringkv/ringkv/vclock"
)

// BrokenBuild reports whether this binary was built with the ringkvbroken
// tag, which makes replicas drop the writes other nodes send them (see
// remote_apply_broken.go). It is false in every real build.
const BrokenBuild = false

// applyRemote applies a sibling set that another node's coordinator sent
// in a store (not a hint) and returns the merged set. Every such store
// goes through here so that the ringkvbroken build can replace this one
// function.
func applyRemote(ctx context.Context, s Store, key []byte, set vclock.Siblings) (vclock.Siblings, error) {
	return s.Apply(ctx, key, set)
}
