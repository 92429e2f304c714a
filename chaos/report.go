package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// reportViolations is how many violations WriteText lists.
const reportViolations = 10

// WriteText writes a short human report of r: operations and their
// outcomes, latencies, the violations by kind (each must be 0), siblings
// and final read errors, and the first violations.
func (r Result) WriteText(w io.Writer) {
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s: %d ops (%d writes, %d reads) on %d keys\n", verdict, r.Ops, r.Writes, r.Reads, r.Keys)
	fmt.Fprintf(w, "  ok %d, failed %d, unknown %d: availability %.2f%%\n",
		r.OK, r.FailedOps, r.Unknown, 100*r.Availability)
	fmt.Fprintf(w, "  latency write p50 %s p99 %s, read p50 %s p99 %s\n",
		roundDur(r.P50Write), roundDur(r.P99Write), roundDur(r.P50Read), roundDur(r.P99Read))
	fmt.Fprintf(w, "  violations (must be 0): lost %d, invented %d, resurrected %d, duplicated %d, stale reads %d\n",
		r.Lost, r.Invented, r.Resurrected, r.Duplicated, r.StaleReads)
	fmt.Fprintf(w, "  stale reads allowed: %d under faults, %d with R+W <= N\n", r.StaleReadsUnderFaults, r.StaleReadsWeak)
	fmt.Fprintf(w, "  siblings: %d reads saw more than one value (at most %d)\n", r.SiblingsSeen, r.MaxSiblings)
	if r.FinalErrors > 0 {
		fmt.Fprintf(w, "  final reads (must be 0 unread): %d keys unread, not checked for lost writes\n", r.FinalErrors)
	}
	for i, v := range r.Violations {
		if i == reportViolations {
			fmt.Fprintf(w, "  ... %d more listed in the JSON report\n", len(r.Violations)-i)
			break
		}
		fmt.Fprintf(w, "  %s %q = %q: %s\n", v.Kind, v.Key, v.Value, v.Detail)
	}
}

// roundDur shows a latency to a tenth of a millisecond (a microsecond
// below a millisecond).
func roundDur(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}

// resultJSON is Result as json.Marshal shows it: snake_case names and
// latencies in milliseconds.
type resultJSON struct {
	Ops                   int         `json:"ops"`
	Writes                int         `json:"writes"`
	Reads                 int         `json:"reads"`
	OK                    int         `json:"ok"`
	Failed                int         `json:"failed"`
	Unknown               int         `json:"unknown"`
	Availability          float64     `json:"availability"`
	P50WriteMS            float64     `json:"p50_write_ms"`
	P99WriteMS            float64     `json:"p99_write_ms"`
	P50ReadMS             float64     `json:"p50_read_ms"`
	P99ReadMS             float64     `json:"p99_read_ms"`
	Lost                  int         `json:"lost"`
	Invented              int         `json:"invented"`
	Resurrected           int         `json:"resurrected"`
	Duplicated            int         `json:"duplicated"`
	StaleReads            int         `json:"stale_reads"`
	StaleReadsUnderFaults int         `json:"stale_reads_under_faults"`
	StaleReadsWeak        int         `json:"stale_reads_weak"`
	SiblingsSeen          int         `json:"siblings_seen"`
	MaxSiblings           int         `json:"max_siblings"`
	Keys                  int         `json:"keys"`
	FinalErrors           int         `json:"final_errors"`
	Violations            []Violation `json:"violations"`
	// Pass is !Failed(), so a script need not know the rule.
	Pass bool `json:"pass"`
}

func toMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fromMS(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// MarshalJSON encodes r with latencies in milliseconds and a "pass" field.
func (r Result) MarshalJSON() ([]byte, error) {
	v := r.Violations
	if v == nil {
		v = []Violation{}
	}
	return json.Marshal(resultJSON{
		Ops: r.Ops, Writes: r.Writes, Reads: r.Reads, OK: r.OK, Failed: r.FailedOps, Unknown: r.Unknown,
		Availability: r.Availability,
		P50WriteMS:   toMS(r.P50Write), P99WriteMS: toMS(r.P99Write), P50ReadMS: toMS(r.P50Read), P99ReadMS: toMS(r.P99Read),
		Lost: r.Lost, Invented: r.Invented, Resurrected: r.Resurrected, Duplicated: r.Duplicated,
		StaleReads: r.StaleReads, StaleReadsUnderFaults: r.StaleReadsUnderFaults, StaleReadsWeak: r.StaleReadsWeak,
		SiblingsSeen: r.SiblingsSeen, MaxSiblings: r.MaxSiblings, Keys: r.Keys, FinalErrors: r.FinalErrors,
		Violations: v, Pass: !r.Failed(),
	})
}

// UnmarshalJSON decodes what MarshalJSON encodes (latencies to the
// nanosecond they were rounded to).
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Result{
		Ops: j.Ops, Writes: j.Writes, Reads: j.Reads, OK: j.OK, FailedOps: j.Failed, Unknown: j.Unknown,
		Availability: j.Availability,
		P50Write:     fromMS(j.P50WriteMS), P99Write: fromMS(j.P99WriteMS), P50Read: fromMS(j.P50ReadMS), P99Read: fromMS(j.P99ReadMS),
		Lost: j.Lost, Invented: j.Invented, Resurrected: j.Resurrected, Duplicated: j.Duplicated,
		StaleReads: j.StaleReads, StaleReadsUnderFaults: j.StaleReadsUnderFaults, StaleReadsWeak: j.StaleReadsWeak,
		SiblingsSeen: j.SiblingsSeen, MaxSiblings: j.MaxSiblings, Keys: j.Keys, FinalErrors: j.FinalErrors,
		Violations: j.Violations,
	}
	return nil
}
