package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to 60 s with 3
// significant digits; a slower operation is recorded as 60 s.
const (
	histMinMicros = 1
	histMaxMicros = 60_000_000
	histDigits    = 3
)

// benchErrKind says why an operation failed.
type benchErrKind int

const (
	errTimeout benchErrKind = iota // no answer within --timeout
	errConn                        // connect refused, reset, closed by the node
	errQuorum                      // HTTP 503 (quorum not met, unavailable, not joined) or its RESP equivalent
	errOther                       // any other status or error reply, or a malformed answer
	numErrKinds
)

// benchError is a failed operation, classified.
type benchError struct {
	kind benchErrKind
	err  error
}

func (e *benchError) Error() string { return e.err.Error() }
func (e *benchError) Unwrap() error { return e.err }

// classifyNetErr sorts a transport error into timeout or connection.
func classifyNetErr(err error) *benchError {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return &benchError{kind: errTimeout, err: err}
	}
	return &benchError{kind: errConn, err: err}
}

// opStats accumulates one operation's outcomes; every client records into
// the same opStats.
type opStats struct {
	mu   sync.Mutex // guards hist
	hist *hdrhistogram.Histogram

	// Counters are atomic so that the progress line reads them without
	// taking mu.
	count    atomic.Int64 // finished operations, failed ones included
	notFound atomic.Int64
	errs     [numErrKinds]atomic.Int64
	lastErr  atomic.Pointer[string] // the text of one recent error, for the summary
}

func newOpStats() *opStats {
	return &opStats{hist: hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)}
}

// record counts one finished operation. Latencies are recorded for answers
// (found or not found), not for failures: a timeout would only record the
// timeout itself.
func (s *opStats) record(lat time.Duration, notFound bool, err error) {
	s.count.Add(1)
	if err != nil {
		var be *benchError
		kind := errOther
		if errors.As(err, &be) {
			kind = be.kind
		}
		s.errs[kind].Add(1)
		msg := err.Error()
		s.lastErr.Store(&msg)
		return
	}
	if notFound {
		s.notFound.Add(1)
	}
	us := min(max(lat.Microseconds(), histMinMicros), histMaxMicros)
	s.mu.Lock()
	_ = s.hist.RecordValue(us) // in range by construction
	s.mu.Unlock()
}

func (s *opStats) errors() int64 {
	var n int64
	for i := range s.errs {
		n += s.errs[i].Load()
	}
	return n
}

// benchErrCounts is the JSON form of the error counts.
type benchErrCounts struct {
	Timeout int64 `json:"timeout"`
	Conn    int64 `json:"conn"`
	Quorum  int64 `json:"quorum_503"`
	Other   int64 `json:"other"`
	Total   int64 `json:"total"`
}

// benchLatency is a latency summary in microseconds.
type benchLatency struct {
	Mean float64 `json:"mean"`
	P50  int64   `json:"p50"`
	P95  int64   `json:"p95"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p99_9"`
	Max  int64   `json:"max"`
}

// benchOpSummary is what the report says about one operation.
type benchOpSummary struct {
	Count     int64          `json:"count"` // finished, failed ones included
	OK        int64          `json:"ok"`    // answered, found or not
	NotFound  int64          `json:"not_found"`
	Errors    benchErrCounts `json:"errors"`
	OpsPerSec float64        `json:"ops_per_sec"` // count per second of the phase
	LatencyUs benchLatency   `json:"latency_us"`  // of answered operations
	LastError string         `json:"last_error,omitempty"`
}

func (s *opStats) summary(elapsed time.Duration) benchOpSummary {
	sum := benchOpSummary{
		Count:    s.count.Load(),
		NotFound: s.notFound.Load(),
		Errors: benchErrCounts{
			Timeout: s.errs[errTimeout].Load(),
			Conn:    s.errs[errConn].Load(),
			Quorum:  s.errs[errQuorum].Load(),
			Other:   s.errs[errOther].Load(),
		},
	}
	sum.Errors.Total = s.errors()
	sum.OK = sum.Count - sum.Errors.Total
	if secs := elapsed.Seconds(); secs > 0 {
		sum.OpsPerSec = float64(sum.Count) / secs
	}
	if p := s.lastErr.Load(); p != nil {
		sum.LastError = *p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hist.TotalCount() > 0 {
		vs := s.hist.ValueAtPercentilesSlice([]float64{50, 95, 99, 99.9})
		sum.LatencyUs = benchLatency{Mean: s.hist.Mean(), P50: vs[0], P95: vs[1], P99: vs[2], P999: vs[3], Max: s.hist.Max()}
	}
	return sum
}

// fmtMicros prints a latency in milliseconds for people.
func fmtMicros(us int64) string {
	return fmt.Sprintf("%.3f", float64(us)/1000)
}
