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
// Inspection, Preference and the what-if functions form the
// capacity-planning view printed by the admin API and CLI; docs/ring.md
// records the balance and movement figures the defaults were tuned for.
package ring
