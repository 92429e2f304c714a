// Package gossip gives a node its view of the cluster, on
// hashicorp/memberlist: who is alive (liveness), how to reach them
// (metadata), and who owns partitions (ring membership).
//
// Ring membership is not liveness. Liveness (Alive, Suspect, Dead) is
// memberlist's failure detector and changes by itself. Ring membership is a
// small map node -> Entry{Status, Version, Addr} that changes only when a
// node starts (it becomes joined), leaves (Leave: left) or is removed by an
// operator (Remove: removed). A crash changes nothing in the map: requests
// skip the dead node and its writes become hints.
//
// # The membership map
//
// Map and Merge (membership.go) are pure. An Entry with a higher Version
// wins; on equal versions the status rank decides (removed > left > leaving
// > joined) and then the address, so Merge is a semilattice join:
// commutative, associative and idempotent, and concurrent changes converge
// to the same map on every node whatever the order messages arrive in.
// Whoever changes a row sets its version to its clock in milliseconds, or
// one more than the row's version if that is higher. Rows from peers are
// taken only within bounds: versions at most a day ahead of the clock,
// names this node already knows or memberlist saw join (others wait in a
// small pending set), at most 1024 names. The map spreads three ways: whole, in memberlist's push-pull
// exchanges (Delegate.LocalState / MergeRemoteState); changed rows, as
// broadcasts piggybacked on gossip (TransmitLimitedQueue), re-broadcast by
// every node that learns something new; and, for Leave and Remove, sent
// directly over TCP to every alive peer before the call returns.
//
// # Wire and disk formats
//
// Node metadata: msgpack map {r: rpc, h: http, s: resp, p: proto}, at most
// memberlist.MetaMaxSize (512) bytes. Map on the wire: msgpack array
// [format=1, [[name, status, version, addr], ...]] with rows sorted by name;
// a user message is one type byte (1 = rows) followed by that encoding.
// On disk: ring-membership.json in the node's data directory,
// {"format":1,"node":NAME,"members":{NAME:{"status","version","addr"}}},
// replaced atomically (temp file, fsync, rename, directory fsync).
//
// # memberlist traps and how they are handled
//
//   - Event callbacks run under memberlist's node lock: the delegate copies
//     the node into an unbounded queue and returns; one event goroutine
//     updates the peer table and calls OnRingChange/OnLiveness.
//   - A graceful leave and a failure both arrive as NotifyLeave, and in
//     memberlist v0.7.0 the Node's State field is never filled in (the
//     internal nodeState.State shadows it), so it cannot tell them apart:
//     a node shutting down sends its peers a goodbye message first, and
//     NotifyLeave is logged as a departure or a failure accordingly.
//     Neither touches the ring.
//   - Suspicion has no callback: a failed probe is seen in memberlist's
//     log line "Suspect NAME has failed", and the next successful probe
//     (PingDelegate) clears it.
//   - Members() and LocalNode() return pointers into memberlist's state
//     that it rewrites under its lock: we send to copies of addresses
//     taken inside callbacks instead.
//   - Leave must precede Shutdown, or peers notice only by probing:
//     Shutdown calls memberlist's Leave with a timeout, then Shutdown.
//   - Dead nodes are forgotten after GossipToTheDeadTime, so a long
//     partition would never heal: every RejoinInterval each node joins the
//     ring members it does not see alive (and its seeds if it sees nobody).
//   - The memberlist name is the node ID and the ring member name.
package gossip
