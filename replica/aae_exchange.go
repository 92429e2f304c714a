package replica

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ringkv/ringkv/vclock"
)

// This file holds one anti-entropy exchange between this node and one
// peer over one partition: compare the trees top down, list the keys of
// the leaves that differ, fetch the peer's sets of the keys that differ,
// merge them here and push the merged sets back.

// ExchangeResult is what one exchange did.
type ExchangeResult struct {
	// InSync reports that the roots were equal at the start: nothing was
	// compared further.
	InSync bool
	// KeysRepaired is KeysPulled + KeysPushed.
	KeysRepaired int
	// KeysPulled counts keys whose local set the peer's changed; KeysPushed
	// the sets pushed to the peer (its copy lacked something).
	KeysPulled, KeysPushed int
	// Bytes is the size of the sets fetched and pushed (keys included).
	Bytes int64
	// Calls is the number of calls made to the peer.
	Calls int
	// Duration is how long the exchange took.
	Duration time.Duration
}

// Exchange runs one exchange of partition with peer, both of which must be
// among the partition's replicas, and returns what it did. Exchanges of
// one partition run one at a time: a second call waits for the first (or
// for ctx). A complete exchange (no error) counts toward the partition's
// sync round: once every other replica has completed one since the last
// round, Tree.MarkSynced gets the earliest of their start times and
// OnSynced runs. An error leaves what was repaired so far in place.
func (a *AntiEntropy) Exchange(ctx context.Context, partition int, peer string) (ExchangeResult, error) {
	if partition < 0 || partition >= a.cfg.Partitions {
		return ExchangeResult{}, fmt.Errorf("%w: partition %d out of range", ErrBadRequest, partition)
	}
	pl := a.cfg.Placement()
	if pl == nil {
		return ExchangeResult{}, fmt.Errorf("%w: no ring yet", ErrNoReplicas)
	}
	reps := pl.Replicas(partition)
	if peer == a.cfg.Self || !slices.Contains(reps, peer) || !slices.Contains(reps, a.cfg.Self) {
		return ExchangeResult{}, fmt.Errorf("%w: exchange of partition %d needs two of its replicas %v, got %s and %s",
			ErrNotReplica, partition, reps, a.cfg.Self, peer)
	}
	a.mu.Lock()
	st := a.state(partition)
	a.mu.Unlock()
	select {
	case st.busy <- struct{}{}:
	case <-ctx.Done():
		return ExchangeResult{}, fmt.Errorf("replica: waiting for the exchange of partition %d in progress: %w", partition, ctx.Err())
	}
	defer func() { <-st.busy }()
	start := a.cfg.Now()
	x := &exchange{a: a, part: partition, peer: peer, epoch: pl.Epoch()}
	err := x.run(ctx)
	x.res.Duration = a.cfg.Now().Sub(start)
	x.res.KeysRepaired = x.res.KeysPulled + x.res.KeysPushed
	if err != nil {
		err = fmt.Errorf("replica: exchange of partition %d with %s: %w", partition, peer, err)
	}
	a.record(ctx, partition, peer, start, x.res, err)
	return x.res, err
}

// exchange is the state of one exchange.
type exchange struct {
	a     *AntiEntropy
	part  int
	peer  string
	epoch uint64
	res   ExchangeResult
	// push is the batch of merged sets waiting to go to the peer, and
	// pushBytes their size.
	push      []Entry
	pushBytes int64
}

func (x *exchange) run(ctx context.Context) error {
	// Root: equal trees cost this one call.
	diff, err := x.compare(ctx, 0, nil)
	if err != nil || len(diff) == 0 {
		x.res.InSync = err == nil
		return err
	}
	// Inner nodes, then the children of those that differ.
	diff, err = x.compare(ctx, 1, nil)
	if err != nil || len(diff) == 0 {
		return err
	}
	children := make([]uint32, 0, len(diff)*TreeFanout)
	for _, n := range diff {
		for c := range uint32(TreeFanout) {
			children = append(children, n*TreeFanout+c)
		}
	}
	leaves, err := x.compare(ctx, 2, children)
	if err != nil || len(leaves) == 0 {
		return err
	}
	if err := x.leafGroup(ctx, leaves); err != nil {
		return err
	}
	return x.flush(ctx)
}

