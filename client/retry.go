package client

import (
	"errors"
	"math/rand/v2"
	"time"
)

// RetryPolicy says when a call gives up. A call is retried on a network error, on 429
// rate_limited and 503 (overloaded, not_leader, unavailable), on 502 and 504 from a proxy,
// and, for writes, on 409 idempotency_in_flight. That is safe because every write carries
// one Idempotency-Key for all its attempts: the server applies it at most once and answers
// a retry with the first answer (Meta.Replayed). The wait before a retry is the server's
// Retry-After when it sent one, else an exponential backoff with full jitter: a random
// duration in [0, min(MaxDelay, BaseDelay·2^(n−1))) before the n-th retry.
//
// Zero fields take the defaults of DefaultRetryPolicy.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts of one call, the first included; 1 turns retries off.
	MaxAttempts int
	// MaxElapsed bounds the time from the first attempt: no retry starts, nor wait begins,
	// that would end after it (the call then returns the last error). A context deadline
	// bounds it the same way.
	MaxElapsed time.Duration
	// BaseDelay is the backoff before the first retry; it doubles with each retry.
	BaseDelay time.Duration
	// MaxDelay caps the backoff (not a server's Retry-After, which is always honoured).
	MaxDelay time.Duration
	// OnRetry, when set, is called before each wait, for logging and metrics. It must not
	// block for long: the call waits for it.
	OnRetry func(Retry)
}

// Retry describes a retry about to happen.
type Retry struct {
	Operation      string        // openapi.yaml's operationId, e.g. "createTransfer"
	Attempt        int           // the attempt that failed, from 1
	Err            error         // why it failed
	Delay          time.Duration // the wait before the next attempt
	IdempotencyKey string        // the key every attempt of the call carries ("" for reads)
}

// DefaultRetryPolicy is the policy of a Client made without WithRetryPolicy.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts: 8,
	MaxElapsed:  time.Minute,
	BaseDelay:   100 * time.Millisecond,
	MaxDelay:    5 * time.Second,
}

// NoRetry makes a single attempt.
var NoRetry = RetryPolicy{MaxAttempts: 1}

func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = d.MaxElapsed
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	return p
}

// backoff is the wait before retry n (1 for the first), with full jitter.
func (p RetryPolicy) backoff(n int) time.Duration {
	ceil := p.MaxDelay
	if n-1 < 32 {
		if d := p.BaseDelay << (n - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	return rand.N(ceil)
}

// retryable says whether a failed attempt of op may be tried again, and how long the
// server asked to wait (0: it did not say).
func retryable(op *operation, err error) (ok bool, after time.Duration) {
	var te *transportError
	if errors.As(err, &te) {
		// No answer: for an unkeyed write the server may have applied it.
		return op.kind != opUnkeyed || te.notSent, 0
	}
	var e *Error
	if !errors.As(err, &e) {
		return false, 0
	}
	switch e.Code {
	case CodeRateLimited, CodeOverloaded, CodeNotLeader:
		return true, e.RetryAfter // refused before anything was done
	case CodeUnavailable:
		// The store failed: a write's outcome is unknown, safe to retry only with a key.
		return op.kind != opUnkeyed, e.RetryAfter
	case CodeIdempotencyInFlight:
		return op.kind == opWrite, e.RetryAfter
	case "":
		// Not a problem document: a proxy or load balancer answered.
		switch e.Status {
		case 429:
			return true, e.RetryAfter
		case 502, 503, 504:
			return op.kind != opUnkeyed, e.RetryAfter
		}
	}
	return false, 0
}
