package httpapi_test

import (
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/service"
)

// TestRateLimited: a key that spends its burst is answered 429 rate_limited with
// Retry-After, nothing is written, and other keys are not held back.
func TestRateLimited(t *testing.T) {
	// One token per 1,000 s: a refill never lands inside the test.
	s := openStackHTTP(t, t.TempDir(), engine.Options{}, service.Options{},
		httpapi.Options{RateLimit: 0.001, RateBurst: 2})
	var other struct {
		Key string `json:"key"`
	}
	s.do(t, "POST", "/v1/api-keys", s.admin, obj{"name": "other", "scopes": []string{"write"}}).want(t, 201).into(t, &other)
	s.do(t, "POST", "/v1/accounts", s.admin, obj{"id": "a", "asset": "USD"}).want(t, 201) // the second and last token
	r := s.do(t, "POST", "/v1/accounts", s.admin, obj{"id": "b", "asset": "USD"}, hdr("Idempotency-Key", "k"))
	r.wantProblem(t, 429, "rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	s.do(t, "GET", "/v1/accounts/b", other.Key, nil).wantProblem(t, 404, "account_not_found")
	s.do(t, "GET", "/healthz", "", nil).want(t, 200) // health checks are not limited
}

// TestMaxInFlight: with the bound reached, a request is answered 503 overloaded with
// Retry-After at once; when the one in flight finishes, requests are served again.
func TestMaxInFlight(t *testing.T) {
	s := openStackHTTP(t, t.TempDir(), engine.Options{}, service.Options{}, httpapi.Options{MaxInFlight: 1})
	entered, release := s.store.holdNextCommit()
	done := make(chan reply, 1)
	go func() {
		r, err := s.send("POST", "/v1/accounts", s.admin, obj{"id": "held", "asset": "USD"})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	select {
	case <-entered:
	case <-time.After(time.Minute):
		t.Fatal("the first request never reached Commit")
	}
	r := s.do(t, "GET", "/v1/accounts/held", s.admin, nil)
	r.wantProblem(t, 503, "overloaded")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	release()
	(<-done).want(t, 201)
	s.do(t, "GET", "/v1/accounts/held", s.admin, nil).want(t, 200)
}
