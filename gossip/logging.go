package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// mlLogWriter turns memberlist's "[LEVEL] memberlist: text" lines into slog
// records. memberlist only takes a *log.Logger, so this writer is the seam.
type mlLogWriter struct {
	log       *slog.Logger
	encrypted bool
	// onSuspect, if set, is called with a node's name when our own probe
	// of it failed: memberlist has no callback for suspicion, only this
	// log line. It must not block (it runs on memberlist's probe path).
	onSuspect func(name string)
}

// newMemberlistLogger returns a *log.Logger for memberlist.Config.Logger.
func newMemberlistLogger(l *slog.Logger, encrypted bool, onSuspect func(string)) *log.Logger {
	return log.New(&mlLogWriter{log: l.With("source", "memberlist"), encrypted: encrypted, onSuspect: onSuspect}, "", 0)
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
var keyMismatchHints = []string{
	"No installed keys could decrypt",
	"failed to decrypt",
	"Failed to decrypt",
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
	for _, h := range keyMismatchHints {
		if strings.Contains(line, h) {
			msg := "gossip encryption key mismatch: a peer's traffic could not be decrypted; every node must use the same gossip key"
			if !w.encrypted {
				msg = "gossip encryption mismatch: a peer sends encrypted gossip but this node has no key configured"
			}
			w.log.Error(msg, "detail", line)
			return len(p), nil
		}
	}
	// memberlist is chatty at INFO about routine events; keep its lines
	// below our own lifecycle logs.
	if level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, "memberlist", "detail", line)
	return len(p), nil
}
