package replica

import "sync/atomic"

// Stats is a snapshot of the coordinator's counters since New. All are
// monotonic except Background. The node exports them to Prometheus.
type Stats struct {
	// Gets, Puts and Deletes count client requests received by this node.
	Gets, Puts, Deletes uint64
	// Forwards counts writes this node forwarded to a replica of the key.
	Forwards uint64
	// ForwardsServed counts forwarded writes this node coordinated.
	ForwardsServed uint64
	// StoresServed and ReadsServed count store and read calls from peers.
	StoresServed, ReadsServed uint64
	// HintsServed counts store calls kept as hints for another node.
	HintsServed uint64
	// HintsSent counts write copies a stand-in accepted as a hint for a
	// down replica; HintFailures the stand-ins that refused one.
	HintsSent, HintFailures uint64
	// HintsKept counts write copies for a down replica that no stand-in
	// took and that this coordinator kept in its own hint sink (never
	// counted toward W).
	HintsKept uint64
	// HandoffsSent and HandoffsServed count hint batches delivered to, and
	// received from, other nodes.
	HandoffsSent, HandoffsServed uint64
	// ReadHedges counts reads that asked the replicas beyond the first
	// ones R needs, because one of those was slower than Config.ReadHedge
	// or failed.
	ReadHedges uint64
	// ReadRepairs counts replicas sent the merged set after a read because
	// they answered with less; ReadRepairFailures the sends that failed.
	ReadRepairs, ReadRepairFailures uint64
	// QuorumFailures counts requests answered with a QuorumError.
	QuorumFailures uint64
	// ReplicaFailures counts individual replica calls that failed or were
	// skipped because the replica was down.
	ReplicaFailures uint64
	// StaleRefused counts stores and reads refused because this node is
	// no replica of the key in a plan at least as new as the sender's.
	StaleRefused uint64
	// StaleForwards counts stores from senders with an older plan that
	// this node passed on to the pending replicas of its own plan.
	StaleForwards uint64
	// Background is the number of background sends and repairs running
	// now, and of local-only writes waiting for their own copy to become
	// durable.
	Background int
	// TransferBatchesServed, TransferKeysServed and TransferBytesServed
	// count the partition-transfer batches this node served as a source,
	// the keys in them and their bytes (key plus sibling set size).
	TransferBatchesServed, TransferKeysServed, TransferBytesServed uint64
	// TransfersStale counts pulls refused with ErrStalePlan because this
	// node's plan was older than the puller's.
	TransfersStale uint64
}

// stats holds the live counters behind Stats.
type stats struct {
	gets, puts, deletes             atomic.Uint64
	forwards, forwardsServed        atomic.Uint64
	storesServed, readsServed       atomic.Uint64
	hintsServed                     atomic.Uint64
	hintsSent, hintFailures         atomic.Uint64
	hintsKept                       atomic.Uint64
	handoffsSent, handoffsServed    atomic.Uint64
	readRepairs, readRepairFailures atomic.Uint64
	readHedges                      atomic.Uint64
	quorumFailures, replicaFailures atomic.Uint64
	staleRefused, staleForwards     atomic.Uint64

	transferBatchesServed, transferKeysServed atomic.Uint64
	transferBytesServed, transfersStale       atomic.Uint64
}

// Stats returns the counters.
func (c *Coordinator) Stats() Stats {
	s := &c.stats
	return Stats{
		Gets: s.gets.Load(), Puts: s.puts.Load(), Deletes: s.deletes.Load(),
		Forwards: s.forwards.Load(), ForwardsServed: s.forwardsServed.Load(),
		StoresServed: s.storesServed.Load(), ReadsServed: s.readsServed.Load(),
		HintsServed: s.hintsServed.Load(),
		HintsSent:   s.hintsSent.Load(), HintFailures: s.hintFailures.Load(),
		HintsKept:    s.hintsKept.Load(),
		HandoffsSent: s.handoffsSent.Load(), HandoffsServed: s.handoffsServed.Load(),
		ReadHedges:  s.readHedges.Load(),
		ReadRepairs: s.readRepairs.Load(), ReadRepairFailures: s.readRepairFailures.Load(),
		QuorumFailures: s.quorumFailures.Load(), ReplicaFailures: s.replicaFailures.Load(),
		StaleRefused: s.staleRefused.Load(), StaleForwards: s.staleForwards.Load(),
		Background: c.bg.running(),

		TransferBatchesServed: s.transferBatchesServed.Load(), TransferKeysServed: s.transferKeysServed.Load(),
		TransferBytesServed: s.transferBytesServed.Load(), TransfersStale: s.transfersStale.Load(),
	}
}
