package replica

import (
	"context"
	"fmt"
)

// Bounds of a transfer batch in keys: a pull asking for Limit 0 gets
// DefaultTransferBatchKeys, and none gets more than MaxTransferBatchKeys.
const (
	DefaultTransferBatchKeys = 256
	MaxTransferBatchKeys     = 1024
)

// handleTransfer serves one batch of a partition to a new replica pulling
// it (KindTransfer). It refuses while this node's plan is older than the
// puller's: a source that has not learnt the change yet may still accept
// writes under the old placement without sending them to the pending
// replica, so a batch it served could miss them. Once its placement is at
// the puller's epoch the fence guarantees every such write is in the
// local store before the scan (see Coordinator.Fence). A puller with an
// older plan is served: it only ever merges what it gets.
//
// The source serves whatever its store holds for the partition, whether
// or not it is a replica of it in its own placement.
func (c *Coordinator) handleTransfer(_ context.Context, from string, req Request) (Response, error) {
	part := int(req.Partition)
	switch {
	case part < 0 || (c.cfg.Partitions > 0 && part >= c.cfg.Partitions):
		return Response{}, fmt.Errorf("%w: transfer of partition %d from %s, this ring has %d", ErrBadRequest, part, from, c.cfg.Partitions)
	case req.Limit < 0:
		return Response{}, fmt.Errorf("%w: transfer with limit %d", ErrBadRequest, req.Limit)
	}
	var epoch uint64
	if p := c.cfg.Placement(); p != nil {
		epoch = p.Epoch()
	}
	if epoch < req.Epoch {
		c.stats.transfersStale.Add(1)
		return Response{}, fmt.Errorf("%w: partition %d: plan epoch %d here, %s follows %d", ErrStalePlan, part, epoch, from, req.Epoch)
	}
	limit := int(req.Limit)
	if limit == 0 {
		limit = DefaultTransferBatchKeys
	}
	limit = min(limit, MaxTransferBatchKeys)
	keys, sets, more := c.cfg.Store.Scan(part, req.After, limit, c.cfg.TransferBatchBytes)
	resp := Response{Batch: make([]Entry, len(keys)), More: more}
	var size int64
	for i := range keys {
		resp.Batch[i] = Entry{Key: keys[i], Siblings: sets[i]}
		size += entrySize(keys[i], sets[i])
	}
	if c.cfg.PartitionStats != nil {
		resp.Keys, resp.Bytes = c.cfg.PartitionStats(part)
	}
	c.stats.transferBatchesServed.Add(1)
	c.stats.transferKeysServed.Add(uint64(len(keys)))
	c.stats.transferBytesServed.Add(uint64(size))
	return resp, nil
}

// handleStatus answers KindStatus: the plan this node follows and the
// partitions of its change it holds a full copy of.
func (c *Coordinator) handleStatus() Response {
	if c.cfg.Progress != nil {
		epoch, hash, done := c.cfg.Progress()
		return Response{Epoch: epoch, PlanHash: hash, Done: done}
	}
	p := c.cfg.Placement()
	if p == nil {
		return Response{}
	}
	resp := Response{Epoch: p.Epoch()}
	if h, ok := p.(interface{ PlanHash() uint64 }); ok {
		resp.PlanHash = h.PlanHash()
	}
	return resp
}
