package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/client"
)

// Retries against a real server behind a proxy that drops connections and answers 503 and
// 429: every retried write carries one Idempotency-Key, so nothing is applied twice.

// fast retries quickly (the proxy's synthetic answers carry no Retry-After unless a test
// sets one), and records every retry.
type retryLog struct {
	mu      sync.Mutex
	retries []client.Retry
}

func (l *retryLog) policy(p client.RetryPolicy) client.RetryPolicy {
	if p.BaseDelay == 0 {
		p.BaseDelay, p.MaxDelay = time.Millisecond, 5*time.Millisecond
	}
	p.OnRetry = func(r client.Retry) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.retries = append(l.retries, r)
	}
	return p
}

func (l *retryLog) get() []client.Retry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]client.Retry(nil), l.retries...)
}

func isPost(r *http.Request) bool { return r.Method == http.MethodPost }

// wantOneKey checks that every request the proxy saw carried the same Idempotency-Key, key.
func wantOneKey(t *testing.T, seen []seenRequest, key string) {
	t.Helper()
	if key == "" {
		t.Fatal("the call carried no Idempotency-Key")
	}
	for i, s := range seen {
		if !s.hasKey || s.idempotencyKey != key {
			t.Errorf("attempt %d carried key %q (present %v), want %q", i+1, s.idempotencyKey, s.hasKey, key)
		}
	}
}

