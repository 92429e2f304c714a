package replica

import (
	"bytes"
	"fmt"
	"slices"
)

// This file serves the anti-entropy calls a peer's AntiEntropy makes to
// this node (KindTree, KindKeys, KindFetch); the repaired sets it pushes
// back arrive as KindHandoff batches. Every count, level, index and
// partition is checked before the Tree or Store is asked.

// DefaultMaxKeysPerCall is the KindKeys answer size when the call names
// no Limit, and AEConfig.MaxKeysPerCall's default.
const DefaultMaxKeysPerCall = 1024

// levelWidth is the number of nodes at a tree level.
func levelWidth(level int) int {
	w := 1
	for range level {
		w *= TreeFanout
	}
	return w
}

// checkTreeNodes refuses node indexes outside a level of width nodes, and
// repeated ones.
func checkTreeNodes(nodes []uint32, width int) error {
	if len(nodes) > width {
		return fmt.Errorf("%w: %d nodes named, the level has %d", ErrBadRequest, len(nodes), width)
	}
	var seen [TreeLeaves]bool
	for _, n := range nodes {
		if int(n) >= width {
			return fmt.Errorf("%w: node %d out of range (level of %d)", ErrBadRequest, n, width)
		}
		if seen[n] {
			return fmt.Errorf("%w: node %d named twice", ErrBadRequest, n)
		}
		seen[n] = true
	}
	return nil
}

// checkAAEPartition refuses a partition outside the ring, and one this
// node is no replica of: it would answer from a partial copy, or none,
// and the caller would push the whole partition to a node that does not
// keep it.
func (c *Coordinator) checkAAEPartition(part int32) (Placement, error) {
	if c.cfg.Tree == nil {
		return nil, fmt.Errorf("%w (no tree configured on %s)", ErrNoTree, c.cfg.Self)
	}
	if part < 0 || (c.cfg.Partitions > 0 && int(part) >= c.cfg.Partitions) {
		return nil, fmt.Errorf("%w: partition %d out of range", ErrBadRequest, part)
	}
	p := c.cfg.Placement()
	if p == nil || !slices.Contains(p.Replicas(int(part)), c.cfg.Self) {
		return nil, fmt.Errorf("%w: %s is not a replica of partition %d", ErrNotReplica, c.cfg.Self, part)
	}
	return p, nil
}

// handleTree serves KindTree.
func (c *Coordinator) handleTree(req Request) (Response, error) {
	if _, err := c.checkAAEPartition(req.Partition); err != nil {
		return Response{}, err
	}
	if req.ae().Level < 0 || req.ae().Level >= TreeLevels {
		return Response{}, fmt.Errorf("%w: tree level %d", ErrBadRequest, req.ae().Level)
	}
	if err := checkTreeNodes(req.ae().Nodes, levelWidth(int(req.ae().Level))); err != nil {
		return Response{}, err
	}
	h, err := c.cfg.Tree.TreeHashes(int(req.Partition), int(req.ae().Level), req.ae().Nodes)
	if err != nil {
		return Response{}, fmt.Errorf("tree of partition %d: %w", req.Partition, err)
	}
	return Response{AEAnswer: &AEAnswer{Hashes: h}}, nil
}

// handleKeys serves KindKeys. The answer is cut to TransferBatchBytes of
// keys (at least one key), with More set, so that large keys cannot make
// it exceed the frame limit.
func (c *Coordinator) handleKeys(req Request) (Response, error) {
	if _, err := c.checkAAEPartition(req.Partition); err != nil {
		return Response{}, err
	}
	if len(req.ae().Nodes) == 0 {
		return Response{}, fmt.Errorf("%w: keys call names no leaf", ErrBadRequest)
	}
	if err := checkTreeNodes(req.ae().Nodes, TreeLeaves); err != nil {
		return Response{}, err
	}
	if len(req.After) > 0 && len(req.ae().Nodes) != 1 {
		// A page after a cursor rereads the group from its first key
		// (leafKeysAfter): one leaf at a time bounds that work.
		return Response{}, fmt.Errorf("%w: keys call with a cursor names %d leaves, want 1", ErrBadRequest, len(req.ae().Nodes))
	}
	limit := int(req.Limit)
	switch {
	case limit == 0:
		limit = DefaultMaxKeysPerCall
	case limit < 0 || limit > MaxDigests:
		return Response{}, fmt.Errorf("%w: keys limit %d, want 1..%d", ErrBadRequest, limit, MaxDigests)
	}
	kd, more, err := leafKeysAfter(c.cfg.Tree, int(req.Partition), req.ae().Nodes, req.After, limit)
	if err != nil {
		return Response{}, err
	}
	var size int64
	for i := range kd {
		size += int64(len(kd[i].Key)) + 16
		if size > c.cfg.TransferBatchBytes && i > 0 {
			kd, more = kd[:i], true
			break
		}
	}
	return Response{AEAnswer: &AEAnswer{Digests: kd}, More: more}, nil
}

