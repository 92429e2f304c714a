package replica

import (
	"bytes"
	"fmt"

	"github.com/ringkv/ringkv/vclock"
)

// entrySize is what a transfer entry counts for in batch bounds, rate
// limits and statistics: as storage's Scan and PartitionStats count.
func entrySize(key []byte, s vclock.Siblings) int64 {
	return int64(len(key) + s.Size())
}

// checkBatch validates a source's answer to a pull of partition part after
// the cursor after, asked with limit keys, before anything of it is
// merged. UnmarshalReply checks only a response's own set, not a batch's;
// and beyond the shape of each set, the puller relies on the keys being
// of the partition it pulls (anything else would land on a node that is
// not its replica) and strictly ascending after the cursor (otherwise the
// cursor could move back and a broken source keep the puller paging
// forever). An empty batch must be the last. Errors wrap ErrProtocol.
func checkBatch(partOf func(key []byte) int, part int, after []byte, limit int, resp Response) error {
	switch {
	case len(resp.Batch) > limit:
		return fmt.Errorf("%w: transfer batch of %d entries, asked for %d", ErrProtocol, len(resp.Batch), limit)
	case len(resp.Batch) == 0 && resp.More:
		return fmt.Errorf("%w: empty transfer batch that is not the last", ErrProtocol)
	case resp.Keys < 0 || resp.Bytes < 0:
		return fmt.Errorf("%w: negative partition totals %d keys %d bytes", ErrProtocol, resp.Keys, resp.Bytes)
	}
	prev := after
	for i, e := range resp.Batch {
		switch {
		case len(e.Key) == 0:
			return fmt.Errorf("%w: transfer entry %d: empty key", ErrProtocol, i)
		case bytes.Compare(e.Key, prev) <= 0:
			return fmt.Errorf("%w: transfer entry %d: key %q does not sort after %q", ErrProtocol, i, e.Key, prev)
		case len(e.Siblings) == 0:
			return fmt.Errorf("%w: transfer entry %d: empty sibling set", ErrProtocol, i)
		}
		if p := partOf(e.Key); p != part {
			return fmt.Errorf("%w: transfer entry %d: key %q is of partition %d, not %d", ErrProtocol, i, e.Key, p, part)
		}
		if err := checkWireSiblings(e.Siblings); err != nil {
			return fmt.Errorf("%w: transfer entry %d: %w", ErrProtocol, i, err)
		}
		prev = e.Key
	}
	return nil
}
