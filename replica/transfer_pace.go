package replica

import (
	"context"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// SetRate changes the limit on received bytes per second; 0 (or a
// negative, NaN or infinite value) is unlimited. It takes effect at once,
// for the batch waiting now too.
func (p *Puller) SetRate(bytesPerSec float64) {
	p.rateMu.Lock()
	defer p.rateMu.Unlock()
	p.rate = normRate(bytesPerSec)
	p.lim.SetLimit(toLimit(bytesPerSec))
	// Waiters reserved under the old limit; wake them to reserve again.
	close(p.rateChanged)
	p.rateChanged = make(chan struct{})
}

// normRate is the rate Stats reports for a configured value: 0 for
// unlimited.
func normRate(r float64) float64 {
	if !(r > 0) || math.IsInf(r, 0) {
		return 0
	}
	return r
}

// toLimit is the limiter's limit for a configured rate.
func toLimit(r float64) rate.Limit {
	if r := normRate(r); r > 0 {
		return rate.Limit(r)
	}
	return rate.Inf
}

// startPacing empties the limiter's bucket, so that the rate holds from
// the first batch rather than after a free burst.
func (p *Puller) startPacing() {
	p.rateMu.Lock()
	defer p.rateMu.Unlock()
	p.lim.ReserveN(time.Now(), p.lim.Burst())
}

// pace waits until n more received bytes fit the rate limit, or ctx ends.
// Bytes beyond the limiter's burst wait in chunks of it. A rate change
// during the wait gives back the reservation and reserves again under the
// new limit.
func (p *Puller) pace(ctx context.Context, n int64) error {
	for n > 0 {
		k := int(min(n, int64(p.lim.Burst())))
		p.rateMu.Lock()
		changed := p.rateChanged
		r := p.lim.ReserveN(time.Now(), k)
		p.rateMu.Unlock()
		if !r.OK() {
			// k <= burst and the limit is never 0, so this does not
			// happen; not pacing beats blocking for ever.
			return nil
		}
		if d := r.Delay(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-changed:
				t.Stop()
				r.Cancel()
				continue
			case <-ctx.Done():
				t.Stop()
				r.Cancel()
				return ctx.Err()
			}
		}
		n -= int64(k)
	}
	return nil
}
