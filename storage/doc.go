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
//	ACTOR                     "<actor> <counter>\n": the vclock actor dots are minted under, renewed
//	                          after an unclean shutdown, and its minting counter as of the last
//	                          clean Close (a file holding only the actor reads as counter 0)
//	CLEAN                     JSON LogEnd where a clean Close left the WAL; present only between
//	                          that Close and the end of the next Open's recovery (empty from older
//	                          builds); a WAL that ends earlier is refused as corrupt
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
// A WAL record's payload is the msgpack array [key bin, siblings, recv
// int], where siblings is the encoding of vclock.AppendSiblings (nil for a
// deleted key) and recv is the key's receipt time: Unix nanoseconds, by
// Config.Now, when its set last changed on this node. Integers are written
// in their smallest msgpack form (the form this log has always used; the
// one codec of sibling sets is vclock's, shared with contexts, hint
// records and every replica message) and read in any width. Records written
// before receipt times existed are [key bin, siblings]; they are still
// read, and get the engine's open time as receipt time (never earlier than
// the truth, so tombstone GC can only be late).
//
// # Snapshot file
//
//	"RKVSNAP1"
//	record [1, node_id, incarnation, start_segment, created_unix_nano]
//	record [key, siblings, recv]   one per key (older files: [key, siblings])
//	record [entry_count]     trailer; must be the last bytes of the file
//
// A snapshot starts by rolling the WAL to a new segment S, then walks the
// index partition by partition while writes continue, writes snap-S.snap
// through a temp file, fsync, rename and directory fsync. Every key is
// written, tombstones included (Collect forgets them, see below). The two
// newest snapshots are kept, and the
// WAL from the older one's start, so that a damaged newest snapshot can be
// skipped for the previous one.
//
// # Anti-entropy hash tree
//
// Each partition has a hash tree of TreeLevels levels (root, TreeFanout
// inner nodes, TreeLeaves leaves). Key k lies in leaf Leaf(k); a leaf's
// hash is the XOR of Digest(key, set) of its keys and an inner node's the
// XOR of its children. Digest covers the key and each version's dot and
// tombstone flag, not contexts. Every change of a key's set XORs the
// change of its digest into its leaf and the leaf's ancestors, under the
// partition's lock. The tree is not persisted: recovery rebuilds it.
// TreeHashes and LeafKeys are what replicas compare.
//
// # Tombstone GC and the minting counter
//
// Collect forgets a key whose versions are all tombstones once it was
// received more than Config.TombstoneGC ago and before the partition's
// MarkSynced time (anti-entropy saw every replica in sync), both by this
// node's clock; under the same rule it prunes context entries of actors
// with no version in the set (vclock.PruneContexts) of other keys. The
// grace applies to pruning too: a hint still queued for a replica could
// otherwise bring back a version the pruned context obsoleted.
// Each change is an ordinary WAL record made only if the key is still as
// the pass read it. The MarkSynced time is kept in memory only.
//
// Forgetting a key this node's actor wrote to must not let the actor mint
// a dot of it again (replicas still holding the tombstone would discard
// that write). So a coordinator numbers its dots from one counter per
// actor, ReserveCounter, passed to vclock.Mint as Write.MinCounter; Collect
// raises the counter past every counter of the actor in what it drops or
// prunes; the counter is saved in ACTOR by a clean Close and on Open is
// the maximum of that and every counter of the actor in the recovered
// sets. After an unclean shutdown the actor is renewed and its counter
// starts at 0.
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
