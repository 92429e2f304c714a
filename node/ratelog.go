package node

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// RateLog logs refusals (bad tokens, failed TLS handshakes, gossip from
// strangers) at most once per reason per interval, so that a client that
// hammers a port cannot flood the log or fill the disk. The first event of
// a reason in an interval is logged at once; the ones after it in the same
// interval are only counted, and the next line logged for that reason
// carries that count as "suppressed". Counting every refusal is the
// metrics' job, not the log's.
//
// A RateLog is safe for concurrent use. The set of reasons must be small
// and fixed by the caller (never text from a peer): each one keeps a few
// words of state for the life of the RateLog.
type RateLog struct {
	log      *slog.Logger
	level    slog.Level
	msg      string
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex // guards reasons
	reasons map[string]*rateLogState
}

// rateLogState is one reason's window.
type rateLogState struct {
	next       time.Time // the earliest time the next line may be logged
	suppressed int64     // events since the last line that were not logged
}

// NewRateLog returns a RateLog that logs msg at level on log, once per
// reason per interval (a non-positive interval means one minute). A nil
// log discards. now is the clock; nil means time.Now.
func NewRateLog(log *slog.Logger, level slog.Level, msg string, interval time.Duration, now func() time.Time) *RateLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &RateLog{log: log, level: level, msg: msg, interval: interval, now: now, reasons: map[string]*rateLogState{}}
}

// Log records one event for reason with attrs (alternating keys and values,
// as slog takes them). It reports whether a line was written.
func (l *RateLog) Log(reason string, attrs ...any) bool {
	now := l.now()
	l.mu.Lock()
	st := l.reasons[reason]
	if st == nil {
		st = &rateLogState{}
		l.reasons[reason] = st
	}
	if now.Before(st.next) {
		st.suppressed++
		l.mu.Unlock()
		return false
	}
	suppressed := st.suppressed
	st.suppressed = 0
	st.next = now.Add(l.interval)
	l.mu.Unlock()
	args := make([]any, 0, len(attrs)+4)
	args = append(args, "reason", reason)
	args = append(args, attrs...)
	args = append(args, "suppressed", suppressed)
	l.log.Log(context.Background(), l.level, l.msg, args...)
	return true
}
