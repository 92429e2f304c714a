package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// mlLogWriter turns memberlist's "[LEVEL] memberlist: text" lines into slog
// records. memberlist only takes a *log.Logger, so this writer is the seam.
//
// Most of memberlist's warnings and errors are caused by bytes from
// outside (one 3-byte datagram makes one "UDP packet too short" line), so
// a peer without the key, or anyone who reaches the gossip port, could
// otherwise fill the disk with logs. Each such line is counted, and at
// most one per reason per logEvery is written, with the number held back.
type mlLogWriter struct {
	log *slog.Logger
	// encrypted reports whether this node has gossip keys; read per line
	// because keys may be installed while running.
	encrypted func() bool
	// onSuspect, if set, is called with a node's name when our own probe
	// of it failed: memberlist has no callback for suspicion, only this
	// log line. It must not block (it runs on memberlist's probe path).
	onSuspect func(name string)
	now       func() time.Time
	limits    *reasonLimiter
	// warnings counts memberlist's Warn and Error lines, suppressed
	// those of them held back by limits.
	warnings, suppressed *atomic.Uint64
}

// newMemberlistLogger returns a *log.Logger for memberlist.Config.Logger.
func newMemberlistLogger(w *mlLogWriter) *log.Logger {
	w.log = w.log.With("source", "memberlist")
	if w.limits == nil {
		w.limits = newReasonLimiter()
	}
	if w.warnings == nil {
		w.warnings = new(atomic.Uint64)
	}
	if w.suppressed == nil {
		w.suppressed = new(atomic.Uint64)
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.encrypted == nil {
		w.encrypted = func() bool { return false }
	}
	return log.New(w, "", 0)
}

// suspectName extracts the node from memberlist's line
// "Suspect NAME has failed, no acks received" (state.go, probeNode).
func suspectName(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "Suspect ")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, " has failed, no acks received")
}

// keyMismatchHints are memberlist texts that mean a peer's traffic could not
// be authenticated with our keyring, or one side encrypts and the other
// does not: in practice, nodes configured with different gossip keys.
// Matched in lower case: memberlist's spelling varies between versions
// ("No installed keys..." before v0.5, "no installed keys..." since).
var keyMismatchHints = []string{
	"no installed keys could decrypt",
	"failed to decrypt",
	"decrypt packet failed",
	"remote state is encrypted and encryption is not configured",
	"encryption is configured but remote state is not encrypted",
	"message authentication failed",
}

