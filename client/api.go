package client

// The JSON bodies of the HTTP API: the server (package node) writes these
// types and this package reads them, so the two cannot drift. Field names
// and JSON names are the wire format documented in docs/http-api.md; a
// golden test in node holds the admin answers to it.

// ContextHeader carries the opaque causal context (base64url) on requests
// and responses.
const ContextHeader = "X-Ringkv-Context"

// ErrorBody is the JSON body of every 4xx/5xx answer.
type ErrorBody struct {
	// Error is a human-readable message that names the limit or cause.
	Error string `json:"error"`
	// Need and Got are set on every 503: replicas required and replicas
	// that answered (got is present even when 0).
	Need int  `json:"need,omitempty"`
	Got  *int `json:"got,omitempty"`
	// Failures maps a replica that did not answer to why, on 503. A
	// replica that liveness reported down was never asked.
	Failures map[string]string `json:"failures,omitempty"`
	// Pending names, on 503, replicas that were asked and had not answered
	// when the request gave up.
	Pending []string `json:"pending,omitempty"`
	// Unavailable is true on a 503 refused before anything was asked or
	// written: liveness said only Reachable replicas could answer.
	Unavailable bool `json:"unavailable,omitempty"`
	Reachable   int  `json:"reachable,omitempty"`
}

// SiblingsBody is the 300 Multiple Choices answer of GET /v1/kv/{key}.
type SiblingsBody struct {
	// Siblings are the concurrent live versions.
	Siblings []Sibling `json:"siblings"`
	// Context resolves all of them when passed back on a PUT.
	Context string `json:"context"`
}

// Sibling is one live version.
type Sibling struct {
	// Value is base64 (standard encoding) of the stored bytes.
	Value []byte `json:"value"`
	// WallTime is the coordinator's clock at the write, RFC 3339 with nanoseconds.
	WallTime string `json:"wall_time"`
	// Dot names the write as actor:counter.
	Dot string `json:"dot"`
}

// Member is one row of GET /v1/members.
type Member struct {
	Name   string `json:"name"`
	Gossip string `json:"gossip"`
	HTTP   string `json:"http"`
	RESP   string `json:"resp"`
	RPC    string `json:"rpc"`
	// Zone is the zone the member declares; absent when none.
	Zone     string `json:"zone,omitempty"`
	Liveness string `json:"liveness"` // alive, suspect, dead
	// Status is the node's ring status: joining (wants in, its
	// partitions are being copied to it), joined, leaving, left or
	// removed.
	Status string `json:"status"`
	// PendingHints and PendingHintBytes are the hints this node (the one
	// answering) holds for the member.
	PendingHints     int64 `json:"pending_hints"`
	PendingHintBytes int64 `json:"pending_hint_bytes"`
}

// OKBody answers admin actions that succeeded.
type OKBody struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// NodeStats is the answer of GET /v1/stats: what this node's storage engine
// holds. Nodes ask each other for it over the internal RPC
// to fill the keys and bytes columns
// of GET /v1/ring; its JSON names are also its field names there.
type NodeStats struct {
	Node  string `json:"node"`
	Keys  int64  `json:"keys"`
	Bytes int64  `json:"bytes"`
	// Plan is the plan this node follows.
	Plan *Plan `json:"plan,omitempty"`
	// Transfer is this node's progress as a new replica of the plan's
	// partitions.
	Transfer *Transfer `json:"transfer,omitempty"`
	// DroppedPartitions counts partitions this node dropped after it
	// stopped replicating them, since it started.
	DroppedPartitions int64 `json:"dropped_partitions"`
	// AAE is this node's anti-entropy totals since it started; absent when
	// anti-entropy is off.
	AAE *AAETotals `json:"aae,omitempty"`
	// Hints is this node's hinted-handoff totals since it started.
	Hints *HintTotals `json:"hints,omitempty"`
}

