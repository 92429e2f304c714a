package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ringkv/ringkv/hints"
	"github.com/ringkv/ringkv/replica"
	"github.com/ringkv/ringkv/storage"
	"github.com/ringkv/ringkv/vclock"
)

// The key and value limits (limits.max_key_bytes, limits.max_value_bytes)
// hold where data enters this node's storage, whatever the path: the
// storage engine and the hint queue enforce them too, not only the HTTP and
// RESP front ends. Their refusals are client errors; the adapters below
// make replica see them as replica.ErrBadRequest, so a peer's store or
// handoff of an oversized key is answered as a bad request.

// limitedStore is the storage engine as replica.Store, with the engine's
// limit and argument errors marked as bad requests.
type limitedStore struct{ *storage.Engine }

var _ replica.Store = limitedStore{}

// Apply implements replica.Store.
func (s limitedStore) Apply(ctx context.Context, key []byte, set vclock.Siblings) (vclock.Siblings, error) {
	out, err := s.Engine.Apply(ctx, key, set)
	return out, badRequest(err)
}

// Update implements replica.Store.
func (s limitedStore) Update(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, error) {
	out, err := s.Engine.Update(ctx, key, fn)
	return out, badRequest(err)
}

// UpdateAsync implements replica.AsyncUpdater: the coordinator sends a
// new version to the other replicas while this node syncs its own copy.
func (s limitedStore) UpdateAsync(ctx context.Context, key []byte, fn func(cur vclock.Siblings) (vclock.Siblings, error)) (vclock.Siblings, func(context.Context) error, error) {
	out, durable, err := s.Engine.UpdateAsync(ctx, key, fn)
	return out, durable, badRequest(err)
}

var _ replica.AsyncUpdater = limitedStore{}

// limitedHints is the hint queue as replica.HintSink, with refused hints
// (bad shape, over the limits) marked as bad requests.
type limitedHints struct{ *hints.Queue }

var _ replica.HintSink = limitedHints{}

// StoreHint implements replica.HintSink.
func (h limitedHints) StoreHint(ctx context.Context, target string, key []byte, s vclock.Siblings) error {
	return badRequest(h.Queue.StoreHint(ctx, target, key, s))
}

// badRequest wraps the client errors of storage and hints in
// replica.ErrBadRequest and returns any other error as it is.
func badRequest(err error) error {
	if errors.Is(err, storage.ErrTooLarge) || errors.Is(err, hints.ErrBadHint) {
		return fmt.Errorf("%w: %w", replica.ErrBadRequest, err)
	}
	return err
}
