package node

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"
)

// Authentication on the Redis protocol, as Redis 6 does it with
// requirepass and ACL users: AUTH [user] token and HELLO 2 AUTH user
// token, where a user is a token's name or "default" (any token). Until a
// connection authenticates, every command but AUTH, HELLO and QUIT answers
// NOAUTH; a token's role then decides which commands it may run.

// The error replies, in Redis's words so that clients recognise them.
const (
	respNoAuth    = "NOAUTH Authentication required."
	respWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	respNoPasswd  = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	respHelloAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	respNoProto   = "NOPROTO unsupported protocol version (ringkv speaks RESP2 only)"
)

// respDefaultUser is Redis's name for "whoever holds the password": with
// it, any configured token is accepted.
const respDefaultUser = "default"

// respSession is a connection's authentication state, kept in the
// connection's context. Only the connection's goroutine touches it.
type respSession struct {
	id          int64
	peerChecked bool // protected mode has looked at the peer
	denied      bool // protected mode refused the peer
	// tok is the token the session logged in with (its role RoleNone
	// until AUTH succeeds), found in the tokens of generation gen: when
	// the tokens are reloaded, the session keeps its login only while a
	// token of that name and hash remains.
	tok authToken
	gen uint64
}

// session returns c's session, making it on the first command.
func (s *respServer) session(c redcon.Conn) *respSession {
	if sess, ok := c.Context().(*respSession); ok {
		return sess
	}
	sess := &respSession{id: s.sessionIDs.Add(1)}
	c.SetContext(sess)
	return sess
}

// respRole is the role a command needs. AUTH, HELLO and QUIT are for
// everyone; SET and DEL change data; the rest read data or describe the
// node, which a read token may do.
func respRole(cmd string) Role {
	switch cmd {
	case "auth", "hello", "quit":
		return RoleNone
	case "set", "del":
		return RoleReadWrite
	}
	return RoleRead
}

// admitPeer decides whether protected mode lets c's peer in at all. It
// runs before anything looks at the command, so that a refused peer gets
// DENIED whatever it sends (an unknown command or a wrong arity
// included). When it does not, it writes the refusal, closes c, as Redis
// does, and returns false.
func (s *respServer) admitPeer(c redcon.Conn) bool {
	g := s.gate
	if !g.protected {
		return true
	}
	sess := s.session(c)
	if !sess.peerChecked {
		sess.peerChecked = true
		sess.denied = g.refusesPeer("resp", c.RemoteAddr())
	}
	if sess.denied {
		c.WriteError("DENIED " + protectedText)
		_ = c.Close()
		return false
	}
	return true
}

// admit decides whether the command cmd (lower case) may run on c, whose
// peer admitPeer let in. When it may not, it writes the refusal and
// returns false.
func (s *respServer) admit(c redcon.Conn, cmd string) bool {
	g := s.gate
	if g.auth == nil {
		return true // nothing to check: keep the command path as it was
	}
	need := respRole(cmd)
	if need == RoleNone {
		return true
	}
	sess := s.session(c)
	s.recheck(c, sess)
	if sess.tok.role == RoleNone {
		g.refused("resp", refuseNoToken, c.RemoteAddr(), "")
		c.WriteError(respNoAuth)
		return false
	}
	if sess.tok.role < need {
		g.refused("resp", refuseRole, c.RemoteAddr(), sess.tok.name)
		c.WriteError(fmt.Sprintf("NOPERM User %s has no permissions to run the '%s' command", sess.tok.name, cmd))
		return false
	}
	return true
}

// login checks user and token and, when they match, makes them c's
// identity. A failed attempt leaves an earlier login in place, as Redis
// does.
func (s *respServer) login(c redcon.Conn, user, token []byte) error {
	g := s.gate
	sess := s.session(c)
	u := string(user)
	if u == respDefaultUser {
		u = ""
	}
	if len(token) > maxTokenBytes || len(user) > maxTokenBytes {
		g.refused("resp", refuseMalformed, c.RemoteAddr(), "")
		return errRESP(respWrongPass)
	}
	t, gen, ok := g.auth.lookupIn(u, token)
	if !ok {
		g.refused("resp", refuseBadToken, c.RemoteAddr(), "")
		return errRESP(respWrongPass)
	}
	sess.tok, sess.gen = t, gen
	return nil
}

