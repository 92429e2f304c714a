package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestChaosBadFlags: every bad flag is refused with exit status 2 and a
// message naming it, before any process starts. (The runs themselves are
// e2e's: TestChaosScenarios.)
func TestChaosBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "flood"}, "flood"},
		{[]string{"--nodes", "10"}, "nodes 10"},
		{[]string{"--replication", "6"}, "replication 6"},
		{[]string{"--duration", "1s"}, "duration 1s"},
		{[]string{"--r", "most"}, `"most"`},
		{[]string{"--w", "0"}, `"0"`},
		{[]string{"--clients", "-1"}, "clients -1"},
		{[]string{"--mode", "blind"}, "blind"},
		{[]string{"extra"}, "no arguments"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"chaos"}, tc.args...), strings.NewReader(""), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("chaos %v: exit %d, stderr %q; want 2 naming %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
