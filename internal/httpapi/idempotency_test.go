package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/service"
)

func wantReplay(t *testing.T, got, first reply) {
	t.Helper()
	if got.Status != first.Status || string(got.Body) != string(first.Body) {
		t.Errorf("replay: got %d %s, want %d %s", got.Status, got.Body, first.Status, first.Body)
	}
	if v := got.Header.Get("Idempotent-Replayed"); v != "true" {
		t.Errorf("replay: Idempotent-Replayed %q, want true", v)
	}
}

func wantFresh(t *testing.T, r reply) {
	t.Helper()
	if v, ok := r.Header["Idempotent-Replayed"]; ok {
		t.Errorf("%s: Idempotent-Replayed %q on an answer that is not a replay", r, v)
	}
}

func TestIdempotency(t *testing.T) {
	s := newStack(t)
	w1 := s.newKey(t, "w1", "write")
	w2 := s.newKey(t, "w2", "write")
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.openAccount(t, "bob", "USD", false)
	key := func(k string) reqOpt { return hdr("Idempotency-Key", k) }

	pay := `{"source":"treasury","destination":"alice","amount":"100"}`
	first := s.do(t, "POST", "/v1/transfers", w1, pay, key("pay-1")).want(t, 201)
	wantFresh(t, first)
	s.unchanged(t, func() {
		wantReplay(t, s.do(t, "POST", "/v1/transfers", w1, pay, key("pay-1")), first)
		wantReplay(t, s.do(t, "POST", "/v1/transfers", w1, pay, key("pay-1")), first)
	})
	s.wantBalance(t, "alice", balance{"100", "100", "0", "0"})

	// A 422 decision is stored too, and replayed even once it would succeed.
	poor := `{"source":"alice","destination":"bob","amount":"500"}`
	refused := s.do(t, "POST", "/v1/transfers", w1, poor, key("pay-2"))
	refused.wantProblem(t, 422, "insufficient_funds")
	wantFresh(t, refused)
	s.pay(t, "treasury", "alice", "1000")
	s.unchanged(t, func() {
		wantReplay(t, s.do(t, "POST", "/v1/transfers", w1, poor, key("pay-2")), refused)
	})

	// The same key with another request.
	s.unchanged(t, func() {
		for _, c := range []struct{ path, body string }{
			{"/v1/transfers", `{"source":"treasury","destination":"alice","amount":"101"}`},
			{"/v1/transfers", pay + " "}, // the same JSON, other bytes
			{"/v1/transfers", `{"destination":"alice","source":"treasury","amount":"100"}`},
			{"/v1/accounts", `{"asset":"USD"}`},
			{"/v1/transfers/batch", `{"atomic":true,"transfers":[` + pay + `]}`},
		} {
			s.do(t, "POST", c.path, w1, c.body, key("pay-1")).wantProblem(t, 422, "idempotency_key_reused")
		}
		s.do(t, "POST", "/v1/transfers", w1, pay, key("pay-2")).wantProblem(t, 422, "idempotency_key_reused")
	})

	// Keys are scoped to the API key that sends them.
	other := s.do(t, "POST", "/v1/transfers", w2, pay, key("pay-1")).want(t, 201)
	wantFresh(t, other)
	if string(other.Body) == string(first.Body) {
		t.Errorf("another API key's request was answered from w1's key: %s", other.Body)
	}
	s.wantBalance(t, "alice", balance{"1200", "1200", "0", "0"})
	wantReplay(t, s.do(t, "POST", "/v1/transfers", w2, pay, key("pay-1")), other)
	// The admin key is another scope as well.
	s.do(t, "POST", "/v1/transfers", s.admin, pay, key("pay-2")).want(t, 201)

	// Idempotency-Key: 1–255 printable ASCII characters, once.
	s.unchanged(t, func() {
		for _, opt := range []reqOpt{
			key(strings.Repeat("k", 256)),
			rawHdr("Idempotency-Key", ""),
			rawHdr("Idempotency-Key", "tab\there"),
			rawHdr("Idempotency-Key", "caf\xc3\xa9"),
			func(r *http.Request) { r.Header["Idempotency-Key"] = []string{"a", "b"} },
		} {
			s.do(t, "POST", "/v1/transfers", w1, pay, opt).wantProblem(t, 400, "invalid_request")
		}
	})
	long := strings.Repeat("k", 254) + "~"
	lr := s.do(t, "POST", "/v1/transfers", w1, pay, key(long)).want(t, 201)
	wantReplay(t, s.do(t, "POST", "/v1/transfers", w1, pay, key(long)), lr)
	spaced := s.do(t, "POST", "/v1/transfers", w1, pay, key("a key with spaces & {json} \"quotes\"")).want(t, 201)

	// Every write takes a key: accounts, freeze (empty body), post, void, batches.
	acct := s.do(t, "POST", "/v1/accounts", w1, `{"asset":"EUR"}`, key("acct")).want(t, 201)
	frz := s.do(t, "POST", "/v1/accounts/bob/freeze", s.admin, nil, key("frz")).want(t, 200)
	s.do(t, "POST", "/v1/accounts/bob/unfreeze", s.admin, nil).want(t, 200)
	h := s.hold(t, "alice", "bob", "10", 0)
	void := s.do(t, "POST", "/v1/transfers/"+h.ID+"/void", w1, nil, key("void")).want(t, 200)
	failed := s.do(t, "POST", "/v1/transfers/batch", w1,
		`{"atomic":true,"transfers":[{"source":"alice","destination":"bob","amount":"1"},{"source":"bob","destination":"alice","amount":"99999"}]}`,
		key("batch"))
	failed.wantProblem(t, 422, "batch_failed")
	asset := s.do(t, "POST", "/v1/assets", s.admin, `{"code":"XAU","scale":3}`, key("asset")).want(t, 201)

	// Everything survives a restart of the whole stack.
	s = s.restart(t)
	s.unchanged(t, func() {
		wantReplay(t, s.do(t, "POST", "/v1/transfers", w1, pay, key("pay-1")), first)
		wantReplay(t, s.do(t, "POST", "/v1/transfers", w1, poor, key("pay-2")), refused)
		wantReplay(t, s.do(t, "POST", "/v1/transfers", w2, pay, key("pay-1")), other)
		wantReplay(t, s.do(t, "POST", "/v1/transfers", w1, pay, key("a key with spaces & {json} \"quotes\"")), spaced)
		wantReplay(t, s.do(t, "POST", "/v1/accounts", w1, `{"asset":"EUR"}`, key("acct")), acct)
		wantReplay(t, s.do(t, "POST", "/v1/accounts/bob/freeze", s.admin, nil, key("frz")), frz)
		wantReplay(t, s.do(t, "POST", "/v1/transfers/"+h.ID+"/void", w1, nil, key("void")), void)
		wantReplay(t, s.do(t, "POST", "/v1/transfers/batch", w1,
			`{"atomic":true,"transfers":[{"source":"alice","destination":"bob","amount":"1"},{"source":"bob","destination":"alice","amount":"99999"}]}`,
			key("batch")), failed)
		wantReplay(t, s.do(t, "POST", "/v1/assets", s.admin, `{"code":"XAU","scale":3}`, key("asset")), asset)
		s.do(t, "POST", "/v1/transfers", w1, pay+"\n", key("pay-1")).wantProblem(t, 422, "idempotency_key_reused")
	})
	if got := s.account(t, "bob").Status; got != "active" {
		t.Errorf("a replayed freeze changed bob: %s", got)
	}
	s.wantBalance(t, "alice", balance{"1500", "1500", "0", "0"})
}

