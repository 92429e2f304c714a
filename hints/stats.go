package hints

import (
	"slices"
	"strings"
	"time"
)

// Stats is a snapshot of the queue's counters since Open. All are
// monotonic except the Pending totals. The node exports them to
// Prometheus.
type Stats struct {
	// Stored counts StoreHint calls that stored (or already held) their
	// hint durably: one per write, however many share a key.
	Stored uint64
	// Delivered counts pending keys acknowledged by their target: one per
	// key per delivery, however many writes it merged.
	Delivered uint64
	// DeliveryFailures counts batches a target did not acknowledge.
	DeliveryFailures uint64
	// Rounds counts delivery rounds started.
	Rounds uint64
	// Rerouted counts keys moved from a removed target to the key's
	// current replicas.
	Rerouted uint64
	// DroppedWindow, DroppedCap and DroppedRemoved count hints not stored
	// because the target was down longer than the window, because of the
	// per-target cap, or because the target left the ring and the key had
	// no other replica to take them.
	DroppedWindow, DroppedCap, DroppedRemoved uint64
	// DroppedTooLarge counts pending hints dropped from the queue because
	// the Deliverer reported the hint alone too large to ever deliver
	// (ErrTooLarge), hints refused because the key's merged pending set
	// would pass vclock.MaxSiblings versions, and such sets skipped when a
	// log is reopened; anti-entropy (or a read repair) brings those keys
	// to the target.
	DroppedTooLarge uint64
	// DroppedExpired counts pending keys dropped because their oldest
	// hint was stored longer ago than Config.Grace; anti-entropy repairs
	// those keys.
	DroppedExpired uint64
	// DeliveryLagTotal is the sum, over delivered keys, of the time from
	// the key's first pending hint to its acknowledgement;
	// LastDeliveryLag is that time for the latest delivered key.
	DeliveryLagTotal, LastDeliveryLag time.Duration
	// PendingHints and PendingBytes total the pending hints over targets.
	PendingHints, PendingBytes int64
}

// TargetStats describes the hints pending for one target.
type TargetStats struct {
	// Target is the node the hints are for.
	Target string
	// Hints is the number of pending keys.
	Hints int
	// Bytes is their encoded size; the per-target cap applies to it.
	Bytes int64
	// LogBytes is the size of the target's hint log on disk.
	LogBytes int64
	// Oldest is when the oldest pending hint was stored; zero if none.
	Oldest time.Time
	// Down is true while liveness reports the target down, since DownSince.
	Down      bool
	DownSince time.Time
}

// Stats returns the counters and pending totals.
func (q *Queue) Stats() Stats {
	s := Stats{
		Stored: q.st.stored.Load(), Delivered: q.st.delivered.Load(),
		DeliveryFailures: q.st.failures.Load(), Rounds: q.st.rounds.Load(),
		Rerouted:      q.st.rerouted.Load(),
		DroppedWindow: q.st.droppedWindow.Load(), DroppedCap: q.st.droppedCap.Load(),
		DroppedRemoved:   q.st.droppedGone.Load(),
		DroppedTooLarge:  q.st.droppedLarge.Load(),
		DroppedExpired:   q.st.droppedExpired.Load(),
		DeliveryLagTotal: time.Duration(q.st.lagTotal.Load()),
		LastDeliveryLag:  time.Duration(q.st.lagLast.Load()),
	}
	for _, t := range q.snapshot() {
		t.mu.Lock()
		s.PendingHints += int64(len(t.index))
		s.PendingBytes += t.bytes
		t.mu.Unlock()
	}
	return s
}

// Pending describes every target with a hint log, sorted by name.
func (q *Queue) Pending() []TargetStats {
	ts := q.snapshot()
	out := make([]TargetStats, 0, len(ts))
	for _, t := range ts {
		out = append(out, q.targetStats(t))
	}
	slices.SortFunc(out, func(a, b TargetStats) int { return strings.Compare(a.Target, b.Target) })
	return out
}

// PendingFor describes the hints pending for target (zero counts if none).
func (q *Queue) PendingFor(target string) TargetStats {
	q.mu.Lock()
	t, ok := q.targets[target]
	since, down := q.downSince[target]
	q.mu.Unlock()
	if !ok {
		return TargetStats{Target: target, Down: down, DownSince: since}
	}
	return q.targetStats(t)
}

func (q *Queue) targetStats(t *target) TargetStats {
	q.mu.Lock()
	since, down := q.downSince[t.name]
	q.mu.Unlock()
	ts := TargetStats{Target: t.name, Down: down, DownSince: since, LogBytes: t.wal.Size()}
	t.mu.Lock()
	defer t.mu.Unlock()
	ts.Hints, ts.Bytes = len(t.index), t.bytes
	var oldest int64
	for _, e := range t.index {
		if oldest == 0 || e.since < oldest {
			oldest = e.since
		}
	}
	if oldest != 0 {
		ts.Oldest = time.Unix(0, oldest)
	}
	return ts
}

// snapshot returns the current targets.
func (q *Queue) snapshot() []*target {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*target, 0, len(q.targets))
	for _, t := range q.targets {
		out = append(out, t)
	}
	return out
}