// TestRetryDroppedWrites drops the connection of each write twice after the server applied
// it; the third attempt gets the stored answer, and the ledger shows the write once.
func TestRetryDroppedWrites(t *testing.T) {
	srv := newServer(t)
	direct := newClient(t, srv.URL)
	proxy := newFaultProxy(t, srv.URL)
	var log retryLog
	c := newClient(t, proxy.URL, client.WithRetryPolicy(log.policy(client.RetryPolicy{})))
	ctx := t.Context()
	treasury, users := funded(t, direct, "USD", 2, "1000")
	alice, bob := users[0], users[1]
	hold := func() string {
		return mustTransfer(t, direct, client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("100"),
			Hold: &client.Hold{}}).ID
	}

	for _, tc := range []struct {
		name  string
		opts  []client.CallOption
		setup func() string // an id the call works on
		call  func(id string, opts ...client.CallOption) error
		check func(id string) // the write shows once
	}{
		{name: "create account", setup: func() string { return uid("user:drop") },
			call: func(owner string, opts ...client.CallOption) error {
				_, err := c.CreateAccount(ctx, client.CreateAccountRequest{Owner: owner, Asset: "USD"}, opts...)
				return err
			},
			check: func(owner string) {
				p, err := direct.ListAccounts(ctx, client.ListAccountsParams{Owner: owner})
				if err != nil || len(p.Items) != 1 {
					t.Errorf("accounts of %s: %+v, %v; want one", owner, p, err)
				}
			}},
		{name: "create transfer", setup: func() string { return "" },
			call: func(_ string, opts ...client.CallOption) error {
				_, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("7")}, opts...)
				return err
			},
			check: func(string) { wantBalance(t, direct, alice, "993", "993") }},
		{name: "create transfer with the caller's key", opts: []client.CallOption{client.WithIdempotencyKey(uid("checkout"))},
			setup: func() string { return "" },
			call: func(_ string, opts ...client.CallOption) error {
				_, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("3")}, opts...)
				return err
			},
			check: func(string) { wantBalance(t, direct, alice, "990", "990") }},
		{name: "create hold", setup: func() string { return "" },
			call: func(_ string, opts ...client.CallOption) error {
				_, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("40"),
					Hold: &client.Hold{Timeout: time.Hour}}, opts...)
				return err
			},
			check: func(string) { wantBalance(t, direct, alice, "990", "950") }},
		{name: "post part of a hold", setup: hold,
			call: func(id string, opts ...client.CallOption) error {
				_, err := c.PostTransfer(ctx, id, client.PostTransferRequest{Amount: amt("10"), NotFinal: true}, opts...)
				return err
			},
			check: func(id string) {
				if tr, err := direct.GetTransfer(ctx, id); err != nil || tr.AmountPosted != amt("10") || tr.Status != client.StatusPending {
					t.Errorf("after the post: %+v, %v; want 10 posted, still pending", tr, err)
				}
			}},
		{name: "increase a hold", setup: hold,
			call: func(id string, opts ...client.CallOption) error {
				_, err := c.IncreaseTransfer(ctx, id, amt("5"), opts...)
				return err
			},
			check: func(id string) {
				if tr, err := direct.GetTransfer(ctx, id); err != nil || tr.Amount != amt("105") {
					t.Errorf("after the increase: %+v, %v; want 105 held", tr, err)
				}
			}},
		{name: "void a hold", setup: hold,
			call: func(id string, opts ...client.CallOption) error {
				_, err := c.VoidTransfer(ctx, id, opts...)
				return err
			},
			check: func(id string) {
				if tr, err := direct.GetTransfer(ctx, id); err != nil || tr.Status != client.StatusVoided {
					t.Errorf("after the void: %+v, %v", tr, err)
				}
			}},
		{name: "atomic batch", setup: func() string {
			return mustAccount(t, direct, client.CreateAccountRequest{ID: uid("u"), Asset: "USD"}).ID
		},
			call: func(id string, opts ...client.CallOption) error {
				_, err := c.CreateBatchAtomic(ctx, []client.CreateTransferRequest{
					{Source: treasury, Destination: id, Amount: amt("20")},
					{Source: id, Destination: bob, Amount: amt("15")},
				}, opts...)
				return err
			},
			check: func(id string) {
				wantBalance(t, direct, id, "5", "5")
				if n := transferCount(t, direct, id); n != 2 {
					t.Errorf("%d transfers of %s, want 2", n, id)
				}
			}},
		{name: "batch", setup: func() string {
			return mustAccount(t, direct, client.CreateAccountRequest{ID: uid("u"), Asset: "USD"}).ID
		},
			call: func(id string, opts ...client.CallOption) error {
				res, err := c.CreateBatch(ctx, []client.CreateTransferRequest{
					{Source: treasury, Destination: id, Amount: amt("20")},
					{Source: id, Destination: bob, Amount: amt("25")},
				}, opts...)
				if err == nil && (res[0].Err != nil || !errors.Is(res[1].Err, client.ErrInsufficientFunds)) {
					t.Errorf("batch results %+v", res)
				}
				return err
			},
			check: func(id string) { wantBalance(t, direct, id, "20", "20") }},
		{name: "freeze", setup: func() string { return bob },
			call: func(id string, opts ...client.CallOption) error {
				_, err := c.FreezeAccount(ctx, id, opts...)
				return err
			},
			check: func(id string) {
				if a := mustGetAccount(t, direct, id); a.Status != client.AccountFrozen {
					t.Errorf("status %s, want frozen", a.Status)
				}
			}},
		{name: "unfreeze", setup: func() string { return bob },
			call: func(id string, opts ...client.CallOption) error {
				_, err := c.UnfreezeAccount(ctx, id, opts...)
				return err
			},
			check: func(id string) {
				if a := mustGetAccount(t, direct, id); a.Status != client.AccountActive {
					t.Errorf("status %s, want active", a.Status)
				}
			}},
		{name: "create asset", setup: func() string { return "DROP" },
			call: func(code string, opts ...client.CallOption) error {
				_, err := c.CreateAsset(ctx, client.Asset{Code: code, Scale: 4}, opts...)
				return err
			},
			check: func(code string) {
				all, err := direct.ListAssets(ctx)
				if err != nil || !slices.Contains(all, client.Asset{Code: code, Scale: 4}) {
					t.Errorf("assets %v, %v; want %s", all, err, code)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.setup()
			head := headSeq(t, direct)
			proxy.reset()
			proxy.setPlan(isPost, fault{kind: dropAfter}, fault{kind: dropAfter})
			var m client.Meta
			if err := tc.call(id, append(tc.opts, client.WithMeta(&m))...); err != nil {
				t.Fatalf("the call failed: %v (%+v)", err, m)
			}
			if m.Attempts != 3 || !m.Replayed || m.Status >= 300 {
				t.Errorf("meta %+v: want 3 attempts and a replayed success", m)
			}
			seen := slices.DeleteFunc(proxy.requests(), func(s seenRequest) bool { return s.method != http.MethodPost })
			if len(seen) != 3 || seen[0].status >= 300 || seen[0].replayed || !seen[1].replayed || !seen[2].replayed {
				t.Errorf("the proxy saw %+v: want the write applied once, then replayed twice", seen)
			}
			wantOneKey(t, seen, m.IdempotencyKey)
			for _, s := range seen[1:] {
				if s.body != seen[0].body {
					t.Errorf("a retry sent %s, the first attempt %s", s.body, seen[0].body)
				}
			}
			if got := headSeq(t, direct); got != head+1 {
				t.Errorf("journal head %d → %d: want one record", head, got)
			}
			tc.check(id)
		})
	}
}