// TestIdempotencyInFlight keeps a request in flight by holding its commit in the store, so
// that a second request with the same key deterministically meets the first.
func TestIdempotencyInFlight(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	body := `{"source":"treasury","destination":"alice","amount":"7"}`
	key := hdr("Idempotency-Key", "once")

	entered, release := s.store.holdNextCommit()
	done := make(chan reply, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := s.send("POST", "/v1/transfers", s.admin, body, key)
		errc <- err
		done <- r
	}()
	select {
	case <-entered:
	case <-time.After(time.Minute):
		release()
		t.Fatal("the first request never reached the store's Commit")
	}
	second := s.do(t, "POST", "/v1/transfers", s.admin, body, key)
	second.wantProblem(t, 409, "idempotency_in_flight")
	s.do(t, "POST", "/v1/transfers", s.admin, `{"source":"treasury","destination":"alice","amount":"8"}`, key).
		wantProblem(t, 409, "idempotency_in_flight")
	release()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	first := <-done
	checkReply(t, first)
	first.want(t, 201)
	wantFresh(t, first)
	// The 409 was not stored: the key now answers with the first request's result.
	s.unchanged(t, func() {
		wantReplay(t, s.do(t, "POST", "/v1/transfers", s.admin, body, key), first)
	})
	s.wantBalance(t, "alice", balance{"7", "7", "0", "0"})
}