// compare returns the nodes of level (all when nodes is empty) whose hash
// differs between here and the peer.
func (x *exchange) compare(ctx context.Context, level int, nodes []uint32) ([]uint32, error) {
	local, err := x.a.cfg.Tree.TreeHashes(x.part, level, nodes)
	if err != nil {
		return nil, fmt.Errorf("local tree level %d: %w", level, err)
	}
	resp, err := x.call(ctx, Request{Kind: KindTree, Partition: int32(x.part), AEQuery: &AEQuery{Level: int32(level), Nodes: nodes}})
	if err != nil {
		return nil, err
	}
	if len(resp.ae().Hashes) != len(local) {
		return nil, fmt.Errorf("%w: %s answered %d hashes at level %d, want %d", ErrProtocol, x.peer, len(resp.ae().Hashes), level, len(local))
	}
	var diff []uint32
	for i, h := range local {
		if resp.ae().Hashes[i] != h {
			n := uint32(i)
			if len(nodes) > 0 {
				n = nodes[i]
			}
			diff = append(diff, n)
		}
	}
	return diff, nil
}

// leafGroup compares the keys of a group of leaves and repairs those that
// differ. A group whose keys do not fit one call (MaxKeysPerCall) on
// either side is split in halves, down to single leaves, which are
// compared page by page (leafPages).
func (x *exchange) leafGroup(ctx context.Context, leaves []uint32) error {
	if len(leaves) == 1 {
		return x.leafPages(ctx, leaves[0])
	}
	// Halving ends at single leaves: at most log2(TreeLeaves) levels deep.
	split := func() error {
		h := len(leaves) / 2
		if err := x.leafGroup(ctx, leaves[:h]); err != nil {
			return err
		}
		return x.leafGroup(ctx, leaves[h:])
	}
	max := x.a.cfg.MaxKeysPerCall
	local, more, err := x.a.cfg.Tree.LeafKeys(x.part, leaves, max)
	if err != nil {
		return fmt.Errorf("local leaf keys: %w", err)
	}
	if more {
		return split()
	}
	remote, more, err := x.remoteKeys(ctx, leaves, nil)
	if err != nil {
		return err
	}
	if more {
		return split()
	}
	pull, push := diffKeys(local, remote)
	return x.repair(ctx, pull, push)
}

// leafPages compares one leaf's keys in pages of MaxKeysPerCall: each
// page ends at the smaller of the two sides' last keys listed (below it
// both lists are complete), and the next starts after it.
func (x *exchange) leafPages(ctx context.Context, leaf uint32) error {
	max := x.a.cfg.MaxKeysPerCall
	var after []byte
	// Every page moves after forward by at least one key, and a leaf holds
	// at most maxLeafScan keys (or the local read fails).
	for range maxLeafScan + 1 {
		local, lmore, err := leafKeysAfter(x.a.cfg.Tree, x.part, []uint32{leaf}, after, max)
		if err != nil {
			return fmt.Errorf("local: %w", err)
		}
		remote, rmore, err := x.remoteKeys(ctx, []uint32{leaf}, after)
		if err != nil {
			return err
		}
		var last []byte // nil: both lists reach the end of the leaf
		if lmore {
			last = local[len(local)-1].Key
		}
		if rmore && (last == nil || bytes.Compare(remote[len(remote)-1].Key, last) < 0) {
			last = remote[len(remote)-1].Key
		}
		pull, push := diffKeys(upTo(local, last), upTo(remote, last))
		if err := x.repair(ctx, pull, push); err != nil {
			return err
		}
		if last == nil {
			return nil
		}
		after = last
	}
	return fmt.Errorf("leaf %d: more than %d pages", leaf, maxLeafScan)
}