// TestRetryDroppedBeforeTheServer: a request lost on its way is sent again and applied once,
// with no replay (the server never saw the first).
func TestRetryDroppedBeforeTheServer(t *testing.T) {
	srv := newServer(t)
	direct := newClient(t, srv.URL)
	proxy := newFaultProxy(t, srv.URL)
	var log retryLog
	c := newClient(t, proxy.URL, client.WithRetryPolicy(log.policy(client.RetryPolicy{})))
	_, users := funded(t, direct, "USD", 2, "100")
	head := headSeq(t, direct)
	proxy.setPlan(isPost, fault{kind: dropBefore})
	var m client.Meta
	if _, err := c.CreateTransfer(t.Context(), client.CreateTransferRequest{Source: users[0], Destination: users[1],
		Amount: amt("60")}, client.WithMeta(&m)); err != nil {
		t.Fatal(err)
	}
	if m.Attempts != 2 || m.Replayed || m.Status != 201 {
		t.Errorf("meta %+v: want 2 attempts, a fresh 201", m)
	}
	wantOneKey(t, proxy.requests(), m.IdempotencyKey)
	if r := log.get(); len(r) != 1 || r[0].Attempt != 1 || r[0].IdempotencyKey != m.IdempotencyKey || r[0].Operation != "createTransfer" {
		t.Errorf("retries %+v", r)
	}
	if got := headSeq(t, direct); got != head+1 {
		t.Errorf("journal head %d → %d: want one record", head, got)
	}
	wantBalance(t, direct, users[0], "40", "40")
}

// TestRetryGaveUpThenResumed: every attempt's answer is lost, so the call fails — though the
// server applied the first. Sent again later with the key from Meta, it is replayed, not
// applied again.
func TestRetryGaveUpThenResumed(t *testing.T) {
	srv := newServer(t)
	direct := newClient(t, srv.URL)
	proxy := newFaultProxy(t, srv.URL)
	var log retryLog
	c := newClient(t, proxy.URL, client.WithRetryPolicy(log.policy(client.RetryPolicy{MaxAttempts: 3})))
	_, users := funded(t, direct, "USD", 2, "100")
	req := client.CreateTransferRequest{Source: users[0], Destination: users[1], Amount: amt("60")}
	proxy.setPlan(isPost, fault{kind: dropAfter}, fault{kind: dropAfter}, fault{kind: dropAfter})
	var m client.Meta
	_, err := c.CreateTransfer(t.Context(), req, client.WithMeta(&m))
	if err == nil || client.CodeOf(err) != "" || m.Attempts != 3 {
		t.Fatalf("err %v, meta %+v: want a network error after 3 attempts", err, m)
	}
	wantBalance(t, direct, users[0], "40", "40") // the first attempt was applied
	var m2 client.Meta
	tr, err := c.CreateTransfer(t.Context(), req, client.WithIdempotencyKey(m.IdempotencyKey), client.WithMeta(&m2))
	if err != nil || !m2.Replayed || m2.Attempts != 1 {
		t.Fatalf("resumed: %+v, %v, %+v: want the replayed answer", tr, err, m2)
	}
	wantBalance(t, direct, users[0], "40", "40")
	if n := transferCount(t, direct, users[0]); n != 2 {
		t.Errorf("%d transfers, want the top-up and one payment", n)
	}
}

