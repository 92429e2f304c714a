// Package ring maps keys to partitions and partitions to the members that
// hold them: the "who holds which key" half of ringkv's membership.
//
// The key space is cut into a fixed, prime number of partitions; a key's
// partition is Sum64(key) mod Partitions and never depends on membership.
// Partitions are assigned to members by github.com/buraksezer/consistent
// (v1.1.0) with bounded loads: no member owns more than
// ceil(Load x Partitions / members) partitions.
//
// The preference list of partition p is its owner followed by the distinct
// owners of p+1, p+2, ... (mod Partitions) until N distinct members are
// found; the members after those, in the same walk order, are p's
// fallbacks, the stand-ins hinted handoff uses when replicas are down.
// Because consecutive partition numbers hash to unrelated ring points, the
// successors of one member's partitions are spread over nearly every other
// member, so a failed node's load is shared widely. (The library's
// GetClosestN instead gives every partition of a member the same
// successors, and hashes and sorts the member list on every call.)
//
// A Ring is an immutable snapshot for one membership. New computes every
// partition's walk once; lookups index those tables, take no lock and
// allocate nothing. Ring membership is not liveness: a crashed node stays
// in the ring, and callers skip it using the fallbacks.
//
// New validates what the library would otherwise panic on or silently
// mishandle (members at the load bound, duplicate names, virtual-node hash
// collisions, more replicas than members). A ring with fewer members than N
// is valid and Degraded: each partition gets every member as a replica.
//
// # Membership changes: Plan, Transition, Decide
//
// Ownership moves after the data. The cluster agrees, by gossip, on a Plan:
// an epoch, the serving Members and, while a change is in progress, the
// Target members the data moves to. Gossip keeps the greater plan under
// Plan.Compare, so every node ends up following the same one.
//
// A Transition is the placement of one plan: the serving ring S (Members)
// and the target ring T (Target, or S itself when the plan is stable). For
// partition p, Replicas(p) = S(p) hold the data and coordinate writes
// (reads and writes during a change need a quorum of Replicas and one of
// Targets: see package replica),
// Pending(p) = T(p) \ S(p) receive writes and pull p from the serving
// replicas, Retiring(p) = S(p) \ T(p) drop p after the commit, and
// Fallbacks(p) are S's fallbacks without the pending nodes. Moves lists
// every pending (partition, node) pair. Like a Ring, a Transition is
// immutable and its lookups allocate nothing.
//
// Decide is the claimant's pure decision (Claimant names the lowest-named
// live node involved): with a stable plan whose Members differ from the
// nodes that want to be in the ring, and everyone up, start moving to them
// (MoveTo); with a change in progress whose target holds a node that no
// longer wants in, retarget at once, since that drops no data; with a
// change in progress, everyone up and every move complete, Commit. Joins
// arriving during a change wait for its commit. A commit therefore never
// happens before every new replica holds its partitions.
//
// Inspection, Preference and the what-if functions form the
// capacity-planning view printed by the admin API and CLI; docs/ring.md
// records the balance and movement figures the defaults were tuned for.
package ring