// maxLeafScan bounds the keys of a leaf group read to serve a page after
// a cursor: Tree.LeafKeys has none, so a page after After reads the
// group's keys from the first. Only a leaf holding more keys than one
// call carries needs pages; a leaf of more than maxLeafScan keys (a
// partition of some sixteen million) cannot be compared.
const maxLeafScan = 1 << 16

// leafKeysAfter returns up to limit keys of partition in leaves that sort
// after after (all when after is empty), and whether more follow.
func leafKeysAfter(t Tree, partition int, leaves []uint32, after []byte, limit int) ([]KeyDigest, bool, error) {
	if pager, ok := t.(TreePager); ok && len(after) > 0 {
		kd, more, err := pager.LeafKeysAfter(partition, leaves, after, limit)
		if err != nil {
			return nil, false, fmt.Errorf("leaf keys of partition %d: %w", partition, err)
		}
		if len(kd) > limit {
			kd, more = kd[:limit], true
		}
		if more && len(kd) == 0 {
			return nil, false, fmt.Errorf("leaf keys of partition %d: more keys, none listed", partition)
		}
		return kd, more, nil
	}
	scan := limit
	if len(after) > 0 {
		scan = maxLeafScan
	}
	kd, more, err := t.LeafKeys(partition, leaves, scan)
	if err != nil {
		return nil, false, fmt.Errorf("leaf keys of partition %d: %w", partition, err)
	}
	if len(after) > 0 {
		if more {
			return nil, false, fmt.Errorf("leaf keys of partition %d: more than %d keys in leaves %v", partition, maxLeafScan, leaves)
		}
		i, found := slices.BinarySearchFunc(kd, after, func(d KeyDigest, k []byte) int { return bytes.Compare(d.Key, k) })
		if found {
			i++
		}
		kd = kd[i:]
	}
	if len(kd) > limit { // also guards against a Tree returning more than asked
		kd, more = kd[:limit], true
	}
	if more && len(kd) == 0 {
		return nil, false, fmt.Errorf("leaf keys of partition %d: more keys, none listed", partition)
	}
	return kd, more, nil
}

// handleFetch serves KindFetch: the sets of the keys asked, in order,
// stopping after the entry that brings the answer to TransferBatchBytes.
func (c *Coordinator) handleFetch(req Request) (Response, error) {
	p, err := c.checkAAEPartition(req.Partition)
	if err != nil {
		return Response{}, err
	}
	for i, k := range req.ae().Keys {
		if c.cfg.MaxKeyBytes > 0 && len(k) > c.cfg.MaxKeyBytes {
			return Response{}, fmt.Errorf("%w: key %d is %d bytes, more than %d", ErrBadRequest, i, len(k), c.cfg.MaxKeyBytes)
		}
		if p.Partition(k) != int(req.Partition) {
			return Response{}, fmt.Errorf("%w: key %d is not in partition %d", ErrBadRequest, i, req.Partition)
		}
	}
	var resp Response
	var size int64
	for i, k := range req.ae().Keys {
		s := c.cfg.Store.Get(k)
		if len(s) == 0 {
			continue
		}
		resp.Batch = append(resp.Batch, Entry{Key: k, Siblings: s})
		size += int64(len(k) + s.Size())
		if size >= c.cfg.TransferBatchBytes && i < len(req.ae().Keys)-1 {
			resp.More = true
			break
		}
	}
	return resp, nil
}
