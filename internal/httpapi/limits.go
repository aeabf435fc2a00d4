package httpapi

import (
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// limits hold back load the server cannot take, before it costs anything: a bound on the
// /v1 requests in flight (beyond it 503 overloaded), and a token bucket per API key
// (beyond it 429 rate_limited). Both answers carry Retry-After and are never stored for
// idempotency.
type limits struct {
	maxInFlight int64 // 0: no bound
	inFlight    atomic.Int64

	rate  rate.Limit // per key; 0: no limit
	burst int

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

func newLimits(maxInFlight int, perKey float64, burst int) *limits {
	if burst <= 0 {
		burst = max(int(perKey), 1)
	}
	return &limits{maxInFlight: int64(maxInFlight), rate: rate.Limit(perKey), burst: burst,
		keys: make(map[string]*rate.Limiter)}
}

// enter counts a request in; false when the bound is reached (the caller answers 503 and
// must not call leave).
func (l *limits) enter() bool {
	if l.maxInFlight <= 0 {
		return true
	}
	if l.inFlight.Add(1) > l.maxInFlight {
		l.inFlight.Add(-1)
		return false
	}
	return true
}

func (l *limits) leave() {
	if l.maxInFlight > 0 {
		l.inFlight.Add(-1)
	}
}

// allow takes a token from the bucket of the API key keyID.
func (l *limits) allow(keyID string) bool {
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
