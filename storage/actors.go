package storage

import (
	"strings"
	"sync"
	"sync/atomic"
)

// actorTable numbers the actors of the process's blobs. Entries are never
// removed or changed, so a blob's references stay valid for the life of
// the process; it is bounded, and actors beyond the bounds are written
// inline in each blob that names them. Only versions' dots add actors:
// an actor that only contexts name is written inline unless it is already
// in the table. Contexts come from clients and may name any actor, while
// a version's dot is minted by a coordinator, so junk contexts cannot fill
// the table for the life of the process (Collect prunes them from the
// sets).
//
// Lookups, one per dot of every write, take no lock: ids is a map that is
// never modified once published. Actors added since it was published wait
// in pending, under mu, until it is rebuilt with them (publish).
type actorTable struct {
	maxActors int // bounds: at most maxActors actors of maxBytes in all
	maxBytes  int

	ids      atomic.Pointer[map[string]uint32] // read-only once published
	npending atomic.Int32                      // len(pending), so a miss skips mu when none are pending

	mu      sync.Mutex
	pending map[string]uint32 // guarded by mu: added, not yet in ids
	misses  int               // guarded by mu: lookups served from pending since ids was published
	bytes   int               // guarded by mu: total length of the actors in the table

	// list is the table by number. Writers append under mu and publish
	// the longer slice; readers load it without a lock: the entries a
	// loaded slice covers were written before it was published.
	list atomic.Pointer[[]string]
}

// Bounds of the process's actor table: an actor is a node incarnation, so
// a real cluster names a few hundred at most; hostile peers minting actors
// at will cost at most this much memory, then inline actors.
const (
	maxTableActors     = 1 << 16
	maxTableActorBytes = 255
	maxTableBytes      = 4 << 20
)

// actors is the process's actor table, shared by every engine: blobs
// are decoded without a reference to their engine.
var actors = newActorTable(maxTableActors, maxTableBytes)

func newActorTable(maxActors, maxBytes int) *actorTable {
	return &actorTable{maxActors: maxActors, maxBytes: maxBytes}
}

// ref returns actor's number in the table; add: adding it if it is not
// there and there is room.
func (t *actorTable) ref(actor string, add bool) (uint32, bool) {
	if p := t.ids.Load(); p != nil {
		if i, ok := (*p)[actor]; ok {
			return i, true
		}
	}
	if len(actor) > maxTableActorBytes || !add && t.npending.Load() == 0 {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.ids.Load(); p != nil { // published since the lookup above
		if i, ok := (*p)[actor]; ok {
			return i, true
		}
	}
	if i, ok := t.pending[actor]; ok {
		t.misses++
		t.maybePublish()
		return i, true
	}
	list := t.table()
	if !add || len(list) >= t.maxActors || t.bytes+len(actor) > t.maxBytes {
		return 0, false
	}
	actor = strings.Clone(actor) // not a substring of a larger buffer
	list = append(list, actor)
	i := uint32(len(list) - 1)
	t.list.Store(&list)
	if t.pending == nil {
		t.pending = make(map[string]uint32)
	}
	t.pending[actor] = i
	t.npending.Store(int32(len(t.pending)))
	t.bytes += len(actor)
	t.maybePublish()
	return i, true
}

// maybePublish rebuilds ids with the pending actors once the lookups and
// additions that took mu since the last rebuild are an eighth of the
// table: a rebuild copies the table, so its cost is spread over at least
// that many of them, and an actor in use leaves pending soon. mu must be
// held.
func (t *actorTable) maybePublish() {
	var old map[string]uint32
	if p := t.ids.Load(); p != nil {
		old = *p
	}
	if t.misses+len(t.pending) < len(old)/8+1 {
		return
	}
	ids := make(map[string]uint32, len(old)+len(t.pending))
	for a, i := range old {
		ids[a] = i
	}
	for a, i := range t.pending {
		ids[a] = i
	}
	t.ids.Store(&ids)
	clear(t.pending)
	t.npending.Store(0)
	t.misses = 0
}

// table returns the actors by number.
func (t *actorTable) table() []string {
	if p := t.list.Load(); p != nil {
		return *p
	}
	return nil
}

// ActorTableStats is the fill of the process's table of actors (every
// engine in the process shares it).
type ActorTableStats struct {
	Actors, Bytes       int // in the table
	MaxActors, MaxBytes int // its bounds; past them actors are written inline
}

// stats returns the table's fill.
func (t *actorTable) stats() ActorTableStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return ActorTableStats{Actors: len(t.table()), Bytes: t.bytes, MaxActors: t.maxActors, MaxBytes: t.maxBytes}
}