// TestRetryServerAnswers: each answer that says "try again" is retried with the same key,
// and the write then applies once; answers that are decisions are not retried.
func TestRetryServerAnswers(t *testing.T) {
	srv := newServer(t)
	direct := newClient(t, srv.URL)
	proxy := newFaultProxy(t, srv.URL)
	var log retryLog
	c := newClient(t, proxy.URL, client.WithRetryPolicy(log.policy(client.RetryPolicy{MaxAttempts: 10})))
	ctx := t.Context()
	_, users := funded(t, direct, "USD", 2, "100")
	pay := client.CreateTransferRequest{Source: users[0], Destination: users[1], Amount: amt("1")}

	t.Run("retried", func(t *testing.T) {
		head := headSeq(t, direct)
		proxy.reset()
		faults := []fault{
			{kind: answer, status: 503, code: "overloaded", retryAfter: "0"},
			{kind: answer, status: 429, code: "rate_limited", retryAfter: "0"},
			{kind: answer, status: 409, code: "idempotency_in_flight"},
			{kind: answer, status: 503, code: "unavailable"},
			{kind: answer, status: 503, code: "not_leader"},
			{kind: answer, status: 502},
			{kind: answer, status: 504},
			{kind: answer, status: 429},
		}
		proxy.setPlan(isPost, faults...)
		var m client.Meta
		if _, err := c.CreateTransfer(ctx, pay, client.WithMeta(&m)); err != nil {
			t.Fatal(err)
		}
		if m.Attempts != len(faults)+1 || m.Replayed || m.Status != 201 {
			t.Errorf("meta %+v: want %d attempts", m, len(faults)+1)
		}
		wantOneKey(t, proxy.requests(), m.IdempotencyKey)
		if got := headSeq(t, direct); got != head+1 {
			t.Errorf("journal head %d → %d: want one record", head, got)
		}
	})

	t.Run("not retried", func(t *testing.T) {
		for _, f := range []fault{
			{kind: answer, status: 500, code: "internal"},
			{kind: answer, status: 422, code: "insufficient_funds"},
			{kind: answer, status: 400, code: "invalid_request"},
			{kind: answer, status: 404},
		} {
			proxy.reset()
			proxy.setPlan(isPost, f)
			var m client.Meta
			_, err := c.CreateTransfer(ctx, pay, client.WithMeta(&m))
			var e *client.Error
			if !errors.As(err, &e) || e.Status != f.status || string(e.Code) != f.code || m.Attempts != 1 || len(proxy.requests()) != 1 {
				t.Errorf("answer %d %s: err %v, meta %+v, want it returned after one attempt", f.status, f.code, err, m)
			}
		}
	})

	t.Run("Retry-After", func(t *testing.T) {
		proxy.reset()
		log.mu.Lock()
		log.retries = nil
		log.mu.Unlock()
		proxy.setPlan(isPost, fault{kind: answer, status: 503, code: "overloaded", retryAfter: "1"})
		start := time.Now()
		var m client.Meta
		if _, err := c.CreateTransfer(ctx, pay, client.WithMeta(&m)); err != nil {
			t.Fatal(err)
		}
		r := log.get()
		if len(r) != 1 || r[0].Delay != time.Second || !errors.Is(r[0].Err, client.ErrOverloaded) {
			t.Errorf("retries %+v: want one after the server's 1 s", r)
		}
		if e := time.Since(start); e < time.Second {
			t.Errorf("the call took %v, less than Retry-After", e)
		}
	})

	t.Run("reads", func(t *testing.T) {
		proxy.reset()
		proxy.setPlan(nil, fault{kind: dropAfter}, fault{kind: answer, status: 503, code: "overloaded", retryAfter: "0"})
		var m client.Meta
		a, err := c.GetAccount(ctx, users[0], client.WithMeta(&m))
		if err != nil || a.ID != users[0] || m.Attempts != 3 || m.IdempotencyKey != "" {
			t.Errorf("GetAccount = %+v, %v, %+v: want it after 3 attempts", a, err, m)
		}
		for _, s := range proxy.requests() {
			if s.hasKey {
				t.Errorf("a read carried Idempotency-Key %q", s.idempotencyKey)
			}
		}
	})

	t.Run("request id on every attempt", func(t *testing.T) {
		proxy.reset()
		proxy.setPlan(isPost, fault{kind: dropAfter})
		var m client.Meta
		if _, err := c.CreateTransfer(ctx, pay, client.WithRequestID("req-77"), client.WithMeta(&m)); err != nil {
			t.Fatal(err)
		}
		for _, s := range proxy.requests() {
			if s.requestID != "req-77" {
				t.Errorf("an attempt carried X-Request-Id %q", s.requestID)
			}
		}
		if m.RequestID != "req-77" {
			t.Errorf("meta %+v", m)
		}
	})
}

