package gossip

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMemberlistLogLevels(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		encrypted bool
		want      string // substring of the slog output
	}{
		{"debug stays debug", "[DEBUG] memberlist: Stream connection from=1.2.3.4", false, "level=DEBUG"},
		{"info demoted", "[INFO] memberlist: Marking n2 as failed", false, "level=DEBUG"},
		{"warn", "[WARN] memberlist: Refuting a suspect message", false, "level=WARN"},
		{"err", "[ERR] memberlist: Failed to send ping", false, "level=ERROR"},
		{"key mismatch", "[ERR] memberlist: failed to receive: No installed keys could decrypt the message from=127.0.0.1:5", true, "encryption key mismatch"},
		{"peer encrypts, we do not", "[ERR] memberlist: failed to receive: remote state is encrypted and encryption is not configured", false, "no key configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sb strings.Builder
			l := slog.New(slog.NewTextHandler(&sb, &slog.HandlerOptions{Level: slog.LevelDebug}))
			enc := tc.encrypted
			newMemberlistLogger(&mlLogWriter{log: l, encrypted: func() bool { return enc }}).Print(tc.line)
			if !strings.Contains(sb.String(), tc.want) {
				t.Errorf("logged %q, want it to contain %q", sb.String(), tc.want)
			}
			if strings.Contains(sb.String(), "[ERR]") || strings.Contains(sb.String(), "detail=\"memberlist:") {
				t.Errorf("prefix not stripped: %q", sb.String())
			}
		})
	}
}

func TestMemberlistSuspectLine(t *testing.T) {
	var got []string
	l := newMemberlistLogger(&mlLogWriter{log: slog.New(slog.DiscardHandler), onSuspect: func(n string) { got = append(got, n) }})
	l.Print("[INFO] memberlist: Suspect n5 has failed, no acks received")
	l.Print("[INFO] memberlist: Suspect node with spaces has failed, no acks received")
	l.Print("[INFO] memberlist: Marking n5 as failed, suspect timeout reached (0 peer confirmations)")
	l.Print("[WARN] memberlist: Refuting a suspect message (from: n2)")
	if want := []string{"n5", "node with spaces"}; !slices.Equal(got, want) {
		t.Errorf("suspects = %q, want %q", got, want)
	}
}

func TestLineReason(t *testing.T) {
	for line, want := range map[string]string{
		"UDP packet too short (3 bytes) from=127.0.0.1:4":              "UDP packet too short",
		"Failed to decode ping request: EOF from=[::1]:7946":           "Failed to decode ping request",
		"Got invalid checksum for UDP packet: 1a2b, 3c4d":              "Got invalid checksum for UDP packet",
		"Message type (77) not supported 127.0.0.1:5 (packet handler)": "Message type",
		"Got ping for unexpected node 'evil' from=127.0.0.1:6":         "Got ping for unexpected node",
		"Got ping for unexpected node evil from=127.0.0.1:6":           "Got ping for unexpected node",
		"12345":                               "other",
		strings.Repeat("x", 200):              strings.Repeat("x", maxReasonBytes),
		"Too many pending push/pull requests": "Too many pending push/pull requests",
		"failed to receive: No installed keys could decrypt the message from=1.2.3": "failed to receive",
	} {
		if got := lineReason(line); got != want {
			t.Errorf("lineReason(%q) = %q, want %q", line, got, want)
		}
	}
}

// TestMemberlistWarningsRateLimited: lines caused by bytes from outside
// are written at most once per reason per logEvery, the next one saying
// how many were held back, and every one is counted.
func TestMemberlistWarningsRateLimited(t *testing.T) {
	lg, w := newTestLogger(t, slog.LevelInfo)
	now := testNow
	mw := &mlLogWriter{log: lg, now: func() time.Time { return now }}
	l := newMemberlistLogger(mw)
	for i := range 1000 {
		l.Printf("[ERR] memberlist: UDP packet too short (3 bytes) from=127.0.0.1:%d", 1000+i)
		l.Printf("[WARN] memberlist: Got ping for unexpected node 'n%d' from=127.0.0.1:1", i)
		l.Printf("[ERR] memberlist: failed to receive: No installed keys could decrypt the message from=127.0.0.1:%d", i)
	}
	l.Print("[INFO] memberlist: Marking n5 as failed") // below Warn: neither limited nor counted
	if got := len(w.lines); got != 3 {
		t.Fatalf("3000 hostile lines wrote %d log lines, want 3 (one per reason): %q", got, w.lines)
	}
	now = now.Add(logEvery)
	l.Print("[ERR] memberlist: UDP packet too short (3 bytes) from=127.0.0.1:9")
	if got := len(w.lines); got != 4 || !strings.Contains(w.lines[3], "messages_not_logged=999") ||
		!strings.Contains(w.lines[3], `reason="UDP packet too short"`) {
		t.Fatalf("after the interval: %q", w.lines[3:])
	}
	if !strings.Contains(w.lines[2], "encryption key mismatch") && !strings.Contains(w.lines[2], "no key configured") {
		t.Errorf("key mismatch line lost its explanation: %q", w.lines[2])
	}
	if mw.warnings.Load() != 3001 || mw.suppressed.Load() != 2997 {
		t.Errorf("counted %d warnings, %d suppressed; want 3001, 2997", mw.warnings.Load(), mw.suppressed.Load())
	}
}

// Names from outside cannot make the limiter grow without bound.
func TestReasonLimiterBounded(t *testing.T) {
	r := newReasonLimiter()
	for i := range 10 * maxReasons {
		r.allow(fmt.Sprintf("reason %d", i), testNow)
	}
	if len(r.by) > maxReasons {
		t.Fatalf("%d reasons tracked, bound %d", len(r.by), maxReasons)
	}
}

// A table filled with names from outside frees up once they go quiet: a
// new reason logEvery later gets its own line and reason, and what the
// evicted reasons held back is reported under "other".
func TestReasonLimiterEvictsIdle(t *testing.T) {
	r := newReasonLimiter()
	for i := range maxReasons {
		for range 2 { // the second is held back
			r.allow(fmt.Sprintf("unexpected n%d", i), testNow)
		}
	}
	if reason, ok, _ := r.allow("new", testNow); reason != otherReason || !ok {
		t.Fatalf("a new reason with the table full of busy ones: %q, %v; want it under %q", reason, ok, otherReason)
	}
	later := testNow.Add(logEvery)
	if reason, ok, held := r.allow("new", later); reason != "new" || !ok || held != 0 {
		t.Fatalf("a new reason once the table went idle: %q, %v, %d held; want its own", reason, ok, held)
	}
	if len(r.by) != 1 {
		t.Errorf("%d reasons tracked after eviction, want 1", len(r.by))
	}
	if _, ok, held := r.allow(otherReason, later); !ok || held != maxReasons {
		t.Errorf("other: %v, %d held; want the %d lines the evicted reasons held back", ok, held, maxReasons)
	}
}

// The known reasons keep their own slots however full the table is.
func TestReasonLimiterFixedSlots(t *testing.T) {
	r := newReasonLimiter()
	for i := range 10 * maxReasons {
		r.allow(fmt.Sprintf("reason %d", i), testNow)
	}
	for _, reason := range []string{keyMismatchReason, "Got ping for unexpected node"} {
		if got, ok, _ := r.allow(reason, testNow); got != reason || !ok {
			t.Errorf("%q with the table full: counted as %q, logged %v", reason, got, ok)
		}
	}
}
