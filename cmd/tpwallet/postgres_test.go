package main_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/pgtest"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
)

// freshDatabase creates an empty database on the local PostgreSQL and drops it after the
// test. Without PostgreSQL the test fails: scripts/services.sh starts it.
func freshDatabase(t *testing.T) string { return pgtest.NewDatabase(t) }

// TestServePostgres runs serve on PostgreSQL (--store): transfers and a hold survive a
// restart, and the balances are plain rows an analyst can query.
func TestServePostgres(t *testing.T) {
	url := freshDatabase(t)
	p := startServe(t, t.TempDir(), "--store", url)
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "bank", "asset": "USD", "allow_negative": true}, nil, 201)
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "alice", "asset": "USD"}, nil, 201)
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"id": "t1", "source": "bank", "destination": "alice", "amount": "1000"}, nil, 201)
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"id": "h1", "source": "alice", "destination": "bank", "amount": "300",
		"hold": map[string]any{"timeout_seconds": 0}}, nil, 201)
	p.stop(t)

	p = startServe(t, t.TempDir(), "--store", url)
	var a accountOut
	p.mustCall(t, "GET", "/v1/accounts/alice", nil, &a, 200)
	if a.Balance.Posted != "1000" || a.Balance.Available != "700" {
		t.Fatalf("alice after restart: got %+v, want posted 1000, available 700", a.Balance)
	}
	p.mustCall(t, "POST", "/v1/transfers/h1/post", nil, nil, 200)
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"id": "t1", "source": "bank", "destination": "alice", "amount": "1000"}, nil, 200)
	p.stop(t)

	out, err := exec.Command(binPath, "verify", "--store", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: ") {
		t.Fatalf("tpwallet verify --store: %v\n%s", err, out)
	}

	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var posted string
	if err := c.QueryRow(ctx, "SELECT (credits_posted - debits_posted)::text FROM accounts WHERE id = 'alice'").Scan(&posted); err != nil {
		t.Fatal(err)
	}
	if posted != "700" {
		t.Fatalf("alice's posted balance in SQL: got %s, want 700", posted)
	}
}

// TestVerifyPostgresFindsTampering changes a balance row behind the ledger's back: verify
// --store must fail and name the account.
func TestVerifyPostgresFindsTampering(t *testing.T) {
	url := freshDatabase(t)
	p := startServe(t, t.TempDir(), "--store", url)
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "bank", "asset": "USD", "allow_negative": true}, nil, 201)
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "alice", "asset": "USD"}, nil, 201)
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"source": "bank", "destination": "alice", "amount": "10"}, nil, 201)
	p.stop(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	// Rewrite alice's stored record with a larger credit, as a tamperer with SQL access could.
	var raw []byte
	if err := c.QueryRow(ctx, "SELECT record FROM accounts WHERE id = 'alice'").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	a, err := journal.DecodeAccount(raw)
	if err != nil {
		t.Fatal(err)
	}
	a.CreditsPosted = ledger.AmountFromUint64(1_000_000)
	if _, err := c.Exec(ctx, "UPDATE accounts SET record = $1, credits_posted = 1000000 WHERE id = 'alice'",
		journal.AppendAccount(nil, a)); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binPath, "verify", "--store", url).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "alice") {
		t.Fatalf("verify of a tampered balance: got %v, want a failure naming alice\n%s", err, out)
	}
}

func TestMigrate(t *testing.T) {
	url := freshDatabase(t)
	for i := 0; i < 2; i++ { // a second run finds nothing to do
		out, err := exec.Command(binPath, "migrate", "--store", url).CombinedOutput()
		want := fmt.Sprintf("schema at version %d", pgstore.LatestSchema())
		if err != nil || pgstore.LatestSchema() < 5 || !strings.Contains(string(out), want) {
			t.Fatalf("migrate run %d: %v\n%s", i+1, err, out)
		}
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `INSERT INTO schema_version (version, name) VALUES (99, '0099_future.sql')`); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binPath, "migrate", "--store", url).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "99") {
		t.Fatalf("migrate of a newer schema: got %v, want a refusal naming version 99\n%s", err, out)
	}
}

// TestCrashRecoveryPostgres is the SIGKILL crash test on the PostgreSQL store: every
// acknowledged transfer present exactly once after each restart, balances consistent,
// verify --store passes.
func TestCrashRecoveryPostgres(t *testing.T) {
	url := freshDatabase(t)
	crashRecovery(t, t.TempDir(), []string{"--store", url})
}
