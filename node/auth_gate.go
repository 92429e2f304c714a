package node

import (
	"log/slog"
	"net"
	"time"
)

// The refusal reasons, the reason label of metricAuthRefused and the
// reason attribute of the refusal log lines.
const (
	refuseProtected = "protected_mode" // protected mode: a non-loopback peer and no tokens
	refuseNoToken   = "no_token"       // a request without credentials
	refuseMalformed = "malformed"      // an Authorization header that is not "Bearer <token>", or too long
	refuseBadToken  = "unknown_token"  // a token (or user and token) that matches none configured
	refuseRole      = "forbidden"      // a valid token whose role is too small
	refuseCrossSite = "cross_site"     // a browser's state-changing request from a page of another origin (HTTP only)
)

// refusalReasons are every reason, exported at 0 from the start.
var refusalReasons = []string{refuseProtected, refuseNoToken, refuseMalformed, refuseBadToken, refuseRole, refuseCrossSite}

// protectedText is what protected mode answers, on HTTP and RESP alike.
const protectedText = "ringkv is running in protected mode: this listener is on a non-loopback address and no auth.tokens are configured, so only loopback clients are served. " +
	"Configure auth.tokens (see docs/security.md) and restart, or, if every client that can reach this port may read, write and change the cluster, set security.protected_mode: false"

// refusalLogInterval is how often one refusal reason may be logged.
const refusalLogInterval = time.Minute

// gate decides who is served on one listener: protected mode first, then
// tokens and roles. It is shared by every request on the listener and is
// read-only after newGate, except for its metrics and log.
type gate struct {
	// auth checks tokens; nil when no token is configured (authentication
	// off: every request has every role, unless protected mode refuses it).
	auth *authenticator
	// protected is whether protected mode refuses non-loopback peers on
	// this listener: see protectedMode.
	protected bool
	// loopbackPeer reports whether a peer address (host:port, as
	// net/http's RemoteAddr) is on loopback. A field so that tests, which
	// can only reach loopback, can play a remote peer.
	loopbackPeer func(remote string) bool
	metrics      *metrics
	refusals     *RateLog
}

// newGate builds the gate of a listener bound at listenAddr.
func newGate(auth *authenticator, protectedModeOn bool, listenAddr string, m *metrics, log *slog.Logger) *gate {
	return &gate{
		auth:         auth,
		protected:    protectedMode(protectedModeOn, auth != nil, listenAddr),
		loopbackPeer: isLoopbackPeer,
		metrics:      m,
		refusals:     NewRateLog(log, slog.LevelWarn, "client refused", refusalLogInterval, nil),
	}
}

// protectedMode reports whether protected mode refuses non-loopback peers
// on a listener bound at listenAddr: security.protected_mode is on, no
// token is configured, and the listener is reachable from elsewhere (a
// wildcard or any other non-loopback host).
func protectedMode(on, haveTokens bool, listenAddr string) bool {
	if !on || haveTokens {
		return false
	}
	host, _, err := net.SplitHostPort(listenAddr)
	return err != nil || !isLoopback(host)
}

// isLoopbackPeer reports whether remote, a host:port, is a loopback IP.
// Anything else, unparsable included, is not.
func isLoopbackPeer(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// refusesPeer reports whether protected mode refuses remote; it counts
// and logs the refusal.
func (g *gate) refusesPeer(api, remote string) bool {
	if !g.protected || g.loopbackPeer(remote) {
		return false
	}
	g.refused(api, refuseProtected, remote, "")
	return true
}

// refused counts one refusal and logs it, rate-limited per reason.
// who is the token name when one was presented, else empty; it comes from
// the config, never from the client.
func (g *gate) refused(api, reason, remote, who string) {
	g.metrics.authRefused.WithLabelValues(api, reason).Inc()
	attrs := []any{"api", api, "remote", remote}
	if who != "" {
		attrs = append(attrs, "token", who)
	}
	g.refusals.Log(reason, attrs...)
}

// authenticate resolves a presented user and token to a role. It returns
// RoleAdmin when authentication is off, and the token's name; an unknown
// token (or one not of user) is RoleNone.
func (g *gate) authenticate(user string, token []byte) (Role, string) {
	if g.auth == nil {
		return RoleAdmin, ""
	}
	t, ok := g.auth.lookup(user, token)
	if !ok {
		return RoleNone, ""
	}
	return t.role, t.name
}
