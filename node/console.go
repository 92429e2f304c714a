package node

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/ringkv/ringkv/node/ui"
	"github.com/ringkv/ringkv/ring"
	"github.com/ringkv/ringkv/vclock"
)

// The web console (docs/console.md): the embedded files at /ui/ and the two
// read-only routes that give it what the other routes do not: every
// partition's replicas, to draw the ring, and a key's versions with their
// dots and wall times. None of it sits on the /v1/kv/ path.

// uiPrefix is where the console is served.
const uiPrefix = "/ui/"

// consoleRoutes adds the console and its routes to mux. The page itself
// needs no token (it holds no data; the token is typed into it), but
// protected mode still decides which peers may load it.
func (a *httpAPI) consoleRoutes(mux *http.ServeMux) {
	mux.Handle("GET /ui", a.authorize(RoleNone, http.RedirectHandler(uiPrefix, http.StatusMovedPermanently).ServeHTTP))
	mux.Handle("GET "+uiPrefix, a.authorize(RoleNone, ui.Handler(uiPrefix).ServeHTTP))
	mux.Handle("GET /v1/whoami", a.instrument("whoami", a.authorize(RoleNone, noQuery(a.whoami))))
	mux.Handle("GET /v1/ring/partitions", a.instrument("ring_partitions", a.authorize(RoleRead, noQuery(a.ringPartitions))))
	mux.Handle("GET /v1/versions", a.instrument("versions", a.authorize(RoleRead, a.gated(a.versions))))
}

// PartitionsJSON is the answer of GET /v1/ring/partitions: every partition's
// replicas on the serving ring, owner first.
type PartitionsJSON struct {
	// Fingerprint is the ring's fingerprint, as in GET /v1/ring.
	Fingerprint string `json:"fingerprint"`
	// Members are the ring's members, sorted by name.
	Members []string `json:"members"`
	// Partitions[p] is partition p's preference list, owner first.
	Partitions [][]string `json:"partitions"`
}

// VersionsJSON is the answer of GET /v1/versions?key=K: where the key lives
// and every version a read at quorum found, tombstones included.
type VersionsJSON struct {
	// Placement is the key's partition, replicas and fallbacks, as
	// GET /v1/ring?key=K gives them.
	Placement any `json:"placement"`
	// Versions are the versions the read merged: live siblings and
	// tombstones not yet superseded.
	Versions []VersionJSON `json:"versions"`
	// Context supersedes every version when passed back on a PUT.
	Context string `json:"context"`
}

// VersionJSON is one version of a key.
type VersionJSON struct {
	SiblingJSON
	// Deleted marks a tombstone (its value is empty).
	Deleted bool `json:"deleted"`
}

// WhoAmIJSON is the answer of GET /v1/whoami: what the presented token
// may do here, so that the console offers leave and remove only to those
// the node would let do them.
type WhoAmIJSON struct {
	// Auth is whether this node asks for tokens. Without tokens every
	// caller it serves has every role.
	Auth bool `json:"auth"`
	// Role is the presented token's role: none, read, read-write or admin.
	Role string `json:"role"`
	// Name is the token's name; "" without one.
	Name string `json:"name,omitempty"`
}

// whoami serves GET /v1/whoami. Whatever was presented, the answer is 200
// with a role, none when the token is missing or not valid. No token is
// not a refusal: the console asks before it has one. A malformed header
// or an unknown token is counted and logged as a refusal, as on every
// other route, so that guessing tokens here shows in the same metric.
func (a *httpAPI) whoami(w http.ResponseWriter, r *http.Request) {
	if a.gate == nil || a.gate.auth == nil {
		writeJSON(w, http.StatusOK, WhoAmIJSON{Role: RoleAdmin.String()})
		return
	}
	out := WhoAmIJSON{Auth: true, Role: RoleNone.String()}
	tok, reason := bearer(r.Header)
	switch reason {
	case "":
		role, name := a.gate.authenticate("", []byte(tok))
		out.Role, out.Name = role.String(), name
		if role == RoleNone {
			a.gate.refused("http", refuseBadToken, r.RemoteAddr, "")
		}
	case refuseMalformed:
		a.gate.refused("http", refuseMalformed, r.RemoteAddr, "")
	}
	writeJSON(w, http.StatusOK, out)
}

// ringPartitions serves GET /v1/ring/partitions.
func (a *httpAPI) ringPartitions(w http.ResponseWriter, r *http.Request) {
	v, err := a.admin.Ring(r.Context(), ringQuery{Partitions: true})
	if err != nil {
		a.adminError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// versions serves GET /v1/versions?key=K[&r=R]: a quorum read like
// GET /v1/kv/K (with its read repair), answered as JSON whatever the
// number of versions.
func (a *httpAPI) versions(w http.ResponseWriter, r *http.Request) {
	vals, err := queryParams(r, "key", "r")
	if err != nil {
		writeError(w, http.StatusBadRequest, ErrorBody{Error: err.Error()})
		return
	}
	if !vals.Has("key") {
		writeError(w, http.StatusBadRequest, ErrorBody{Error: "parameter key is required"})
		return
	}
	key := []byte(vals.Get("key"))
	if err := checkKey(key, a.limits); err != nil {
		writeError(w, http.StatusBadRequest, ErrorBody{Error: err.Error()})
		return
	}
	rq, err := a.quorumParam(vals, "r")
	if err != nil {
		writeError(w, http.StatusBadRequest, ErrorBody{Error: err.Error()})
		return
	}
	place, err := a.admin.Ring(r.Context(), ringQuery{Key: key, HasKey: true})
	if err != nil {
		a.adminError(w, err)
		return
	}
	res, err := a.kv.Get(r.Context(), key, rq)
	if err != nil {
		a.backendError(w, "versions", err)
		return
	}
	writeJSON(w, http.StatusOK, VersionsJSON{Placement: place, Versions: versionsJSON(res.Siblings),
		Context: vclock.EncodeContextString(res.Context)})
}

// versionsJSON renders a sibling set, tombstones included.
func versionsJSON(s vclock.Siblings) []VersionJSON {
	out := make([]VersionJSON, len(s))
	for i, v := range s {
		out[i] = VersionJSON{SiblingJSON: SiblingJSON{
			Value:    v.Value,
			WallTime: time.Unix(0, v.WallTime).UTC().Format(time.RFC3339Nano),
			Dot:      fmt.Sprintf("%s:%d", v.Dot.Actor, v.Dot.Counter),
		}, Deleted: v.Tombstone}
	}
	return out
}

// partitionsJSON lists every partition's replicas on r.
func partitionsJSON(r *ring.Ring) PartitionsJSON {
	n := r.Config().Partitions
	out := PartitionsJSON{Fingerprint: fmt.Sprintf("%016x", r.Fingerprint()), Members: r.Members(), Partitions: make([][]string, n)}
	for p := range n {
		out.Partitions[p] = slices.Clone(r.Replicas(p))
		if out.Partitions[p] == nil {
			out.Partitions[p] = []string{}
		}
	}
	return out
}