// remoteKeys lists the peer's keys of leaves after after (from the first
// when nil) and checks the list.
func (x *exchange) remoteKeys(ctx context.Context, leaves []uint32, after []byte) ([]KeyDigest, bool, error) {
	max := x.a.cfg.MaxKeysPerCall
	resp, err := x.call(ctx, Request{Kind: KindKeys, Partition: int32(x.part), AEQuery: &AEQuery{Nodes: leaves}, After: after, Limit: int32(max)})
	if err != nil {
		return nil, false, err
	}
	kd := resp.ae().Digests
	if len(kd) > max || (resp.More && len(kd) == 0) {
		return nil, false, fmt.Errorf("%w: %s listed %d keys (more: %v), asked for %d", ErrProtocol, x.peer, len(kd), resp.More, max)
	}
	pl := x.a.cfg.Placement()
	for i := range kd {
		prev := after
		if i > 0 {
			prev = kd[i-1].Key
		}
		if prev != nil && bytes.Compare(prev, kd[i].Key) >= 0 {
			return nil, false, fmt.Errorf("%w: %s listed keys out of order", ErrProtocol, x.peer)
		}
		if pl != nil && pl.Partition(kd[i].Key) != x.part {
			return nil, false, fmt.Errorf("%w: %s listed key %q outside partition %d", ErrProtocol, x.peer, kd[i].Key, x.part)
		}
	}
	return kd, resp.More, nil
}

// upTo returns the prefix of kd with keys <= last (all of kd when last is
// nil).
func upTo(kd []KeyDigest, last []byte) []KeyDigest {
	if last == nil {
		return kd
	}
	i, found := slices.BinarySearchFunc(kd, last, func(d KeyDigest, k []byte) int { return bytes.Compare(d.Key, k) })
	if found {
		i++
	}
	return kd[:i]
}

// diffKeys merge-joins two sorted key lists: pull are the keys to fetch
// from the peer (it holds them and here they are absent or differ), push
// those only held here. A key one side lacks while the other holds only
// tombstones for it is left alone (see KeyDigest.Tombstone).
func diffKeys(local, remote []KeyDigest) (pull, push [][]byte) {
	i, j := 0, 0
	for i < len(local) || j < len(remote) {
		c := 0
		switch {
		case i == len(local):
			c = 1
		case j == len(remote):
			c = -1
		default:
			c = bytes.Compare(local[i].Key, remote[j].Key)
		}
		switch {
		case c < 0: // only here
			if !local[i].Tombstone {
				push = append(push, local[i].Key)
			}
			i++
		case c > 0: // only there
			if !remote[j].Tombstone {
				pull = append(pull, remote[j].Key)
			}
			j++
		default:
			if local[i].Digest != remote[j].Digest {
				pull = append(pull, remote[j].Key)
			}
			i++
			j++
		}
	}
	return pull, push
}

