// Package limits holds back load a server cannot take, before it costs anything: a bound
// on the requests in flight (beyond it 503 overloaded, or gRPC Unavailable), and a token
// bucket per API key (beyond it 429 rate_limited, or gRPC ResourceExhausted). REST and
// gRPC share one Limits in serve, so a key's rate and the in-flight bound hold across both
// transports.
package limits

import (
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Limits is safe for concurrent use.
type Limits struct {
	maxInFlight int64 // 0: no bound
	inFlight    atomic.Int64

	rate  rate.Limit // per key; 0: no limit
	burst int

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

// New returns limits of maxInFlight requests at once (0: no bound) and perKey requests a
// second per API key (0: no limit) in bursts of burst (0: one second's worth).
func New(maxInFlight int, perKey float64, burst int) *Limits {
	if burst <= 0 {
		burst = max(int(perKey), 1)
	}
	return &Limits{maxInFlight: int64(maxInFlight), rate: rate.Limit(perKey), burst: burst,
		keys: make(map[string]*rate.Limiter)}
}

// Enter counts a request in; false when the bound is reached (the caller refuses it and
// must not call Leave).
func (l *Limits) Enter() bool {
	if l.maxInFlight <= 0 {
		return true
	}
	if l.inFlight.Add(1) > l.maxInFlight {
		l.inFlight.Add(-1)
		return false
	}
	return true
}

// Leave counts a request that Enter let in out.
func (l *Limits) Leave() {
	if l.maxInFlight > 0 {
		l.inFlight.Add(-1)
	}
}

// Allow takes a token from the bucket of the API key keyID.
func (l *Limits) Allow(keyID string) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	lim, ok := l.keys[keyID]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.keys[keyID] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}
