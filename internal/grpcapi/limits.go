package grpcapi

import (
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// limits hold back load the server cannot take, before it costs anything, as REST's do
// (httpapi/limits.go): a bound on the RPCs in flight (a stream counts for its whole life;
// beyond it Unavailable overloaded) and a token bucket per API key (one token per unary
// call and per message of a transfer stream; beyond it ResourceExhausted rate_limited).
// The gRPC port has its own bound and buckets, sized by the same serve flags as REST's.
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

// enter counts an RPC in; false when the bound is reached (the caller refuses it and must
// not call leave).
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
