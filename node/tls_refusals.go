package node

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// refusalLogInterval is the least time between two log lines of one
// refusal reason: a peer that opens connections in a loop must not be
// able to flood the log.
const refusalLogInterval = 10 * time.Second

// maxRefusalErrBytes bounds the error text logged, which can quote what
// the peer sent (names in its certificate).
const maxRefusalErrBytes = 256

// refusalLog counts every refused RPC connection by reason and logs at
// most one line per reason per interval, with how many it left out since
// the previous line.
type refusalLog struct {
	counter  *prometheus.CounterVec
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex // guards last and suppressed
	// last is when each reason was last logged; suppressed how many
	// refusals of it were not logged since.
	last       map[string]time.Time
	suppressed map[string]int
}

func newRefusalLog(log *slog.Logger) *refusalLog {
	return &refusalLog{
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRPCRefused,
			Help: "RPC connections refused by TLS, by reason: no_cert, unknown_ca (a certificate from another CA), invalid_cert (expired, wrong usage), name (the certificate does not name the node claimed or dialed), handshake (any other handshake failure).",
		}, []string{"reason"}),
		log: log, interval: refusalLogInterval, now: time.Now,
		last: map[string]time.Time{}, suppressed: map[string]int{},
	}
}

// refused counts one refusal and logs it unless its reason was logged
// less than an interval ago.
func (r *refusalLog) refused(reason, remote string, err error) {
	r.counter.WithLabelValues(reason).Inc()
	r.mu.Lock()
	now := r.now()
	if t, ok := r.last[reason]; ok && now.Sub(t) < r.interval {
		r.suppressed[reason]++
		r.mu.Unlock()
		return
	}
	r.last[reason] = now
	n := r.suppressed[reason]
	r.suppressed[reason] = 0
	r.mu.Unlock()
	r.log.Warn("refused rpc connection", "reason", reason, "remote", remote,
		"err", truncateString(err.Error(), maxRefusalErrBytes), "suppressed", n, "interval", r.interval)
}
