package gossip

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
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
			newMemberlistLogger(l, tc.encrypted, nil).Print(tc.line)
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
	l := newMemberlistLogger(slog.New(slog.DiscardHandler), false, func(n string) { got = append(got, n) })
	l.Print("[INFO] memberlist: Suspect n5 has failed, no acks received")
	l.Print("[INFO] memberlist: Suspect node with spaces has failed, no acks received")
	l.Print("[INFO] memberlist: Marking n5 as failed, suspect timeout reached (0 peer confirmations)")
	l.Print("[WARN] memberlist: Refuting a suspect message (from: n2)")
	if want := []string{"n5", "node with spaces"}; !slices.Equal(got, want) {
		t.Errorf("suspects = %q, want %q", got, want)
	}
}
