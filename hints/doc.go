// Package hints implements hinted handoff: a node standing in for a replica
// that is down keeps that replica's writes as hints and delivers them when
// the replica is back.
//
// # Storing
//
// A Queue keeps one durable hint log per target node under Config.Dir
// (normally <dataDir>/hints/<target>/, the target's name escaped to
// [A-Za-z0-9_-] plus %XX), apart from the node's own data. The logs are
// storage.Log write-ahead logs: segmented, length-prefixed, CRC32C-checked
// records with group commit and the WAL's fsync policy. StoreHint returns
// only once its record is durable per that policy, so the replica
// coordinator can count the stand-in toward W.
//
// In memory each target has an index from key to the merge (vclock.Merge)
// of every set hinted for it and not yet delivered: 10,000 writes to one key
// are one pending hint. Every change to the index appends a record, under
// the target's lock, so the log's order is the index's order and Open
// rebuilds the index by replaying every log (a node killed with SIGKILL
// keeps its hints, and forgets what it had forgotten).
//
// Record payloads (inside storage's framing), told apart by their first
// byte:
//
//	version 1, hint:   msgpack array [key bin, siblings (vclock codec), since int64]
//	version 2, forget: msgpack array [key bin, since int64]
//
// A hint record holds the key's whole merged pending set; replay merges it
// into the key's entry (an entry removed by a forget record starts anew).
// since is the Unix-ns time the key's oldest pending hint was stored, for
// the delivery-lag metric and expiry. A forget record says the key left
// the index (acknowledged by its target, dropped as too large, or
// expired); replay deletes the key's entry, and its since (the removed
// entry's) is informational. A forget record has exactly two elements.
// Logs written before forget records existed hold only version 1 and
// replay as before; an older binary refuses version 2 (Open fails naming
// the record), so downgrading means deleting the hints directory, after
// which anti-entropy repairs what those hints carried. Payloads are
// checked with wire.CheckEncoding before decoding (fuzzed). The set is
// written and read by vclock's codec (through Siblings' msgpack methods),
// integers in their smallest form; records written before that, with 9-byte
// counters and times, still decode, and decoders of every width read both.
//
// # Limits
//
// A target that liveness (SetAlive, fed from gossip) has reported down for
// longer than Config.Window gets no new hints (ErrHintWindow), and a target
// whose pending bytes would pass Config.MaxBytesPerTarget gets no more
// (ErrHintCap), nor does a key whose merged pending set would pass
// vclock.MaxSiblings versions, which no peer would accept (ErrTooLarge;
// on replay, a record over it, written by an older binary, is skipped with
// a warning rather than failing Open). Such hints are counted and never
// stored; what they would
// have carried reaches the target through anti-entropy (or a read repair).
// The window starts at the first down report after the target was last
// seen alive, and is kept in memory only: after a restart it starts again
// from gossip's first report.
//
// # Expiry
//
// Hints cover short outages; anti-entropy repairs the rest. A key whose
// oldest pending hint was stored longer ago than Config.Grace (by
// Config.Clock) is dropped with a forget record, never delivered, and
// counted in Stats.DroppedExpired; one warning per sweep gives the count.
// Grace is the target's tombstone GC grace (storage.tombstone_gc): a hint
// delivered after the tombstone that superseded its value was collected
// would bring a deleted value back. The queue sweeps at Open (after
// replay), before every delivery round and on every retry tick (targets
// reported down included); a batch skips expired keys, a hint for a key
// whose pending set expired starts a new entry instead of merging into it,
// and a re-routed hint keeps its age. Window must not exceed Grace.
//
// # Delivery
//
// After Start, each target has one worker goroutine (so targets deliver in
// parallel, each one batch at a time). A round starts when SetAlive reports
// the target alive, every Config.RetryInterval, and once at start for hints
// recovered from disk; targets liveness reports down are skipped. A round
// sends the keys pending when it began, oldest first, in batches of at most
// BatchSize hints and BatchBytes bytes through the Deliverer, paced to
// DeliveryRate hints per second, and stops at the first transient failure
// (retried by the timer). A batch refused with ErrTooLarge is split, and a
// lone hint refused so is dropped (with a forget record) and counted, so it
// cannot block the hints behind it. An acknowledged key is dropped from the
// index unless it was hinted again meanwhile, with a forget record, and the
// round sends its next batch only once those records are durable (one
// wait per batch): an acknowledged hint is never resent after a restart. A
// key hinted after its acknowledgement gets a hint record after the forget
// record and is pending again. When a target's index is empty its log is
// rolled and the old segments deleted; a log that grows past twice its
// pending bytes (and a segment) is rewritten as one hint record per
// pending key and no forget record (a crash between the rewrite and the
// deletion of the old segments replays both, to the same index).
//
// # Removal
//
// RingChanged(members) re-routes the hints of any target no longer in the
// ring: each key's pending set is hinted to the key's current replicas
// (Config.Replicas) and delivered to them as usual, and the removed
// target's log is deleted. While that runs, StoreHint for the target
// fails with ErrClosed instead of opening a log in the directory being
// deleted. RingSnapshot is the guarded form for views that may be partial:
// only names listed in an earlier snapshot and missing from the latest
// have left. Hints stored for a node that has left, after its re-route
// (from a coordinator with an older ring), are re-routed on the retry
// timer.
package hints
