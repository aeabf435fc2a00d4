package client_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/client"
)

// TestGRPCRetryDroppedWrites cuts the connection of a gRPC write twice after the server
// answered it (so applied it); the SDK retries on new connections with the same
// idempotency-key, the third attempt gets the stored answer, and the write is applied once.
func TestGRPCRetryDroppedWrites(t *testing.T) {
	t.Parallel()
	direct := sharedClient(t)
	_, users := funded(t, direct, "USD", 2, "100")
	proxy := newH2Proxy(t, grpcTarget)

	var (
		mu      sync.Mutex
		retries []client.Retry
		applied []bool // at each retry: had the server already applied the write?
		check   func() bool
	)
	c := newGRPCClient(t, proxy.Addr, client.WithRetryPolicy(client.RetryPolicy{
		BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond,
		OnRetry: func(r client.Retry) {
			mu.Lock()
			defer mu.Unlock()
			retries = append(retries, r)
			applied = append(applied, check())
		}}))

	cases := []struct {
		name, path string
		key        string // the caller's, or "" for the SDK's own
		call       func(opts ...client.CallOption) error
		applied    func() bool
		after      func()
	}{
		{"transfer", "/tpwallet.v1.TransferService/CreateTransfer", "", func(opts ...client.CallOption) error {
			_, err := c.CreateTransfer(t.Context(), client.CreateTransferRequest{Source: users[0], Destination: users[1],
				Amount: amt("30")}, opts...)
			return err
		}, func() bool {
			a, err := direct.GetAccount(context.Background(), users[0])
			return err == nil && a.Balance.Posted.String() == "70"
		}, func() {
			wantBalance(t, direct, users[0], "70", "70")
			if n := transferCount(t, direct, users[0]); n != 2 { // the top-up and the payment
				t.Errorf("%d transfers, want 2", n)
			}
		}},
		{"account", "/tpwallet.v1.AccountService/CreateAccount", uid("open"), func(opts ...client.CallOption) error {
			// Applied twice, the second would be account_exists, not a replay.
			_, err := c.CreateAccount(t.Context(), client.CreateAccountRequest{ID: users[0] + "-x", Asset: "USD"}, opts...)
			return err
		}, func() bool {
			_, err := direct.GetAccount(context.Background(), users[0]+"-x")
			return err == nil
		}, func() {}},
	}
	for _, tc := range cases {
		mu.Lock()
		retries, applied, check = nil, nil, tc.applied
		mu.Unlock()
		proxy.dropAnswers(tc.path, 2)
		cutsBefore, seenBefore := proxy.cuts(), len(proxy.requests())
		var m client.Meta
		opts := []client.CallOption{client.WithMeta(&m)}
		if tc.key != "" {
			opts = append(opts, client.WithIdempotencyKey(tc.key))
		}
		if err := tc.call(opts...); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := proxy.cuts() - cutsBefore; got != 2 {
			t.Errorf("%s: the proxy cut %d answers, want 2", tc.name, got)
		}
		if m.Attempts != 3 || !m.Replayed || m.IdempotencyKey == "" || (tc.key != "" && m.IdempotencyKey != tc.key) {
			t.Errorf("%s: meta %+v: want 3 attempts, the last replayed, with the key", tc.name, m)
		}
		var attempts []h2Request
		for _, r := range proxy.requests()[seenBefore:] {
			if r.path == tc.path {
				attempts = append(attempts, r)
			}
		}
		if len(attempts) != 3 {
			t.Errorf("%s: the server got %d attempts, want 3", tc.name, len(attempts))
		}
		for i, r := range attempts {
			if !r.hasKey || r.idempotencyKey != m.IdempotencyKey {
				t.Errorf("%s: attempt %d carried idempotency-key %q (present %v), want %q", tc.name, i+1,
					r.idempotencyKey, r.hasKey, m.IdempotencyKey)
			}
		}
		mu.Lock()
		for i, r := range retries {
			if client.CodeOf(r.Err) != "" || r.IdempotencyKey != m.IdempotencyKey || !applied[i] {
				t.Errorf("%s: retry %+v (applied before it: %v): want a network error after the write applied",
					tc.name, r, applied[i])
			}
		}
		if len(retries) != 2 {
			t.Errorf("%s: %d retries, want 2", tc.name, len(retries))
		}
		mu.Unlock()
		tc.after()
	}
}

// TestGRPCRetryConnectionRefused: with no server at all, a read is retried as the policy
// says and ends with the network error, no *Error.
func TestGRPCRetryConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newGRPCClient(t, addr, client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 3,
		BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	var m client.Meta
	_, err = c.JournalHead(t.Context(), client.WithMeta(&m))
	var e *client.Error
	if err == nil || errors.As(err, &e) || m.Attempts != 3 {
		t.Errorf("JournalHead with no server: %v, %+v: want a network error after 3 attempts", err, m)
	}
}

// TestGRPCRetryRealRateLimit: a server with --rate-limit answers ResourceExhausted
// rate_limited with a RetryInfo of 1 s; the SDK waits as told and every write lands once.
func TestGRPCRetryRealRateLimit(t *testing.T) {
	t.Parallel()
	srv := newServer(t, "--rate-limit", "1", "--rate-burst", "1")
	direct := newClient(t, srv.URL) // REST and gRPC calls share the key's rate
	treasury := mustAccount(t, direct, client.CreateAccountRequest{ID: "treasury", Asset: "USD", AllowNegative: true}).ID
	alice := mustAccount(t, direct, client.CreateAccountRequest{ID: "alice", Asset: "USD"}).ID
	var log retryLog
	c := newGRPCClient(t, srv.GRPC, client.WithRetryPolicy(log.policy(client.RetryPolicy{})))
	for range 3 {
		mustTransfer(t, c, client.CreateTransferRequest{Source: treasury, Destination: alice, Amount: amt("5")})
	}
	limited := 0
	for _, r := range log.get() {
		if errors.Is(r.Err, client.ErrRateLimited) {
			limited++
			if r.Delay != time.Second {
				t.Errorf("retry %+v: want the server's RetryInfo of 1 s", r)
			}
		}
	}
	if limited == 0 {
		t.Errorf("no rate_limited among %+v", log.get())
	}
	wantBalance(t, direct, alice, "15", "15")
	if n := transferCount(t, direct, alice); n != 3 {
		t.Errorf("%d transfers, want 3", n)
	}
}
