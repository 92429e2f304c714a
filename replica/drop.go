package replica

import (
	"context"
	"fmt"

	"github.com/ringkv/ringkv/vclock"
)

// A partition drop pages through the partition this many keys (or bytes)
// at a time: enough that paging costs little, few enough that a page's
// key copies stay small.
const (
	dropPageKeys  = 1024
	dropPageBytes = 4 << 20
)

// DropPartition deletes every key of partition from the local store,
// durably, once the partition has moved to other nodes (TRANSFER.md,
// section 6: the caller decides when that is). It pages through the
// partition in key order (Store.Scan) and deletes each key with
// Store.Update, calling still inside Update's fn, under the key's lock.
// When still reports false, because the node must hold the partition
// again (its plan changed), the drop stops with ErrDropAborted and keeps
// that key and the rest. Since the check and the delete happen under the
// key's lock, a store applied once still has turned false is never lost:
// either it comes after the delete and recreates the key, or the drop sees
// still false and stops. still must be quick and must not call into the
// Store. dropped counts the keys deleted, also when an error (the
// abort, ctx's end or a store failure) stops the drop part way.
func (c *Coordinator) DropPartition(ctx context.Context, partition int, still func() bool) (dropped int, err error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	if still == nil || partition < 0 {
		return 0, fmt.Errorf("%w: drop partition %d needs a non-negative partition and a check", ErrBadRequest, partition)
	}
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return dropped, fmt.Errorf("replica: dropping partition %d: %w", partition, err)
		}
		keys, _, more := c.cfg.Store.Scan(partition, after, dropPageKeys, dropPageBytes)
		for _, k := range keys {
			held := false
			_, err := c.cfg.Store.Update(ctx, k, func(cur vclock.Siblings) (vclock.Siblings, error) {
				if !still() {
					return nil, ErrDropAborted
				}
				held = cur != nil
				return nil, nil
			})
			if err != nil {
				return dropped, fmt.Errorf("replica: dropping partition %d at key %q: %w", partition, k, err)
			}
			if held {
				dropped++
			}
		}
		if !more || len(keys) == 0 {
			return dropped, nil
		}
		after = keys[len(keys)-1]
	}
}