// AAETotals is a node's anti-entropy totals (GET /v1/stats).
type AAETotals struct {
	// Exchanges counts exchanges with another replica of a partition,
	// failed ones included; ExchangeFailures those that failed.
	Exchanges        uint64 `json:"exchanges"`
	ExchangeFailures uint64 `json:"exchange_failures"`
	// KeysRepaired and BytesRepaired count the keys (and their sets'
	// bytes) that exchanges changed, here or on the peer.
	KeysRepaired  uint64 `json:"keys_repaired"`
	BytesRepaired uint64 `json:"bytes_repaired"`
	// Partitions is how many partitions this node replicates;
	// PartitionsSynced how many of them were seen in sync on every replica
	// at least once since it started; PartitionsInSync how many were in
	// sync at their last exchanges.
	Partitions       int `json:"partitions"`
	PartitionsSynced int `json:"partitions_synced"`
	PartitionsInSync int `json:"partitions_in_sync"`
	// LastFullPass is when the last pass in which every exchange completed
	// ended (RFC 3339), "" before the first.
	LastFullPass string `json:"last_full_pass"`
	// TombstonesCollected and ContextsPruned count what collection after a
	// sync dropped: tombstone-only keys, and keys whose contexts lost
	// entries no version needs.
	TombstonesCollected int64 `json:"tombstones_collected"`
	ContextsPruned      int64 `json:"contexts_pruned"`
}

// HintTotals is a node's hinted-handoff totals (GET /v1/stats).
type HintTotals struct {
	// Pending is the hints this node holds for other nodes now.
	Pending int64 `json:"pending"`
	// Stored and Delivered count hints stored here and delivered from here.
	Stored    uint64 `json:"stored"`
	Delivered uint64 `json:"delivered"`
	// KeptByCoordinator counts copies of writes this node coordinated that
	// it kept itself for a down replica because no stand-in was free.
	KeptByCoordinator uint64 `json:"kept_by_coordinator"`
	// DroppedExpired counts hints dropped for being older than the
	// tombstone grace.
	DroppedExpired uint64 `json:"dropped_expired"`
}

// AAEPartition is one partition's anti-entropy state on this node
// (GET /v1/aae).
type AAEPartition struct {
	Partition int      `json:"partition"`
	Replicas  []string `json:"replicas"`
	// LastFull is when the last round in which every exchange of the
	// partition completed began; LastExchange when the last exchange
	// began; Synced the time before which everything this node received
	// is known to be on every replica. RFC 3339, "" for never.
	LastFull     string `json:"last_full"`
	LastExchange string `json:"last_exchange"`
	Synced       string `json:"synced"`
	// KeysRepaired and BytesRepaired are totals since the node started.
	KeysRepaired  uint64 `json:"keys_repaired"`
	BytesRepaired uint64 `json:"bytes_repaired"`
	// InSync is whether the trees matched at the last exchanges.
	InSync    bool   `json:"in_sync"`
	LastError string `json:"last_error,omitempty"`
}

// Plan is a plan: the serving members and, during a membership
// change, the members the data is moving to.
type Plan struct {
	Epoch   uint64   `json:"epoch"`
	Version uint64   `json:"version"`
	Members []string `json:"members"`
	Target  []string `json:"target,omitempty"`
}

// Transfer is a node's partition-transfer progress for the plan of
// Epoch: partitions it must pull (pending, in flight, done), keys and
// bytes received since it started (bytes of sets that changed its store in
// new_bytes), the estimated bytes left, its rate limit, and the keys and
// bytes it sent as a source.
type Transfer struct {
	Epoch     uint64  `json:"epoch"`
	Pending   int     `json:"pending"`
	InFlight  int     `json:"in_flight"`
	Done      int     `json:"done"`
	Keys      int64   `json:"keys"`
	Bytes     int64   `json:"bytes"`
	NewBytes  int64   `json:"new_bytes"`
	BytesLeft int64   `json:"bytes_left"`
	RateBytes float64 `json:"rate_bytes"`
	Failures  int64   `json:"failures"`
	// KeysSent and BytesSent count what this node served to other nodes'
	// pulls as a source, since it started.
	KeysSent  int64 `json:"keys_sent"`
	BytesSent int64 `json:"bytes_sent"`
}

