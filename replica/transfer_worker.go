package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// pullPartition pulls partition part of change w from every source that
// has not finished it yet. It returns nil once every source finished;
// otherwise the errors of the sources that were down, failed or refused
// (each counted in Failures), after trying every other source, so that one
// down source does not hold back what the others can give.
func (p *Puller) pullPartition(w *changeWork, part int) error {
	sources := p.sources(w, part)
	if len(sources) == 0 {
		// Every replica is this node or removed: there is nothing left to
		// copy, and waiting would block the change for ever.
		p.log.Warn("no source to pull a partition from", "epoch", w.epoch, "partition", part)
		return nil
	}
	var errs []error
	for _, src := range sources {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p.mu.Lock()
		ss := w.parts[part].sources[src]
		if ss == nil {
			ss = &sourceState{}
			w.parts[part].sources[src] = ss
		}
		finished := ss.finished
		p.mu.Unlock()
		if finished {
			continue
		}
		if p.cfg.Alive != nil && !p.cfg.Alive(src) {
			p.failures.Add(1)
			errs = append(errs, fmt.Errorf("%w: %s", ErrReplicaDown, src))
			continue
		}
		if err := p.pullSource(w, part, src, ss); err != nil {
			if w.ctx.Err() != nil {
				return w.ctx.Err()
			}
			p.failures.Add(1)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sources lists the nodes to pull part from: its serving replicas but
// this node and those Usable refuses.
func (p *Puller) sources(w *changeWork, part int) []string {
	var out []string
	for _, n := range w.pl.Replicas(part) {
		if n != p.cfg.Self && (p.cfg.Usable == nil || p.cfg.Usable(n)) {
			out = append(out, n)
		}
	}
	return out
}

// pullSource pages part from src, from ss's cursor to the end, merging
// each checked batch before asking for the next. The cursor advances only
// once a batch is merged, so a failure re-asks at most that batch.
func (p *Puller) pullSource(w *changeWork, part int, src string, ss *sourceState) error {
	for {
		p.mu.Lock()
		after := ss.cursor
		p.mu.Unlock()
		req := Request{Kind: KindTransfer, Epoch: w.epoch, Partition: int32(part), After: after, Limit: int32(p.cfg.BatchKeys)}
		cctx, cancel := context.WithTimeout(w.ctx, p.cfg.Timeout)
		resp, err := p.cfg.Transport.Call(cctx, src, req)
		cancel()
		if err != nil {
			return fmt.Errorf("replica: pull partition %d from %s: %w", part, src, err)
		}
		if err := checkBatch(w.pl.Partition, part, after, p.cfg.BatchKeys, resp); err != nil {
			p.log.Warn("refusing a transfer batch", "peer", src, "partition", part, "err", err)
			return fmt.Errorf("replica: pull partition %d from %s: %w", part, src, err)
		}
		var size int64
		for _, e := range resp.Batch {
			size += entrySize(e.Key, e.Siblings)
		}
		if err := p.pace(w.ctx, size); err != nil {
			return fmt.Errorf("replica: pull partition %d from %s: %w", part, src, err)
		}
		if err := p.apply(w.ctx, resp.Batch); err != nil {
			return fmt.Errorf("replica: merge partition %d from %s: %w", part, src, err)
		}
		p.keys.Add(int64(len(resp.Batch)))
		p.bytes.Add(size)
		p.mu.Lock()
		if n := len(resp.Batch); n > 0 {
			ss.cursor = resp.Batch[n-1].Key
		}
		ss.total, ss.received, ss.finished = resp.Bytes, ss.received+size, !resp.More
		p.mu.Unlock()
		if !resp.More {
			return nil
		}
	}
}

// apply merges every entry of batch into the store, up to applyParallel at
// once, and returns the first failure after all were tried.
func (p *Puller) apply(ctx context.Context, batch []Entry) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex // guards first
		first error
	)
	for range min(applyParallel, len(batch)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(batch) {
					return
				}
				e := batch[i]
				before := p.cfg.Store.Get(e.Key)
				after, err := p.cfg.Store.Apply(ctx, e.Key, e.Siblings)
				if err == nil && !after.Equal(before) {
					// The set changed this store: it brought something
					// new (approximately: a concurrent write can too).
					p.newBytes.Add(entrySize(e.Key, e.Siblings))
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("key %q: %w", e.Key, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}