// TestRetryPolicyLimits: the policy and the context bound the attempts and the waits.
func TestRetryPolicyLimits(t *testing.T) {
	srv := newServer(t)
	direct := newClient(t, srv.URL)
	proxy := newFaultProxy(t, srv.URL)
	_, users := funded(t, direct, "USD", 2, "100")
	pay := client.CreateTransferRequest{Source: users[0], Destination: users[1], Amount: amt("1")}
	overloaded := func(retryAfter string) fault {
		return fault{kind: answer, status: 503, code: "overloaded", retryAfter: retryAfter}
	}
	always := func(f fault) []fault { return slices.Repeat([]fault{f}, 100) }

	t.Run("max attempts", func(t *testing.T) {
		head := headSeq(t, direct)
		proxy.reset()
		proxy.setPlan(isPost, always(overloaded("0"))...)
		var log retryLog
		c := newClient(t, proxy.URL, client.WithRetryPolicy(log.policy(client.RetryPolicy{MaxAttempts: 3})))
		var m client.Meta
		_, err := c.CreateTransfer(t.Context(), pay, client.WithMeta(&m))
		wantCode(t, err, client.ErrOverloaded, client.CodeOverloaded)
		if m.Attempts != 3 || len(proxy.requests()) != 3 || len(log.get()) != 2 {
			t.Errorf("meta %+v, %d requests, %d retries: want 3 attempts", m, len(proxy.requests()), len(log.get()))
		}
		if got := headSeq(t, direct); got != head {
			t.Errorf("journal head %d → %d: want nothing applied", head, got)
		}
	})

	t.Run("NoRetry", func(t *testing.T) {
		proxy.reset()
		proxy.setPlan(isPost, always(overloaded("0"))...)
		c := newClient(t, proxy.URL, client.WithRetryPolicy(client.NoRetry))
		var m client.Meta
		_, err := c.CreateTransfer(t.Context(), pay, client.WithMeta(&m))
		wantCode(t, err, client.ErrOverloaded, client.CodeOverloaded)
		if m.Attempts != 1 {
			t.Errorf("meta %+v", m)
		}
		// The call's own policy overrides the client's.
		proxy.reset()
		proxy.setPlan(isPost, overloaded("0"))
		if _, err := c.CreateTransfer(t.Context(), pay, client.WithMeta(&m),
			client.WithCallRetryPolicy(client.RetryPolicy{BaseDelay: time.Millisecond})); err != nil || m.Attempts != 2 {
			t.Errorf("with a call policy: %v, %+v", err, m)
		}
	})

	t.Run("max elapsed", func(t *testing.T) {
		proxy.reset()
		proxy.setPlan(isPost, always(overloaded("30"))...)
		var log retryLog
		c := newClient(t, proxy.URL, client.WithRetryPolicy(log.policy(client.RetryPolicy{MaxElapsed: 5 * time.Second})))
		var m client.Meta
		_, err := c.CreateTransfer(t.Context(), pay, client.WithMeta(&m))
		wantCode(t, err, client.ErrOverloaded, client.CodeOverloaded)
		if m.Attempts != 1 || len(log.get()) != 0 {
			t.Errorf("meta %+v, retries %+v: a 30 s wait outlasts 5 s, so no retry", m, log.get())
		}
		// A context deadline bounds it too.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		c = newClient(t, proxy.URL, client.WithRetryPolicy(log.policy(client.RetryPolicy{})))
		_, err = c.CreateTransfer(ctx, pay, client.WithMeta(&m))
		wantCode(t, err, client.ErrOverloaded, client.CodeOverloaded)
		if m.Attempts != 1 || len(log.get()) != 0 {
			t.Errorf("meta %+v, retries %+v: the wait outlasts the context, so no retry", m, log.get())
		}
	})

	t.Run("cancelled while waiting", func(t *testing.T) {
		proxy.reset()
		proxy.setPlan(isPost, always(overloaded("20"))...)
		ctx, cancel := context.WithCancel(t.Context())
		c := newClient(t, proxy.URL, client.WithRetryPolicy(client.RetryPolicy{OnRetry: func(client.Retry) { cancel() }}))
		_, err := c.CreateTransfer(ctx, pay)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, client.ErrOverloaded) {
			t.Errorf("err %v: want both the cancellation and the last answer", err)
		}
	})

	t.Run("backoff", func(t *testing.T) {
		proxy.reset()
		proxy.setPlan(isPost, always(fault{kind: dropBefore})[:6]...)
		var log retryLog
		base, ceil := 8*time.Millisecond, 20*time.Millisecond
		c := newClient(t, proxy.URL, client.WithRetryPolicy(log.policy(client.RetryPolicy{BaseDelay: base, MaxDelay: ceil})))
		if _, err := c.CreateTransfer(t.Context(), pay); err != nil {
			t.Fatal(err)
		}
		r := log.get()
		if len(r) != 6 {
			t.Fatalf("%d retries, want 6", len(r))
		}
		for i, x := range r {
			bound := min(base<<i, ceil)
			if x.Delay < 0 || x.Delay >= bound || x.Attempt != i+1 {
				t.Errorf("retry %d waited %v, want [0, %v)", x.Attempt, x.Delay, bound)
			}
		}
	})

	t.Run("no server", func(t *testing.T) {
		// Nothing listens: every dial fails, which surely sent nothing, so even an
		// operation without a stored key is retried.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := newClient(t, "http://"+addr, client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond}))
		var m client.Meta
		_, err = c.CreateAPIKey(t.Context(), client.CreateAPIKeyRequest{Scopes: []client.Scope{client.ScopeRead}}, client.WithMeta(&m))
		var op *net.OpError
		if !errors.As(err, &op) || m.Attempts != 3 {
			t.Errorf("err %v, meta %+v: want a dial error after 3 attempts", err, m)
		}
	})
}