// Ring is the answer of GET /v1/ring without key or what_if: how the
// serving ring spreads the key space, the plan, and each node's transfer
// progress (nodes that answered; keyed by node name).
type Ring struct {
	// Partitions, ReplicationFactor, Load and VirtualNodes are the ring's
	// configuration.
	Partitions        int     `json:"partitions"`
	ReplicationFactor int     `json:"replication_factor"`
	Load              float64 `json:"load"`
	VirtualNodes      int     `json:"virtual_nodes"`
	// Replicas is the number of replicas each partition actually has,
	// min(ReplicationFactor, members).
	Replicas int `json:"replicas"`
	// Degraded is true when there are fewer members than ReplicationFactor.
	Degraded bool `json:"degraded"`
	// Fingerprint is equal on nodes that agree on the ring.
	Fingerprint string `json:"fingerprint"`
	// Nodes has one entry per member, sorted by name.
	Nodes []RingNode `json:"nodes"`
	// ZoneLimit is the most replicas of one partition a zone should hold,
	// ceil(Replicas / zones), when some member has a zone; 0 (absent)
	// otherwise.
	ZoneLimit int `json:"zone_limit,omitempty"`
	// Zones has one entry per zone, sorted by name, when some member has a
	// zone; absent otherwise.
	Zones []RingZone `json:"zones,omitempty"`
	// Warnings explains, one sentence each, how the zones spread replicas
	// unevenly; absent when they do not.
	Warnings []string `json:"warnings,omitempty"`
	// Plan is the plan the answering node follows, absent when it has none.
	Plan *Plan `json:"plan,omitempty"`
	// Transfers is each node's partition-transfer progress.
	Transfers map[string]Transfer `json:"transfers"`
	// AAE is each answering node's anti-entropy totals (nodes with
	// anti-entropy on; keyed by node name).
	AAE map[string]AAETotals `json:"aae"`
}

// RingZone is how many replicas one zone holds.
type RingZone struct {
	// Zone is the zone name; "" for the members that declare none.
	Zone string `json:"zone"`
	// Nodes is the number of members in the zone.
	Nodes int `json:"nodes"`
	// Replicated is the number of replica slots (partition, member) the
	// zone's members hold; ReplicaShare is that over all slots.
	Replicated   int     `json:"partitions_replicated"`
	ReplicaShare float64 `json:"replica_share"`
	// MaxReplicas is the most replicas of one partition the zone holds:
	// losing the whole zone loses that many copies of some partition.
	MaxReplicas int `json:"max_replicas"`
	// OverLimit counts the partitions of which the zone holds more than
	// ZoneLimit replicas.
	OverLimit int `json:"partitions_over_limit"`
}

// RingNode is one member's part of the ring.
type RingNode struct {
	// Node is the member name.
	Node string `json:"node"`
	// Owned is the number of partitions the node owns (heads the
	// preference list of).
	Owned int `json:"partitions_owned"`
	// Replicated is the number of partitions whose preference list
	// includes the node, owned ones included: what it stores.
	Replicated int `json:"partitions_replicated"`
	// KeySpaceShare is Owned / Partitions.
	KeySpaceShare float64 `json:"key_space_share"`
	// ReplicaShare is the node's fraction of all stored replicas.
	ReplicaShare float64 `json:"replica_share"`
	// HasStats is true when the node reported its totals; Keys and Bytes
	// are meaningful only then.
	HasStats bool `json:"has_stats"`
	// Zone is the member's zone; "" (absent) when it has none.
	Zone  string `json:"zone,omitempty"`
	Keys  int64  `json:"keys"`
	Bytes int64  `json:"bytes"`
}

// KeyPlacement is the answer of GET /v1/ring?key=K: where one key lives.
type KeyPlacement struct {
	// Partition is the key's partition.
	Partition int `json:"partition"`
	// Replicas is the preference list, owner first.
	Replicas []string `json:"replicas"`
	// Fallbacks are the hinted-handoff stand-ins, in the order they are used.
	Fallbacks []string `json:"fallbacks"`
	// ReplicaZones holds the zone of each replica, in Replicas' order,
	// when some member has a zone; absent otherwise.
	ReplicaZones []string `json:"replica_zones,omitempty"`
}

