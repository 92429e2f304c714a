package node

// respReservedFiles is the margin of open files a node leaves for
// everything but RESP clients (WAL segments, hint logs, snapshots, RPC,
// gossip and HTTP connections) when it fits limits.resp_max_clients to
// the process's open-file limit: a margin, not a guarantee, since HTTP
// connections are not capped. Redis reserves 32 for its own; a node has
// more.
const respReservedFiles = 256

// noFileLimit is where an open-file limit counts as none: RLIM_INFINITY
// is ^uint64(0) on Linux, Darwin, NetBSD and OpenBSD and 1<<63-1 on
// FreeBSD and DragonFly (whose Rlimit.Cur is an int64).
const noFileLimit = 1 << 62

// fitMaxClients is the RESP connection cap a node applies: the configured
// one, lowered, as redis-server lowers its maxclients, when the open-file
// limit (limit, when known) leaves less room than that for clients; past
// such a room connections would fail at accept, and the node's other
// files with them. 0 (no cap) stays 0: the operator asked for none.
// reduced reports a lowering.
func fitMaxClients(configured int, limit uint64, known bool) (capped int, reduced bool) {
	if !known || configured == 0 || limit >= noFileLimit {
		return configured, false
	}
	if limit <= respReservedFiles+1 {
		return 1, configured > 1
	}
	// Compared as uint64 first: room fits an int only once it is below
	// configured.
	if room := limit - respReservedFiles; uint64(configured) > room {
		return int(room), true
	}
	return configured, false
}