// recheck looks the token sess logged in with up again when the tokens
// were reloaded since: the session takes the token's new role, or, when
// no token of that name and hash remains (revoked or replaced), is logged
// out, so that its commands answer NOAUTH until it logs in again. Only
// called with authentication on.
func (s *respServer) recheck(c redcon.Conn, sess *respSession) {
	if sess.tok.role == RoleNone || sess.gen == s.gate.auth.generation() {
		return
	}
	t, gen, ok := s.gate.auth.named(sess.tok.name)
	if ok && t.hash == sess.tok.hash {
		sess.tok, sess.gen = t, gen
		return
	}
	s.logoutLog.Log(sess.tok.name, "remote", c.RemoteAddr(), "token", sess.tok.name)
	sess.tok, sess.gen = authToken{}, 0
}

// auth serves AUTH token and AUTH user token.
func (s *respServer) auth(c redcon.Conn, a [][]byte) error {
	if s.gate == nil || s.gate.auth == nil {
		return errRESP(respNoPasswd)
	}
	var err error
	switch len(a) {
	case 2:
		err = s.login(c, nil, a[1])
	case 3:
		err = s.login(c, a[1], a[2])
	default:
		return errRESP("ERR syntax error")
	}
	if err != nil {
		return err
	}
	c.WriteString("OK")
	return nil
}

// hello serves HELLO [protover [AUTH user token] [SETNAME name]]. Only
// protocol 2 is spoken; HELLO 3 is refused as a Redis 5 client expects of
// a server that lacks RESP3, and clients then stay on RESP2.
func (s *respServer) hello(c redcon.Conn, a [][]byte) error {
	if len(a) > 1 {
		v, err := strconv.Atoi(string(a[1]))
		if err != nil || v < 0 {
			return errRESP("ERR Protocol version is not an integer or out of range")
		}
		if v != 2 {
			return errRESP(respNoProto)
		}
	}
	authed := false
	for i := 2; i < len(a); i++ {
		switch strings.ToLower(string(a[i])) {
		case "auth":
			if i+2 >= len(a) {
				return errRESP("ERR Syntax error in HELLO option 'auth'")
			}
			if s.gate == nil || s.gate.auth == nil {
				return errRESP(respNoPasswd)
			}
			if err := s.login(c, a[i+1], a[i+2]); err != nil {
				return err
			}
			authed = true
			i += 2
		case "setname":
			if i+1 >= len(a) {
				return errRESP("ERR Syntax error in HELLO option 'setname'")
			}
			i++
		default:
			return errRESP(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", truncate(a[i], 32)))
		}
	}
	sess := s.session(c)
	if !authed && s.gate != nil && s.gate.auth != nil {
		s.recheck(c, sess)
		if sess.tok.role == RoleNone {
			s.gate.refused("resp", refuseNoToken, c.RemoteAddr(), "")
			return errRESP(respHelloAuth)
		}
	}
	c.WriteArray(14)
	for _, kv := range [][2]string{{"server", "redis"}, {"version", "7.0.0"}} {
		c.WriteBulkString(kv[0])
		c.WriteBulkString(kv[1])
	}
	c.WriteBulkString("proto")
	c.WriteInt(2)
	c.WriteBulkString("id")
	c.WriteInt64(sess.id)
	for _, kv := range [][2]string{{"mode", "standalone"}, {"role", "master"}} {
		c.WriteBulkString(kv[0])
		c.WriteBulkString(kv[1])
	}
	c.WriteBulkString("modules")
	c.WriteArray(0)
	return nil
}