// TestOverloaded holds a commit and sends writes one at a time until the engine's pipeline
// and its queue of depth 1 are full: the next write is 503 overloaded with Retry-After, is
// not stored for its Idempotency-Key, and every write it did take succeeds once released.
func TestOverloaded(t *testing.T) {
	s := openStackWith(t, t.TempDir(), engine.Options{QueueDepth: 1}, service.Options{})
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	pay := `{"source":"treasury","destination":"alice","amount":"1"}`

	entered, release := s.store.holdNextCommit()
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	type result struct {
		key string
		r   reply
		err error
	}
	results := make(chan result, 64)
	send := func(key string) {
		r, err := s.send("POST", "/v1/transfers", s.admin, pay, hdr("Idempotency-Key", key))
		results <- result{key, r, err}
	}
	go send("w0") // its commit is held
	select {
	case <-entered:
	case <-time.After(time.Minute):
		t.Fatal("the first write never reached Commit")
	}
	// Each write the engine takes is applied (Stats.Applied counts it) or waits in the
	// queue; once both are full, the next is refused at once.
	base := s.eng.Stats().Applied
	var refused *result
	absorbed := 0
	for launched := 1; refused == nil && launched < 64; launched++ {
		go send(fmt.Sprintf("w%d", launched))
		eventually(t, time.Minute, "a write to be taken or refused", func() bool {
			select {
			case r := <-results:
				refused = &r
				return true
			default:
			}
			return int(s.eng.Stats().Applied-base)+s.eng.Queued() == launched
		})
		if refused == nil {
			absorbed++
		}
	}
	if refused == nil {
		t.Fatal("no write was refused")
	}
	if refused.err != nil {
		t.Fatal(refused.err)
	}
	checkReply(t, refused.r)
	refused.r.wantProblem(t, 503, "overloaded")
	s.do(t, "GET", "/readyz", "", nil).want(t, 200) // overloaded is not stopped
	release()
	released = true
	for range absorbed + 1 {
		res := <-results
		if res.err != nil {
			t.Fatal(res.err)
		}
		checkReply(t, res.r)
		res.r.want(t, 201)
	}
	// The 503 was not stored: its key now runs the write.
	wantFresh(t, s.do(t, "POST", "/v1/transfers", s.admin, pay, hdr("Idempotency-Key", refused.key)).want(t, 201))
	s.wantBalance(t, "alice", balance{fmt.Sprint(absorbed + 2), fmt.Sprint(absorbed + 2), "0", "0"})
	t.Logf("the engine took %d writes behind the held commit", absorbed)
}

// TestIdempotencyExpiry moves the service's clock past the TTL: the key answers afresh,
// and the sweep deletes the expired answer.
func TestIdempotencyExpiry(t *testing.T) {
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	s := openStackWith(t, t.TempDir(), engine.Options{}, service.Options{IdempotencyTTL: time.Hour, Now: now})
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	pay := `{"source":"treasury","destination":"alice","amount":"1"}`
	key := hdr("Idempotency-Key", "k")
	first := s.do(t, "POST", "/v1/transfers", s.admin, pay, key).want(t, 201)
	skew.Store(int64(59 * time.Minute))
	wantReplay(t, s.do(t, "POST", "/v1/transfers", s.admin, pay, key), first)
	if n, err := s.svc.SweepIdempotency(context.Background()); err != nil || n != 0 {
		t.Errorf("sweep before the TTL: %d, %v", n, err)
	}
	skew.Store(int64(61 * time.Minute))
	if n, err := s.svc.SweepIdempotency(context.Background()); err != nil || n != 1 {
		t.Errorf("sweep after the TTL: %d, %v; want 1", n, err)
	}
	again := s.do(t, "POST", "/v1/transfers", s.admin, pay, key).want(t, 201)
	wantFresh(t, again)
	if string(again.Body) == string(first.Body) {
		t.Errorf("an expired key was replayed")
	}
	s.wantBalance(t, "alice", balance{"2", "2", "0", "0"})
}

// TestIdempotencyClientGone: a client that gives up on a request with an Idempotency-Key
// while its batch is committing must not free the key: a retry stays in_flight until the
// engine has answered, then replays. Money moves once.
func TestIdempotencyClientGone(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	body := `{"source":"treasury","destination":"alice","amount":"5"}`
	key := hdr("Idempotency-Key", "gone")

	entered, release := s.store.holdNextCommit()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", s.srv.URL+"/v1/transfers", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.admin)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "gone")
	gone := make(chan error, 1)
	go func() {
		resp, err := s.http.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	select {
	case <-entered:
	case <-time.After(time.Minute):
		release()
		t.Fatal("the first request never reached the store's Commit")
	}
	cancel() // the client goes away while its write is being committed
	if err := <-gone; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	s.do(t, "POST", "/v1/transfers", s.admin, body, key).wantProblem(t, 409, "idempotency_in_flight")
	release()
	eventually(t, 15*time.Second, "the first write to be answered", func() bool {
		r, err := s.send("POST", "/v1/transfers", s.admin, body, key)
		return err == nil && r.Status == 201 && r.Header.Get("Idempotent-Replayed") == "true"
	})
	s.wantBalance(t, "alice", balance{"5", "5", "0", "0"})
}
