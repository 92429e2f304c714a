package storage

import "github.com/ringkv/ringkv/vclock"

// The minting counter. A coordinator numbering the dots it mints for every
// key from one counter (vclock.Write.MinCounter) never mints a dot twice,
// even for a key this node forgot (a collected tombstone, a pruned
// context): without it, Mint numbers a key's next dot from the local set's
// history, which forgetting resets, and replicas still holding the old
// tombstone would discard the new write as obsolete.
//
// The counter belongs to the current actor (Incarnation). It survives a
// clean Close in the ACTOR file; on Open it is the maximum of that value
// and every counter of the actor in the recovered sets. After an unclean
// shutdown the actor is renewed and the counter starts again from 0: no
// dot of the new actor exists anywhere.

// ReserveCounter returns a counter c >= atLeast that is strictly greater
// than every value it returned before under the current actor (and than
// every counter of the actor in any set this engine held since open). A
// coordinator calls it inside its Update fn with vclock.NextCounter and
// mints with the result as vclock.Write.MinCounter. Safe for concurrent
// use.
func (e *Engine) ReserveCounter(atLeast uint64) uint64 {
	for { // each failed CAS means another caller made progress
		cur := e.counter.Load()
		next := max(cur+1, atLeast)
		if e.counter.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// Counter returns the highest counter handed out or seen under the
// current actor: no genuine dot of the actor is above it, so a context or
// set that names a higher one was forged (or corrupted), and a coordinator
// refuses to mint from it instead of raising the counter for every key.
func (e *Engine) Counter() uint64 { return e.counter.Load() }

// raiseCounter makes the counter at least c. A c beyond
// vclock.CounterLimit is ignored: no write ever reserved it (that would
// take 2^53 writes), so it comes from a forged or damaged set, and taking
// it would push every later dot past what peers accept.
func (e *Engine) raiseCounter(c uint64) {
	if c > vclock.CounterLimit {
		return
	}
	for { // each failed CAS means another caller made progress
		cur := e.counter.Load()
		if c <= cur || e.counter.CompareAndSwap(cur, c) {
			return
		}
	}
}
