package limits_test

import (
	"testing"

	"github.com/tpwallet/tpwallet/internal/limits"
)

func TestInFlightBound(t *testing.T) {
	l := limits.New(2, 0, 0)
	if !l.Enter() || !l.Enter() {
		t.Fatal("the first two requests were refused")
	}
	if l.Enter() {
		t.Fatal("a third request in flight was let in past the bound of 2")
	}
	l.Leave()
	if !l.Enter() {
		t.Fatal("a request after one left was refused")
	}
	unbounded := limits.New(0, 0, 0)
	for range 10_000 {
		if !unbounded.Enter() {
			t.Fatal("no bound refused a request")
		}
	}
}

func TestRatePerKey(t *testing.T) {
	l := limits.New(0, 1, 3) // 1/s, bursts of 3: the test runs far within a second per token
	for i := range 3 {
		if !l.Allow("a") {
			t.Fatalf("request %d of a burst of 3 refused", i+1)
		}
	}
	if l.Allow("a") {
		t.Fatal("a fourth request at once was allowed past a burst of 3")
	}
	if !l.Allow("b") {
		t.Fatal("another key shares a's bucket")
	}
	if !limits.New(0, 0, 0).Allow("a") {
		t.Fatal("no rate limit refused a request")
	}
}
