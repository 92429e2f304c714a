package node

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/ringkv/ringkv/client"
)

// bearerRealm is the WWW-Authenticate challenge of a 401.
const bearerRealm = `Bearer realm="ringkv"`

// bearer extracts the token of an "Authorization: Bearer <token>" header.
// reason is empty on success, else refuseNoToken or refuseMalformed. The
// header is bounded before anything is done with it.
func bearer(h http.Header) (token string, reason string) {
	vals := h.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", refuseNoToken
	case len(vals) > 1 || len(vals[0]) > maxTokenBytes+len("Bearer "):
		return "", refuseMalformed
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", refuseMalformed
	}
	return tok, ""
}

// authorize wraps h so that it runs only for a peer that protected mode
// lets in and that presents a token of role need or above. A nil gate
// (tests of the routes themselves) serves everyone.
func (a *httpAPI) authorize(need Role, h http.HandlerFunc) http.HandlerFunc {
	g := a.gate
	if g == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if g.refusesPeer("http", r.RemoteAddr) {
			writeError(w, http.StatusForbidden, client.ErrorBody{Error: protectedText})
			return
		}
		if g.auth == nil || need == RoleNone {
			h(w, r)
			return
		}
		tok, reason := bearer(r.Header)
		if reason != "" {
			g.refused("http", reason, r.RemoteAddr, "")
			unauthorized(w, reason)
			return
		}
		role, name := g.authenticate("", []byte(tok))
		if role == RoleNone {
			g.refused("http", refuseBadToken, r.RemoteAddr, "")
			unauthorized(w, refuseBadToken)
			return
		}
		if role < need {
			g.refused("http", refuseRole, r.RemoteAddr, name)
			writeError(w, http.StatusForbidden, client.ErrorBody{Error: "token " + name + " has role " + role.String() + "; this request needs " + need.String()})
			return
		}
		h(w, r)
	}
}

// unauthorized answers 401 with a Bearer challenge.
func unauthorized(w http.ResponseWriter, reason string) {
	msg := "this node requires a token: send Authorization: Bearer <token> (ringkv CLI: --token or RINGKV_TOKEN)"
	challenge := bearerRealm // RFC 6750: no error code when no credentials came
	switch reason {
	case refuseMalformed:
		msg = fmt.Sprintf("the Authorization header must be one \"Bearer <token>\" with a token of at most %d bytes", maxTokenBytes)
		challenge += `, error="invalid_request"`
	case refuseBadToken:
		msg = "the token is not valid on this node"
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, http.StatusUnauthorized, client.ErrorBody{Error: msg})
}