// Write logs one line. It always reports success: a logging failure must
// not break memberlist.
func (w *mlLogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	level := slog.LevelInfo
	for _, lv := range []struct {
		tag   string
		level slog.Level
	}{
		{"[DEBUG]", slog.LevelDebug},
		{"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn},
		{"[ERR]", slog.LevelError},
		{"[ERROR]", slog.LevelError},
	} {
		if rest, ok := strings.CutPrefix(line, lv.tag); ok {
			level, line = lv.level, strings.TrimSpace(rest)
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if name, ok := suspectName(line); ok && w.onSuspect != nil {
		w.onSuspect(name)
	}
	msg, reason := "memberlist", ""
	lower := strings.ToLower(line)
	for _, h := range keyMismatchHints {
		if strings.Contains(lower, h) {
			msg = "gossip encryption key mismatch: a peer's traffic could not be decrypted; every node must use the same gossip key"
			if !w.encrypted() {
				msg = "gossip encryption mismatch: a peer sends encrypted gossip but this node has no key configured"
			}
			level, reason = slog.LevelError, keyMismatchReason
			break
		}
	}
	// memberlist is chatty at INFO about routine events; keep its lines
	// below our own lifecycle logs.
	if level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	if level < slog.LevelWarn {
		w.log.Log(context.Background(), level, msg, "detail", line)
		return len(p), nil
	}
	if reason == "" {
		reason = lineReason(line)
	}
	w.warnings.Add(1)
	reason, ok, held := w.limits.allow(reason, w.now())
	if !ok {
		w.suppressed.Add(1)
		return len(p), nil
	}
	w.log.Log(context.Background(), level, msg, "detail", line, "reason", reason, "messages_not_logged", held)
	return len(p), nil
}

// lineReason names the kind of a memberlist line for rate limiting: a
// known reason whose line goes on with a value from outside (fixedPrefixes),
// or its text up to the first part that varies (a colon before an error, a
// parenthesis or quote around a value, a digit, memberlist's " from="),
// at most maxReasonBytes. "Failed to decode ping request: EOF from=..."
// and "UDP packet too short (3 bytes) from=..." become "Failed to decode
// ping request" and "UDP packet too short".
func lineReason(line string) string {
	for _, p := range fixedPrefixes {
		if strings.HasPrefix(line, p) {
			return p
		}
	}
	end := len(line)
	if i := strings.Index(line, " from="); i >= 0 {
		end = i
	}
	if i := strings.IndexAny(line[:end], ":('\"0123456789"); i >= 0 {
		end = i
	}
	r := strings.TrimSpace(line[:min(end, maxReasonBytes)])
	if r == "" {
		return otherReason
	}
	return r
}

// fixedPrefixes are lines memberlist writes with a name from outside, not
// always quoted ("Got ping for unexpected node evil from=..." on the
// stream path): the prefix is the reason, so that one sender cannot make
// a reason per name.
var fixedPrefixes = []string{"Got ping for unexpected node"}

// keyMismatchReason is the reason of every decryption failure (see
// keyMismatchHints); otherReason that of lines past the table's bound.
const (
	keyMismatchReason = "key mismatch"
	otherReason       = "other"
)

// maxReasonBytes bounds a reason, and maxReasons the reasons tracked at
// once besides the fixed ones: names in lines come from outside, so
// while the table is full of reasons seen within logEvery, lines of a
// new reason share the reason "other".
const (
	maxReasonBytes = 64
	maxReasons     = 64
)

// reasonLimiter is one logLimiter per reason: fixed ones for the reasons
// known in advance, which the table of reasons taken from lines can never
// crowd out, and at most maxReasons more.
type reasonLimiter struct {
	fixed map[string]*logLimiter // read-only after newReasonLimiter
	mu    sync.Mutex             // guards by
	by    map[string]*logLimiter
}

func newReasonLimiter() *reasonLimiter {
	r := &reasonLimiter{fixed: map[string]*logLimiter{}, by: map[string]*logLimiter{}}
	for _, reason := range append([]string{keyMismatchReason, otherReason}, fixedPrefixes...) {
		r.fixed[reason] = &logLimiter{}
	}
	return r
}

// allow reports whether a line of reason may be logged at now, how many
// of that reason were held back since its last line, and the reason it
// was counted under (otherReason when the table is full).
func (r *reasonLimiter) allow(reason string, now time.Time) (string, bool, int) {
	l := r.fixed[reason]
	if l == nil {
		r.mu.Lock()
		l = r.by[reason]
		if l == nil && len(r.by) >= maxReasons {
			r.evictIdle(now)
		}
		switch {
		case l != nil:
		case len(r.by) < maxReasons:
			l = &logLimiter{}
			r.by[reason] = l
		default:
			reason, l = otherReason, r.fixed[otherReason]
		}
		r.mu.Unlock()
	}
	ok, held := l.allow(now)
	return reason, ok, held
}

// evictIdle drops the reasons whose last line is logEvery old or more:
// their next line would be written anyway, so forgetting them changes
// nothing but the count of lines held back since, which moves to "other"
// to stay counted. r.mu must be held; the table is at most maxReasons.
func (r *reasonLimiter) evictIdle(now time.Time) {
	for reason, l := range r.by {
		if held, idle := l.idle(now); idle {
			delete(r.by, reason)
			r.fixed[otherReason].addHeld(held)
		}
	}
}
