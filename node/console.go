package node

import (
	"net/http"

	"github.com/ringkv/ringkv/client"
	"github.com/ringkv/ringkv/node/ui"
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

// whoami serves GET /v1/whoami. Whatever was presented, the answer is 200
// with a role, none when the token is missing or not valid. No token is
// not a refusal: the console asks before it has one. A malformed header
// or an unknown token is counted and logged as a refusal, as on every
// other route, so that guessing tokens here shows in the same metric.
func (a *httpAPI) whoami(w http.ResponseWriter, r *http.Request) {
	if a.gate == nil || a.gate.auth == nil {
		writeJSON(w, http.StatusOK, client.WhoAmI{Role: RoleAdmin.String()})
		return
	}
	out := client.WhoAmI{Auth: true, Role: RoleNone.String()}
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
func (a *httpAPI) ringPartitions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.admin.Partitions())
}

// versions serves GET /v1/versions?key=K[&r=R]: a quorum read like
// GET /v1/kv/K (with its read repair), answered as JSON whatever the
// number of versions.
func (a *httpAPI) versions(w http.ResponseWriter, r *http.Request) {
	vals, err := queryParams(r, "key", "r")
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	if !vals.Has("key") {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: "parameter key is required"})
		return
	}
	key := []byte(vals.Get("key"))
	if err := checkKey(key, a.limits); err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	rq, err := a.quorumParam(vals, "r")
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}
	place := a.admin.Placement(key)
	res, err := a.kv.Get(r.Context(), key, rq)
	if err != nil {
		a.backendError(w, "versions", err)
		return
	}
	writeJSON(w, http.StatusOK, client.Versions{Placement: place, Versions: versionsBody(res.Siblings),
		Context: vclock.EncodeContextString(res.Context())})
}

// versionsBody renders a sibling set, tombstones included.
func versionsBody(s vclock.Siblings) []client.Version {
	out := make([]client.Version, len(s))
	for i, v := range s {
		out[i] = client.Version{Sibling: siblingJSON(v), Deleted: v.Tombstone}
	}
	return out
}
