package chaos

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestResultText(t *testing.T) {
	r := Result{Ops: 10, Writes: 6, Reads: 4, OK: 8, FailedOps: 1, Unknown: 1, Availability: 0.8,
		P50Write: 1500 * time.Microsecond, P99Write: 20 * time.Millisecond, Keys: 3, FinalErrors: 1, StaleReadsUnderFaults: 2}
	for i := range 12 {
		r.Lost++
		r.Violations = append(r.Violations, Violation{Kind: ViolationLost, Key: "k", Value: strings.Repeat("v", i+1), Detail: "gone"})
	}
	var b strings.Builder
	r.WriteText(&b)
	out := b.String()
	for _, want := range []string{"FAIL: 10 ops", "availability 80.00%", "p50 1.5ms", "lost 12,",
		"2 under faults", "1 keys unread", `lost "k" = "v": gone`, "2 more"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "lost \"k\""); n != reportViolations {
		t.Errorf("report lists %d violations, want %d", n, reportViolations)
	}
	b.Reset()
	Result{Ops: 1, OK: 1, Availability: 1}.WriteText(&b)
	if !strings.HasPrefix(b.String(), "PASS") {
		t.Errorf("clean report:\n%s", b.String())
	}
}

func TestResultJSON(t *testing.T) {
	r := Result{Ops: 3, OK: 2, FailedOps: 1, Availability: 2.0 / 3, P50Read: 2500 * time.Microsecond, P99Write: 3 * time.Millisecond,
		Invented: 1, Violations: []Violation{{Kind: ViolationInvented, Key: "k", Value: "x"}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["p50_read_ms"] != 2.5 || m["p99_write_ms"] != 3.0 || m["failed"] != 1.0 || m["pass"] != false {
		t.Errorf("JSON %s", b)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	b, _ = json.Marshal(Result{})
	if !strings.Contains(string(b), `"violations":[]`) || !strings.Contains(string(b), `"pass":true`) {
		t.Errorf("empty result JSON %s", b)
	}
}
