// Package gossip gives a node its view of the cluster, on
// hashicorp/memberlist: who is alive (liveness), how to reach them
// (metadata), who wants to be in the ring (ring membership) and which
// ring serves and where data is moving (the cluster plan, ring.Plan).
//
// Ring membership is not liveness. Liveness (Alive, Suspect, Dead) is
// memberlist's failure detector and changes by itself. Ring membership is a
// small map node -> Entry{Status, Version, Addr} that changes only when a
// node starts (it becomes joined), starts leaving (StartLeave: leaving),
// has left (Leave: left) or is removed by an operator (Remove: removed). A
// crash changes nothing in the map: requests skip the dead node and its
// writes become hints. The rows express intent; which ring serves is the
// plan.
//
// # The plan
//
// Next to the map each node holds the cluster's ring.Plan (Plan,
// OnPlanChange). Merging keeps the greater under Plan.Compare, so it
// converges like the map. A plan from outside is taken only if it passes
// Plan.Validate, has valid gossip names, an epoch of at most 2^48 and a
// version at most a day ahead of the clock. It spreads the same three ways
// as rows: whole in push-pull, as a named broadcast (msgPlan; a newer plan
// replaces an older one queued; a plan too large for a gossip packet is
// not queued), and directly over TCP from Propose. At New, a data
// directory from before plans (state file format 1) gives a plan of its
// map's ring members at version 0; a node with no plan that has never seen
// a peer makes, with Config.Bootstrap, the first plan of a new cluster
// (itself alone); any other node without a plan waits for a peer's.
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
// memberlist.MetaMaxSize (512) bytes. Push-pull state: msgpack array
// [format=2, [[name, status, version, addr], ...], plan or nil] with rows
// sorted by name and a plan as [epoch, version, [members], [target] or
// nil]; format 1, [1, rows], is still read (a node from before plans). A
// row with a zone has a fifth field, zone, and a plan with zones a fifth,
// [name, zone, ...] sorted by name; without zones both keep the shapes
// above, which builds from before zones read. A
// user message is one type byte followed by its body: 1 = a row delta in
// format 1 (which older nodes read), 2 = goodbye (the sender's name), 3 =
// a plan. On disk: ring-membership.json in the node's data directory,
// {"format":2,"node":NAME,"members":{NAME:{"status","version","addr"}},
// "plan":{"epoch","version","members","target"}} ("plan" absent while
// none is known; format 1 files, without it, still load), replaced
// atomically (temp file, fsync, rename, directory fsync).
//
// # memberlist traps and how they are handled
//
//   - Event callbacks run under memberlist's node lock: the delegate copies
//     the node into an unbounded queue and returns; one event goroutine
//     updates the peer table and calls OnRingChange, OnPlanChange and
//     OnLiveness.
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
