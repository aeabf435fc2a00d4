package pgstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/pgtest"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
	"github.com/tpwallet/tpwallet/internal/store/storetest"
)

var _ engine.Store = (*pgstore.Store)(nil)

func newDatabase(tb testing.TB) string { return pgtest.NewDatabase(tb) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dsn := newDatabase(t)
		return func() (engine.Store, error) {
			return pgstore.Open(context.Background(), dsn, pgstore.Options{})
		}
	})
}

// TestSchemaVersion checks that Open applies the migrations once, and refuses a database
// whose schema is newer than this build's.
func TestSchemaVersion(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	for range 2 { // the second Open finds the schema in place
		s, err := pgstore.Open(ctx, dsn, pgstore.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		s.Close()
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `INSERT INTO schema_version (version, name) VALUES (99, '0099_future.sql')`); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.Open(ctx, dsn, pgstore.Options{})
	var v *pgstore.SchemaVersionError
	if !errors.As(err, &v) || v.Database != 99 {
		t.Fatalf("Open of a newer schema: got %v, want a SchemaVersionError naming 99", err)
	}
}

// TestLoadRefusesCorruptHead checks that Load refuses a head record that does not hash to
// its hash.
func TestLoadRefusesCorruptHead(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	s, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, head, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := st.Apply(1_767_225_600e9, []ledger.Command{{Requests: []ledger.Request{{Op: ledger.OpCreateAccount,
		Account: ledger.AccountRequest{ID: "alice", Owner: "user:alice", Asset: "USD"}}}}})
	r := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: b.Time, Changes: b.Changes}
	journal.Seal(r)
	if err := s.Commit(ctx, &journal.Commit{Record: r, Accounts: b.Touched}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	// The analyst's view: plain columns.
	var owner, posted string
	if err := c.QueryRow(ctx, `SELECT owner, posted::text FROM accounts WHERE id = 'alice'`).Scan(&owner, &posted); err != nil ||
		owner != "user:alice" || posted != "0" {
		t.Errorf("accounts row: owner %q posted %q (%v)", owner, posted, err)
	}
	if _, err := c.Exec(ctx, `UPDATE journal SET record = set_byte(record, length(record) - 1,
		get_byte(record, length(record) - 1) # 1) WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	var ce *journal.CorruptionError
	if _, _, err := s.Load(ctx); !errors.As(err, &ce) || ce.Seq != 1 {
		t.Fatalf("Load of a corrupt head record: got %v, want a CorruptionError naming record 1", err)
	}
}

// TestCommitAllOrNothing checks that a statement failing after the head's advance, late in
// the commit's single pipeline, rolls back everything before it: the implicit transaction
// the pipeline runs in is the whole commit.
func TestCommitAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, err := pgstore.Open(ctx, newDatabase(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, head, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := st.Apply(1_767_225_600e9, []ledger.Command{{Requests: []ledger.Request{
		{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "bank", Owner: "platform", Asset: "USD",
			AllowNegative: true}},
		{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "alice", Owner: "user:alice", Asset: "USD"}},
		{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{ID: "t1", Source: "bank", Destination: "alice",
			Amount: ledger.AmountFromUint64(5)}},
	}}})
	first := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: b.Time, Changes: b.Changes}
	journal.Seal(first)
	if err := s.Commit(ctx, &journal.Commit{Record: first, Accounts: b.Touched}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	// The second record follows the head, but its transfer's activity rows reuse t1's
	// (account, time): the activity insert, after the head's advance and the transfers
	// upsert, fails.
	c := first.Changes[len(first.Changes)-1]
	t2 := *c.Transfer
	t2.ID = "t2"
	c.Transfer = &t2
	second := &journal.Record{Seq: first.Seq + 1, PrevHash: first.Hash, Timestamp: c.Time,
		Changes: []ledger.Change{c}}
	journal.Seal(second)
	if err := s.Commit(ctx, &journal.Commit{Record: second}); err == nil {
		t.Fatal("Commit with a duplicate activity row: got nil, want an error")
	}
	if h, err := s.Head(ctx); err != nil || h.Seq != first.Seq || h.Hash != first.Hash {
		t.Errorf("head after the failed commit: got %+v (%v), want record %d", h, err, first.Seq)
	}
	if _, err := s.Transfer(ctx, "t2"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Transfer(t2) after the failed commit: got %v, want ErrNotFound", err)
	}
	if rs, err := s.Journal(ctx, 0, 10); err != nil || len(rs) != 1 {
		t.Errorf("journal after the failed commit: got %d records (%v), want 1", len(rs), err)
	}
}