// TestRetryAPIKeys: the server keeps no Idempotency-Key for POST /v1/api-keys, so the SDK
// does not retry it once an attempt may have reached the server; DELETE is retried, and a
// retry that finds the key gone counts as done.
func TestRetryAPIKeys(t *testing.T) {
	srv := newServer(t)
	direct := newClient(t, srv.URL)
	proxy := newFaultProxy(t, srv.URL)
	c := newClient(t, proxy.URL, client.WithRetryPolicy(client.RetryPolicy{BaseDelay: time.Millisecond}))
	ctx := t.Context()
	keyNamed := func(name string) []client.APIKey {
		var out []client.APIKey
		for k, err := range direct.APIKeys(ctx, client.ListParams{}) {
			if err != nil {
				t.Fatal(err)
			}
			if k.Name == name {
				out = append(out, *k)
			}
		}
		return out
	}

	proxy.setPlan(isPost, fault{kind: dropAfter})
	var m client.Meta
	_, err := c.CreateAPIKey(ctx, client.CreateAPIKeyRequest{Name: "dropped", Scopes: []client.Scope{client.ScopeRead}}, client.WithMeta(&m))
	if err == nil || client.CodeOf(err) != "" || m.Attempts != 1 || len(proxy.requests()) != 1 {
		t.Errorf("err %v, meta %+v: want the network error, after one attempt", err, m)
	}
	if n := len(keyNamed("dropped")); n != 1 {
		t.Errorf("%d keys named dropped: want the one the lost attempt made (a retry would have made two)", n)
	}

	proxy.reset()
	proxy.setPlan(isPost, fault{kind: answer, status: 429, code: "rate_limited", retryAfter: "0"},
		fault{kind: answer, status: 503, code: "overloaded", retryAfter: "0"})
	k, err := c.CreateAPIKey(ctx, client.CreateAPIKeyRequest{Name: "limited", Scopes: []client.Scope{client.ScopeRead}}, client.WithMeta(&m))
	if err != nil || m.Attempts != 3 || len(keyNamed("limited")) != 1 {
		t.Fatalf("after 429 and 503: %+v, %v, %+v: want one key after 3 attempts", k, err, m)
	}

	proxy.reset()
	proxy.setPlan(func(r *http.Request) bool { return r.Method == http.MethodDelete }, fault{kind: dropAfter})
	if err := c.DeleteAPIKey(ctx, k.ID, client.WithMeta(&m)); err != nil || m.Attempts != 2 {
		t.Errorf("DeleteAPIKey after a lost answer: %v, %+v: want done after 2 attempts", err, m)
	}
	if n := len(keyNamed("limited")); n != 0 {
		t.Errorf("the key is still there")
	}
	seen := proxy.requests()
	if len(seen) != 2 || seen[0].status != 204 || seen[1].status != 404 {
		t.Errorf("the proxy saw %+v: want 204 (lost) then 404", seen)
	}
	wantCode(t, c.DeleteAPIKey(ctx, k.ID), client.ErrNotFound, client.CodeNotFound)
}

