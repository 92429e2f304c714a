// Package replica coordinates quorum reads and writes across the replicas
// of a key, repairs stale replicas on read, forwards writes to a replica,
// and carries the internal RPC between nodes.
//
// # Requests
//
// A write (Put or Delete) is coordinated by the receiving node when it is in
// the key's preference list, otherwise forwarded, one hop, to the first live
// replica. The coordinator mints the new version with vclock.Mint inside
// Store.Update (atomic per key, durable before it returns; with an
// AsyncUpdater store, installed at once and synced while the sends run),
// then sends the resulting merged sibling set, never a lone version, to the
// other replicas in parallel and answers once W replicas, itself (durably)
// included, acknowledged.
// Sends still in flight then continue in the background until the request's
// deadline. A read asks first what R needs (the local store directly, then
// the first live replicas of the preference list), the others when one of
// those fails or after Config.ReadHedge (speculative retry); it answers at
// R replies with their merge, and afterwards sends the merge of everything
// received to each replica that answered with less (read repair).
//
// R and W are 1..N or one/quorum/all, resolved against Config.N and capped
// by the replicas that exist (a cluster smaller than N serves with fewer).
// A value outside 1..N fails with ErrBadQuorum before anything is sent.
// A read skips replicas that Liveness reports down and counts them as
// failures. A write sends a down or failing replica's copy to a stand-in
// from Placement.Fallbacks, marked HintFor (hinted handoff, handoff.go);
// under sloppy quorum (Config.Sloppy, unless WriteOptions.Strict) the
// stand-in's ack counts toward W. Stand-ins never mint: see docs/hints.md.
// When no stand-in takes the copy (none is free, as in 3 nodes with N=3,
// or all refuse), the coordinator keeps it in its own HintSink (not for a
// replica that refused with ErrNotReplica); such a hint never counts
// toward W (Stats.HintsKept).
// Too few answers by the deadline, or as soon as the quorum is out of
// reach, yield a *QuorumError naming each replica that failed and why.
// With a Store offering ReserveCounter (CounterReserver), dots are
// numbered from one counter across keys, so a forgotten key (a collected
// tombstone) never makes this node mint a dot it minted before.
//
// The decisions (who gets what, when a quorum is met or lost, whom to
// repair, whom to refuse) are pure functions in core.go; write.go and
// read.go drive them.
//
// # Membership changes
//
// During a change the Placement gives a partition p two replica sets:
// Replicas(p), which hold a full copy and coordinate writes, and
// Targets(p), the replicas after the change; Pending(p) are the targets
// that are not replicas yet (they are pulling p). A write is coordinated
// only by a node of Replicas(p) (a pending node lacks part of the key's
// history, so it forwards like any other non-replica) and goes to
// Replicas(p) and Pending(p). It succeeds on a joint quorum: W of
// Replicas(p) and W of Targets(p), each resolved against N and capped by
// that set's size, a node in both counting for both; it is lost as soon as
// either side can no longer be met, and refused unsent when liveness says
// either cannot (QuorumError's Target fields then describe the second
// side). A stand-in's hint counts, under sloppy quorum, for the sides of
// the replica it stands in for, and no node that gets its own copy of the
// write is used as a stand-in.
//
// Reads are joint too: a read asks among Replicas(p) and Pending(p) (first
// what each side's R needs, as above) and answers,
// with the merge of every answer, once R of Replicas(p) and R of
// Targets(p) replied (the same rule and the same per-side pre-check as a
// write's, without stand-ins). Read repair covers every node asked, pending
// ones included: they are replicas after the change. Reads cannot stay on
// Replicas(p) alone because nodes learn the commit at different moments. A
// node that installed it writes to W of the targets only, while a retiring
// node still on the change reads: with S = {n1, n2, n3} moving to T =
// {n1, n2, n4}, a write acknowledged by n1 and n4 is on neither n3 nor n2,
// and R=2 of S answered by them would be a 404 for an acknowledged write.
// R of Targets(p) overlaps any W of Targets(p), whichever plan the writer
// followed, and R of Replicas(p) overlaps writes from nodes that have not
// learnt of the change (the transfer and stale-store forwarding bring
// those to the targets before the commit). Answers from a pending node,
// which may still lack older keys, count only toward the targets' side.
// A Delete without a context reads through Get, so it is joint as well.
// Without a change there is one side and everything is as described above,
// at the same cost.
//
// Every store, read, forward and handoff carries Request.Epoch, the plan
// epoch of the placement snapshot the sender routed by (read once per
// request). A node receiving a store (not a hint) or a read for a
// partition of which it is neither a replica nor a pending replica in
// its own plan refuses it with ErrNotReplica when its plan is known and
// the sender's is not newer; the sender counts that as a failed replica
// (never as an empty answer, and a write sends no hint for it). A sender
// with a newer plan is believed. MaxEpochSeen reports the newest epoch
// carried by a store (not a hint), read or forward this node accepted;
// other calls, and malformed or refused ones, do not count, so that a
// forged epoch cannot hold off the node's drops for good. A forward
// refused with ErrNotReplica ran nothing, so the forwarder tries the next
// live replica.
//
// A replica that applies a store from a sender with an older plan while
// its own plan has pending replicas for the key passes the resulting set
// on to them (stale-store forwarding) before it acknowledges; if that
// fails the store fails. So a coordinator that has not learnt of a change
// still reaches the new replicas through the ones that have.
//
// Fence(swap) installs a new placement under a write lock, while a store
// holds the read lock from reading the placement through its local apply
// and a coordinated write from reading it through its local Update (never
// across network calls). Once Fence returns, everything applied here under
// the old placement is in the local store, which a transfer source scans
// only after it follows the puller's plan; later stores see the new
// placement and are forwarded as above.
//
// DropPartition deletes a partition the node no longer holds, key by key,
// checking the caller's condition under each key's lock so that a store
// arriving once the node must hold the partition again is never lost
// (ErrDropAborted). When to drop is the caller's decision.
//
// # Partition transfer
//
// A Puller makes its node a full replica of the partitions it is pending
// in (TransferPlacement.PendingOf). For each, at most MaxInFlight at a
// time, it pulls from every node of Replicas(p) but itself that Usable
// allows, because a write acknowledged by W of them may be missing on any
// single one. A pull is a sequence of KindTransfer calls: the source
// answers a batch of whole sibling sets in key order after the cursor
// (Store.Scan, bounded by count and Config.TransferBatchBytes), its totals
// for the partition and whether more follow, and refuses with
// ErrStalePlan while its own plan is older than the puller's (it has not
// fenced yet). The puller checks each batch (count, order, partition,
// canonical sets), paces it with a byte-rate limiter (SetRate changes it at
// run time), merges every entry with Store.Apply (Merge makes a repeated
// batch harmless) and only then advances the cursor. A source that is
// down, fails or refuses makes the partition wait Retry and resume. When
// every source finished, the partition is done for the change: the puller
// records the epoch, plan hash and done partitions in TransfersFile in its
// directory (temp file, fsync, rename, directory fsync) before Progress,
// which KindStatus answers, reports it; a restart keeps the done
// partitions of the same plan. A new plan abandons the old change's pulls.
//
// # Active anti-entropy
//
// AntiEntropy (aae.go) makes, every AEConfig.Interval, a pass over the
// partitions this node replicates and no change is moving, spread evenly
// over the interval, and exchanges each with every other replica that
// Liveness reports up, one exchange per partition at a time. An exchange
// (aae_exchange.go) compares the partition's hash trees (Tree: levels
// TreeLevels, fan-out TreeFanout, TreeLeaves leaves) top down: the root
// (KindTree level 0; equal roots end the exchange in one call), the 16
// inner nodes, the leaves under those that differ; then the keys and
// digests of the leaves that differ (KindKeys; groups whose keys do not
// fit MaxKeysPerCall split in halves, a single leaf is read in pages after
// a cursor). Keys whose digests differ, or that only the peer holds, are
// fetched (KindFetch, batched), merged into the local store, and the
// merged set pushed back when the peer lacked part of it; keys only held
// here are pushed (KindHandoff). A key that one side lacks while the
// other holds only tombstones for it is left alone: there is no value on
// the lacking side for them to delete, and resending collected tombstones
// would keep them alive. Fetched and pushed bytes are paced by RateBytes. An exchange that
// completes records its start per peer; once every other replica of the
// partition has one, Tree.MarkSynced gets the earliest (tombstone
// collection depends on it) and OnSynced runs. The serving side
// (aae_serve.go) answers only for partitions this node replicates, and
// checks partitions, levels, indexes, limits and keys first.
//
// # Wire format
//
// Calls travel over persistent TCP connections, ConnsPerPeer per peer, many
// calls in flight on each. Every frame is
//
//	uint32 length   big endian, bytes after this field, <= MaxFrameBytes
//	uint8  type     1 hello, 2 request, 3 response
//	uint64 id       request ID, echoed by the response (0 in hello)
//	int64  budget   requests only: ns until the caller's deadline, 0 = none
//	body
//
// The first frame in each direction is a hello whose body is the protocol
// version byte, then two names, each a uint16 big-endian length and its
// bytes: the sender's own name and the node it believes it talks to. The
// caller sends first; the server answers with a hello naming itself and
// the caller. A server refuses (and counts, TCPStats.WrongPeer) a hello
// meant for another node, and a caller refuses a server that names itself
// as another node (ErrWrongPeer), so a call is never answered, and
// acknowledged, by a node other than the one it was meant for. A hello is
// at most 4 KiB and must arrive within 5 seconds. A request body is
// MarshalRequest(req), a response body MarshalReply(resp, err): the version
// byte then a msgpack map with short field names. New fields and new Kinds
// need no version bump: decoders skip unknown fields, and an unknown Kind is
// answered with ErrUnknownKind. Errors cross the wire as a sentinel code
// plus text (RemoteError, so errors.Is works on the caller's side), and a
// *QuorumError keeps its Need, Got and per-replica causes.
//
// A frame over MaxFrameBytes is refused: an outgoing one fails its call
// without being sent, an incoming one closes the connection before it is
// read. A served request frame holds its length in a per-connection and a
// transport-wide byte budget (MaxConnBufferedBytes, MaxBufferedBytes) from
// the moment its length is read until its call is answered; a connection
// whose next frame does not fit stops reading until it does. Once begun, a
// frame must arrive within FrameTimeout, and a connection on which no frame
// starts for IdleTimeout is closed (clients retire pooled connections idle
// for half of that). A sibling set of more than 1000 versions in a message
// is refused, and msgpack nested deeper than wire.MaxDepth is refused
// before it is decoded, as is a message that is not a map (the decoder
// would fill a struct from an array by position) and one whose
// anti-entropy lists exceed their bounds (MaxTreeNodes nodes or hashes,
// MaxFetchKeys keys, MaxDigests digests). A broken connection fails its pending calls with ErrConnLost and is
// redialed by the next call; a failed dial puts the peer in exponential
// backoff, during which calls fail at once with ErrUnreachable.
//
// replicatest holds an in-memory transport with fault injection and the
// conformance suite that both transports pass.
package replica
