package node

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rpcRefusalLogInterval is the least time between two log lines of one
// refusal reason: a peer that opens connections in a loop must not be
// able to flood the log.
const rpcRefusalLogInterval = 10 * time.Second

// maxRefusalErrBytes bounds the error text logged, which can quote what
// the peer sent (names in its certificate).
const maxRefusalErrBytes = 256

// refusalLog counts every refused RPC connection by reason and logs at
// most one line per reason per interval (RateLog), with how many it left
// out since the previous line.
type refusalLog struct {
	counter *prometheus.CounterVec
	lines   *RateLog
}

// newRefusalLog logs on log; now is the clock (nil: time.Now).
func newRefusalLog(log *slog.Logger, now func() time.Time) *refusalLog {
	return &refusalLog{
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRPCRefused,
			Help: "RPC connections refused by TLS, by reason: no_cert, unknown_ca (a certificate from another CA), invalid_cert (expired, wrong usage), name (the certificate does not name the node claimed or dialed), handshake (any other handshake failure). Peers that hang up or go quiet mid-handshake are not counted.",
		}, []string{"reason"}),
		lines: NewRateLog(log, slog.LevelWarn, "refused rpc connection", rpcRefusalLogInterval, now),
	}
}

// refused counts one refusal and logs it unless its reason was logged
// less than an interval ago.
func (r *refusalLog) refused(reason, remote string, err error) {
	r.counter.WithLabelValues(reason).Inc()
	r.lines.Log(reason, "remote", remote, "err", truncateString(err.Error(), maxRefusalErrBytes))
}