// repair fetches the peer's sets of pull, merges them here and queues the
// merged sets the peer lacks; then queues this node's sets of push.
func (x *exchange) repair(ctx context.Context, pull, push [][]byte) error {
	for len(pull) > 0 {
		n, size := 0, int64(0)
		for n < len(pull) && n < MaxFetchKeys && (n == 0 || size+int64(len(pull[n])) <= x.a.cfg.BatchBytes) {
			size += int64(len(pull[n]))
			n++
		}
		done, err := x.fetch(ctx, pull[:n])
		if err != nil {
			return err
		}
		pull = pull[done:]
	}
	for _, k := range push {
		if s := x.a.cfg.Store.Get(k); len(s) > 0 {
			if err := x.queue(ctx, k, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// fetch asks the peer for the sets of keys, merges each into the local
// store and queues the merged set for the peer when it differs from the
// peer's. It returns how many of keys the answer covered (all of them
// unless the peer cut the answer short).
func (x *exchange) fetch(ctx context.Context, keys [][]byte) (int, error) {
	if err := x.stillReplica(); err != nil {
		return 0, err
	}
	resp, err := x.call(ctx, Request{Kind: KindFetch, Partition: int32(x.part), AEQuery: &AEQuery{Keys: keys}, Epoch: x.epoch})
	if err != nil {
		return 0, err
	}
	// Entries come in the order asked, each key at most once.
	next := 0
	var size int64
	for _, e := range resp.Batch {
		for next < len(keys) && !bytes.Equal(keys[next], e.Key) {
			next++
		}
		if next == len(keys) {
			return 0, fmt.Errorf("%w: %s answered a fetch with a key not asked for, or out of order", ErrProtocol, x.peer)
		}
		next++
		if err := checkWireSiblings(e.Siblings); err != nil {
			return 0, fmt.Errorf("%w: %s sent a bad set for %q: %w", ErrProtocol, x.peer, e.Key, err)
		}
		size += int64(len(e.Key) + e.Siblings.Size())
	}
	switch {
	case !resp.More:
		next = len(keys)
	case len(resp.Batch) == 0:
		return 0, fmt.Errorf("%w: %s cut a fetch answer short before its first entry", ErrProtocol, x.peer)
	}
	x.res.Bytes += size
	if err := x.a.pace(ctx, size); err != nil {
		return 0, err
	}
	for _, e := range resp.Batch {
		merged, err := x.merge(ctx, e.Key, e.Siblings)
		if err != nil {
			return 0, err
		}
		if !merged.Equal(e.Siblings) {
			if err := x.queue(ctx, e.Key, merged); err != nil {
				return 0, err
			}
		}
	}
	return next, nil
}

// merge merges the peer's set of key into the local store, writing only
// when it adds something, and returns the local set after.
func (x *exchange) merge(ctx context.Context, key []byte, theirs vclock.Siblings) (vclock.Siblings, error) {
	ours := x.a.cfg.Store.Get(key)
	if vclock.Merge(ours, theirs).Equal(ours) {
		return ours, nil
	}
	merged, err := x.a.cfg.Store.Apply(ctx, key, theirs)
	if err != nil {
		return nil, fmt.Errorf("merging %q: %w", key, err)
	}
	x.res.KeysPulled++
	return merged, nil
}

// queue adds a set for the peer to the push batch, sending the batch once
// it reaches BatchBytes or MaxFetchKeys entries.
func (x *exchange) queue(ctx context.Context, key []byte, s vclock.Siblings) error {
	x.push = append(x.push, Entry{Key: key, Siblings: s})
	x.pushBytes += int64(len(key) + s.Size())
	if x.pushBytes >= x.a.cfg.BatchBytes || len(x.push) >= MaxFetchKeys {
		return x.flush(ctx)
	}
	return nil
}

// flush pushes the waiting batch to the peer (KindHandoff: it merges each
// set into its store), paced by RateBytes.
func (x *exchange) flush(ctx context.Context) error {
	if len(x.push) == 0 {
		return nil
	}
	if err := x.a.pace(ctx, x.pushBytes); err != nil {
		return err
	}
	if _, err := x.call(ctx, Request{Kind: KindHandoff, Batch: x.push, Epoch: x.epoch}); err != nil {
		return err
	}
	x.res.KeysPushed += len(x.push)
	x.res.Bytes += x.pushBytes
	x.push, x.pushBytes = nil, 0
	return nil
}

// stillReplica stops an exchange whose partition left this node while it
// ran: sets merged here now would stay behind after the partition is
// dropped.
func (x *exchange) stillReplica() error {
	pl := x.a.cfg.Placement()
	if pl == nil || !slices.Contains(pl.Replicas(x.part), x.a.cfg.Self) {
		return fmt.Errorf("%w: %s no longer replicates partition %d", ErrNotReplica, x.a.cfg.Self, x.part)
	}
	return nil
}

// call sends one request to the peer under CallTimeout.
func (x *exchange) call(ctx context.Context, req Request) (Response, error) {
	ctx, cancel := context.WithTimeout(ctx, x.a.cfg.CallTimeout)
	defer cancel()
	x.res.Calls++
	resp, err := x.a.cfg.Transport.Call(ctx, x.peer, req)
	if err != nil {
		return Response{}, fmt.Errorf("%v call to %s: %w", req.Kind, x.peer, err)
	}
	return resp, nil
}
