package node

// respReservedFiles are the open files a node keeps for everything but
// RESP clients (WAL segments, hint logs, snapshots, RPC, gossip and HTTP
// connections) when it fits limits.resp_max_clients to the process's
// open-file limit. Redis reserves 32 for its own; a node has more.
const respReservedFiles = 256

// fitMaxClients is the RESP connection cap a node applies: the configured
// one, lowered, as redis-server lowers its maxclients, when the open-file
// limit (limit, when known) leaves less room than that for clients; past
// such a room connections would fail at accept, and the node's other
// files with them. 0 (no cap) stays 0: the operator asked for none.
// reduced reports a lowering.
func fitMaxClients(configured int, limit uint64, known bool) (capped int, reduced bool) {
	if !known || configured == 0 || limit >= 1<<62 {
		return configured, false
	}
	room := 1
	if limit > respReservedFiles+1 {
		room = int(limit - respReservedFiles)
	}
	if configured > room {
		return room, true
	}
	return configured, false
}
