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
// are one pending hint. Each record holds a key's merged pending set, so
// Open rebuilds the index by replaying every log (a node killed with
// SIGKILL keeps its hints); replaying a record that was already delivered
// only resends it, which the receiver's Merge makes harmless.
//
// Record payload (inside storage's framing):
//
//	byte    version (1)
//	msgpack array [key bin, siblings (vclock encoding), since int64]
//
// since is the Unix-ns time the key's oldest pending hint was stored, for
// the delivery-lag metric. Payloads are checked with vclock.CheckEncoding
// before decoding.
//
// # Limits
//
// A target that liveness (SetAlive, fed from gossip) has reported down for
// longer than Config.Window gets no new hints (ErrHintWindow), and a target
// whose pending bytes would pass Config.MaxBytesPerTarget gets no more
// (ErrHintCap). Such hints are counted and never stored; what they would
// have carried reaches the target only through read repair (there is no
// anti-entropy yet). The window starts at the first down report
// after the target was last seen alive, and is kept in memory only: after a
// restart it starts again from gossip's first report.
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
// lone hint refused so is dropped and counted, so it cannot block the
// hints behind it. An acknowledged key is dropped from the index unless it was
// hinted again meanwhile. When a target's index is empty its log is rolled
// and the old segments deleted; a log that grows past twice its pending
// bytes (and a segment) is rewritten as one record per key.
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