// TestRetryRealRateLimit: a server with --rate-limit answers 429 with Retry-After; the SDK
// waits as told and every write lands once.
func TestRetryRealRateLimit(t *testing.T) {
	srv := newServer(t, "--rate-limit", "1", "--rate-burst", "1")
	var log retryLog
	c := newClient(t, srv.URL, client.WithRetryPolicy(log.policy(client.RetryPolicy{})))
	treasury := mustAccount(t, c, client.CreateAccountRequest{ID: "treasury", Asset: "USD", AllowNegative: true}).ID
	alice := mustAccount(t, c, client.CreateAccountRequest{ID: "alice", Asset: "USD"}).ID
	for range 2 {
		mustTransfer(t, c, client.CreateTransferRequest{Source: treasury, Destination: alice, Amount: amt("5")})
	}
	// Four requests within well under a second of each other, at one a second with a burst
	// of one: some were refused and retried.
	limited := 0
	for _, r := range log.get() {
		if errors.Is(r.Err, client.ErrRateLimited) {
			limited++
			if r.Delay != time.Second {
				t.Errorf("retry %+v: want the server's Retry-After of 1 s", r)
			}
		}
	}
	if limited == 0 {
		t.Errorf("no 429 among %+v", log.get())
	}
	wantBalance(t, c, alice, "10", "10")
	if n := transferCount(t, c, alice); n != 2 {
		t.Errorf("%d transfers, want 2", n)
	}
}

// TestRetryRealOverload: a server with --max-inflight 1, whose one slot a long poll holds,
// answers 503 overloaded; once the poll ends, the retried write lands once.
func TestRetryRealOverload(t *testing.T) {
	srv := newServer(t, "--max-inflight", "1")
	direct := newClient(t, srv.URL)
	_, users := funded(t, direct, "USD", 2, "100")
	head := headSeq(t, direct)

	// The long poll takes the slot until it is cancelled. It may find the slot taken by
	// a probe below, and then tries again at once.
	pollCtx, endPoll := context.WithCancel(t.Context())
	defer endPoll()
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			_, err := direct.ListEvents(pollCtx, client.EventsParams{After: uitoa(head), Wait: 30 * time.Second},
				client.WithCallRetryPolicy(client.NoRetry))
			if !errors.Is(err, client.ErrOverloaded) {
				return
			}
		}
	}()
	// Wait until the server refuses for want of a slot: a probe is a request too, which
	// succeeds while the poll has not yet taken the slot.
	probe := newClient(t, srv.URL, client.WithRetryPolicy(client.NoRetry))
	for {
		_, err := probe.JournalHead(t.Context())
		if errors.Is(err, client.ErrOverloaded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	var retries []client.Retry
	c := newClient(t, srv.URL, client.WithRetryPolicy(client.RetryPolicy{OnRetry: func(r client.Retry) {
		retries = append(retries, r)
		endPoll() // frees the slot for the retry
	}}))
	var m client.Meta
	if _, err := c.CreateTransfer(t.Context(), client.CreateTransferRequest{Source: users[0], Destination: users[1],
		Amount: amt("25")}, client.WithMeta(&m)); err != nil {
		t.Fatal(err)
	}
	<-polled
	if len(retries) == 0 || !errors.Is(retries[0].Err, client.ErrOverloaded) || retries[0].Delay != time.Second {
		t.Errorf("retries %+v: want a first 503 overloaded with Retry-After 1 s", retries)
	}
	if m.Attempts < 2 || m.Replayed {
		t.Errorf("meta %+v", m)
	}
	if got := headSeq(t, direct); got != head+1 {
		t.Errorf("journal head %d → %d: want one record", head, got)
	}
	wantBalance(t, direct, users[0], "75", "75")
}
