// Package storage is one node's storage engine: an in-memory index of
// sibling sets sharded by partition, made durable by a write-ahead log with
// group commit and by periodic snapshots, and recovered on open.
//
// # Writes
//
// Engine.Update (and Apply, which merges) takes the partition's lock,
// computes the key's new sibling set, queues its WAL record, installs it in
// the index and releases the lock; only then does it wait for the record to
// be durable. The WAL's single writer goroutine takes everything queued
// since its last write, writes it with one write call and, under
// FsyncAlways, one fsync (group commit), then wakes all the batch's
// writers. Reads never wait for disk; they may see a set whose record is
// still being fsynced (it is acknowledged to no one until it is durable).
//
// A key's records reach the WAL in the order its sets were installed, so
// replay installs each record's set in place of the key's previous one,
// which reproduces the index exactly (including deletions by Update).
//
// # Data directory
//
//	IDENTITY                  JSON {node_id, incarnation, created}; written once
//	ACTOR                     vclock actor dots are minted under; renewed after an unclean shutdown
//	CLEAN                     present only between a clean Close and the next Open
//	LOCK                      flock(2) held while open
//	wal/0000000000000001.wal  WAL segments, numbered from 1, contiguous
//	snap-000000000000000c.snap snapshot; the number is the WAL segment replay starts at
//	*.tmp                     interrupted writes, removed on open
//	*.damaged                 snapshots that failed their checks, set aside
//
// # Record framing (WAL segments and snapshot files)
//
//	uint32 LE  payload length n, 1..MaxRecordBytes
//	uint32 LE  CRC-32C (Castagnoli) of the 4 length bytes
//	uint32 LE  CRC-32C of the payload
//	n bytes    payload
//
// A WAL record's payload is the msgpack array [key bin, siblings], where
// siblings is the encoding of vclock.EncodeSiblings.
//
// # Snapshot file
//
//	"RKVSNAP1"
//	record [1, node_id, incarnation, start_segment, created_unix_nano]
//	record [key, siblings]   one per key
//	record [entry_count]     trailer; must be the last bytes of the file
//
// A snapshot starts by rolling the WAL to a new segment S, then walks the
// index partition by partition while writes continue, writes snap-S.snap
// through a temp file, fsync, rename and directory fsync. Keys whose
// versions are all tombstones older than Config.TombstoneGC are left out
// and dropped from the index, unless their causal history names the actor
// this engine mints under (forgetting it would let the next write reuse a
// dot that replicas still holding the tombstone treat as deleted); those
// wait until the actor is renewed. The two newest snapshots are kept, and the
// WAL from the older one's start, so that a damaged newest snapshot can be
// skipped for the previous one.
//
// # Recovery
//
// Open takes the newest snapshot that passes its checks (others are renamed
// *.damaged), then replays the WAL from its start segment. In the last WAL
// segment a torn tail, meaning a record cut short or a damaged record with
// nothing but zero bytes after it, is truncated with a warning. Any other
// damage, anywhere, refuses to open with a *CorruptError naming file and
// offset (errors.Is(err, ErrCorrupt)). Truncation of a sealed segment
// exactly at a record boundary is not detectable (segments carry no length
// of their predecessor); sealed segments are fsynced before the next one
// is created, so a crash cannot cause it.
//
// # Failures
//
// A failed write or fsync of the WAL fails the writes of its batch with
// ErrFailed, and the engine refuses every later write until reopened: after
// a failed fsync the kernel may have dropped dirty pages, so only re-reading
// the disk tells what is durable. The in-memory index may then hold sets
// whose records were not made durable; reads keep working.
package storage