// WhatIf is the answer of GET /v1/ring?what_if=add:NAME or remove:NAME:
// what would change, without changing anything.
type WhatIf struct {
	// Op is "add" or "remove"; Node the node added or removed.
	Op   string `json:"op"`
	Node string `json:"node,omitempty"`
	// Zone is the added node's zone; empty when it has none.
	Zone string `json:"zone,omitempty"`
	// MembersBefore and MembersAfter count the members of the two rings.
	MembersBefore int `json:"members_before"`
	MembersAfter  int `json:"members_after"`
	// ChangedPartitions lists, ascending, the partitions whose replica set
	// changes.
	ChangedPartitions []int `json:"changed_partitions"`
	// Moves details each changed partition.
	Moves []PartitionMove `json:"moves"`
	// TotalSlots is Partitions x the larger replica count of the two rings;
	// MovedSlots the replica slots that gain a new holder.
	TotalSlots int `json:"total_slots"`
	MovedSlots int `json:"moved_slots"`
	// MovedFraction is MovedSlots / TotalSlots; OptimalFraction the least
	// any balanced placement could reach.
	MovedFraction   float64 `json:"moved_fraction"`
	OptimalFraction float64 `json:"optimal_fraction"`
	// Shares gives every node of either ring its load before and after.
	Shares []ShareChange `json:"shares"`
	// HasBytes is true when MovedBytes, an estimate of the bytes streamed
	// to new holders, is filled.
	HasBytes   bool  `json:"has_bytes"`
	MovedBytes int64 `json:"moved_bytes"`
}

// PartitionMove is one partition whose replica set would change.
type PartitionMove struct {
	Partition int `json:"partition"`
	// Before and After are the preference lists of the two rings.
	Before []string `json:"before"`
	After  []string `json:"after"`
	// Added are the new holders that must receive the partition; Dropped
	// the old holders that drop it once the new ones confirmed.
	Added   []string `json:"added"`
	Dropped []string `json:"dropped"`
}

// ShareChange is one node's load in the two rings; a node absent from a
// ring has zeros there.
type ShareChange struct {
	Node             string  `json:"node"`
	OwnedBefore      int     `json:"owned_before"`
	OwnedAfter       int     `json:"owned_after"`
	ReplicatedBefore int     `json:"replicated_before"`
	ReplicatedAfter  int     `json:"replicated_after"`
	ShareBefore      float64 `json:"share_before"`
	ShareAfter       float64 `json:"share_after"`
}

// Partitions is the answer of GET /v1/ring/partitions: every partition's
// replicas on the serving ring, owner first.
type Partitions struct {
	// Fingerprint is the ring's fingerprint, as in GET /v1/ring.
	Fingerprint string `json:"fingerprint"`
	// Members are the ring's members, sorted by name.
	Members []string `json:"members"`
	// Partitions[p] is partition p's preference list, owner first.
	Partitions [][]string `json:"partitions"`
}

// Versions is the answer of GET /v1/versions?key=K: where the key lives
// and every version a read at quorum found, tombstones included.
type Versions struct {
	// Placement is the key's partition, replicas and fallbacks, as
	// GET /v1/ring?key=K gives them.
	Placement KeyPlacement `json:"placement"`
	// Versions are the versions the read merged: live siblings and
	// tombstones not yet superseded.
	Versions []Version `json:"versions"`
	// Context supersedes every version when passed back on a PUT.
	Context string `json:"context"`
}

// Version is one version of a key.
type Version struct {
	Sibling
	// Deleted marks a tombstone (its value is empty).
	Deleted bool `json:"deleted"`
}

// WhoAmI is the answer of GET /v1/whoami: what the presented token may do
// on the answering node.
type WhoAmI struct {
	// Auth is whether the node asks for tokens. Without tokens every
	// caller it serves has every role.
	Auth bool `json:"auth"`
	// Role is the presented token's role: none, read, read-write or admin.
	Role string `json:"role"`
	// Name is the token's name; "" without one.
	Name string `json:"name,omitempty"`
}
