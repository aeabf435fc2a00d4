package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
)

func openStore(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// createAccount commits one record creating account id on s, as the engine would.
func createAccount(ctx context.Context, s *pgstore.Store, id string) error {
	st, head, err := s.Load(ctx)
	if err != nil {
		return err
	}
	b := st.Apply(time.Now().UnixNano(), []ledger.Command{{Requests: []ledger.Request{{Op: ledger.OpCreateAccount,
		Account: ledger.AccountRequest{ID: id, Asset: "USD"}}}}})
	r := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: b.Time, Changes: b.Changes}
	journal.Seal(r)
	return s.Commit(ctx, &journal.Commit{Record: r, Accounts: b.Touched})
}

// TestLeaseTakeoverFencesOldLeader checks the lease's whole life: one holder at a time, a
// live lease not taken, a lapsed one taken with a new epoch, and the old holder's commits
// and renewals refused from then on, with nothing written.
func TestLeaseTakeoverFencesOldLeader(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	a, b := openStore(t, dsn), openStore(t, dsn)

	la, ok, err := a.Acquire(ctx, "node-a", "http://a:8080", time.Hour)
	if err != nil || !ok || la.Epoch != 1 || a.Epoch() != 1 {
		t.Fatalf("first Acquire: %+v %v %v, want epoch 1 taken", la, ok, err)
	}
	lb, ok, err := b.Acquire(ctx, "node-b", "http://b:8080", time.Hour)
	if err != nil || ok || lb.Holder != "node-a" || lb.Address != "http://a:8080" || !lb.Live || lb.Epoch != 1 {
		t.Fatalf("Acquire of a live lease: %+v %v %v, want refused naming node-a", lb, ok, err)
	}
	if lb.Remaining <= 59*time.Minute {
		t.Errorf("Remaining %v, want about an hour", lb.Remaining)
	}
	if err := createAccount(ctx, a, "acct-1"); err != nil {
		t.Fatalf("leader commit: %v", err)
	}
	// b never held the lease: its epoch 0 is not the row's.
	if err := createAccount(ctx, b, "acct-b"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("commit without the lease: %v, want ErrFenced", err)
	}

	// a's lease lapses (a short renewal), b takes over.
	if err := a.Renew(ctx, time.Microsecond); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		lb, ok, err = b.Acquire(ctx, "node-b", "http://b:8080", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if ok || time.Now().After(deadline) {
			break
		}
	}
	if !ok || lb.Epoch != 2 || b.Epoch() != 2 {
		t.Fatalf("Acquire of a lapsed lease: %+v %v, want epoch 2 taken", lb, ok)
	}

	// a, resumed, is fenced: its commit and renewal fail, and nothing of it is written.
	if err := createAccount(ctx, a, "acct-stale"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("old leader's commit: %v, want ErrFenced", err)
	}
	if err := a.Renew(ctx, time.Hour); !errors.Is(err, pgstore.ErrLeaseLost) {
		t.Fatalf("old leader's Renew: %v, want ErrLeaseLost", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("old leader's Release: %v", err)
	}
	if l, err := b.Leader(ctx); err != nil || !l.Live || l.Holder != "node-b" {
		t.Fatalf("a's Release ended b's lease: %+v %v", l, err)
	}
	if _, err := b.Account(ctx, "acct-stale"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the fenced commit wrote its account: %v", err)
	}
	if err := createAccount(ctx, b, "acct-2"); err != nil {
		t.Fatalf("new leader's commit: %v", err)
	}
	for _, id := range []string{"acct-1", "acct-2"} {
		if _, err := b.Account(ctx, id); err != nil {
			t.Errorf("account %s: %v", id, err)
		}
	}

	// A release hands over at once.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if la, ok, err := a.Acquire(ctx, "node-a", "http://a:8080", time.Hour); err != nil || !ok || la.Epoch != 3 {
		t.Fatalf("Acquire after Release: %+v %v %v, want epoch 3 taken", la, ok, err)
	}
}

// TestLeaseTakeoverWaitsForCommitInFlight checks that a takeover cannot slip between a
// commit's fencing check and its COMMIT: the takeover's UPDATE waits for the commit's share
// lock, and once it has committed the old holder's next commit is refused.
func TestLeaseTakeoverWaitsForCommitInFlight(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	if _, ok, err := a.Acquire(ctx, "node-a", "", time.Microsecond); err != nil || !ok {
		t.Fatalf("Acquire: %v %v", ok, err)
	}
	// Many commits by a while b takes over: every commit either lands before the
	// takeover (and is then visible to b) or is refused.
	type result struct {
		id  string
		err error
	}
	results := make(chan result, 200)
	go func() {
		for i := range 200 {
			id := fmt.Sprintf("acct-%03d", i)
			results <- result{id, createAccount(ctx, a, id)}
		}
		close(results)
	}()
	var took bool
	for !took {
		_, ok, err := b.Acquire(ctx, "node-b", "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		took = ok
	}
	// What b loads just after taking over must hold every commit a ever had acknowledged.
	st, _, err := b.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var landed, refused int
	for r := range results {
		switch {
		case r.err == nil:
			landed++
			if _, ok := st.Account(r.id); !ok {
				t.Errorf("commit of %s acknowledged but not in the state loaded at the takeover", r.id)
			}
		case errors.Is(r.err, store.ErrFenced):
			refused++
			if _, err := b.Account(ctx, r.id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("refused commit of %s wrote it: %v", r.id, err)
			}
		default:
			t.Errorf("commit of %s: %v", r.id, r.err)
		}
	}
	if refused == 0 {
		t.Errorf("no commit refused after the takeover (%d landed)", landed)
	}
}
