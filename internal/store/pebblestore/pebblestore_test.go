package pebblestore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
	"github.com/tpwallet/tpwallet/internal/store/storetest"
)

var _ engine.Store = (*pebblestore.Store)(nil)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func() (engine.Store, error) { return pebblestore.Open(dir, pebblestore.Options{}) }
	})
}

// mustOpen opens and loads the store in dir.
func mustOpen(t *testing.T, dir string) (*pebblestore.Store, *ledger.State, journal.Head) {
	t.Helper()
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	st, head, err := s.Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s, st, head
}

// commitBatches applies each command set as one batch and commits it as the engine does.
func commitBatches(t *testing.T, s *pebblestore.Store, st *ledger.State, head journal.Head,
	now int64, batches ...[]ledger.Command) journal.Head {
	t.Helper()
	for _, cmds := range batches {
		now += 1e9
		b := st.Apply(now, cmds)
		for _, rs := range b.Results {
			for _, r := range rs {
				if r.Code != ledger.CodeOK {
					t.Fatalf("apply: %s %s", r.Code, r.Detail)
				}
			}
		}
		r := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: b.Time, Changes: b.Changes}
		journal.Seal(r)
		if err := s.Commit(t.Context(), &journal.Commit{Record: r, Accounts: b.Touched}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		head = journal.Head{Seq: r.Seq, Hash: r.Hash}
	}
	return head
}

func account(id string, allowNegative bool) ledger.Command {
	return ledger.Command{Requests: []ledger.Request{{Op: ledger.OpCreateAccount,
		Account: ledger.AccountRequest{ID: id, Owner: "user:" + id, Asset: "USD", AllowNegative: allowNegative}}}}
}

func pay(id, src, dst string, amount uint64, hold bool) ledger.Command {
	return ledger.Command{Requests: []ledger.Request{{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
		ID: id, Source: src, Destination: dst, Amount: ledger.AmountFromUint64(amount), Hold: hold}}}}
}

// history writes three records to a new store in dir and closes it.
func history(t *testing.T, dir string) {
	t.Helper()
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	st, head, err := s.Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	commitBatches(t, s, st, head, 1_767_225_600e9,
		[]ledger.Command{account("treasury", true), account("alice", false)},
		[]ledger.Command{pay("t1", "treasury", "alice", 100, false)},
		[]ledger.Command{pay("t2", "alice", "treasury", 10, true)})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// rawSet writes key → val into the store in dir through Pebble directly, as a disk fault or
// a stray tool would.
func rawSet(t *testing.T, dir string, key, val []byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	if err := db.Set(key, val, pebble.Sync); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func rawGet(t *testing.T, dir string, key []byte) []byte {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	defer db.Close()
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...)
}

func recordKey(seq uint64) []byte {
	return []byte{'j', '/', 0, 0, 0, 0, 0, 0, 0, byte(seq)}
}

// TestLoadRefusesCorruptHead damages the newest records in several ways: Open still works
// (so that verify can report), Load refuses with an error that says what is wrong.
func TestLoadRefusesCorruptHead(t *testing.T) {
	flipHash := func(b []byte) []byte {
		rec, err := journal.DecodeRecord(b)
		if err != nil {
			panic(err)
		}
		rec.Hash[5] ^= 0x40
		return journal.AppendRecord(nil, rec)
	}
	changeAmount := func(b []byte) []byte { // a valid record whose content no longer matches its hash
		rec, err := journal.DecodeRecord(b)
		if err != nil {
			panic(err)
		}
		rec.Timestamp++
		return journal.AppendRecord(nil, rec)
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string // in the error message
	}{
		{"garbage head", func(t *testing.T, dir string) { rawSet(t, dir, recordKey(3), []byte("garbage")) },
			[]string{"record 3", "does not decode"}},
		{"head hash flipped", func(t *testing.T, dir string) {
			rawSet(t, dir, recordKey(3), flipHash(rawGet(t, dir, recordKey(3))))
		}, []string{"record 3", "hash"}},
		{"head content changed", func(t *testing.T, dir string) {
			rawSet(t, dir, recordKey(3), changeAmount(rawGet(t, dir, recordKey(3))))
		}, []string{"record 3", "hash"}},
		{"record before head changed", func(t *testing.T, dir string) {
			rawSet(t, dir, recordKey(2), changeAmount(rawGet(t, dir, recordKey(2))))
		}, []string{"record 2", "hash"}},
		{"record after m/head", func(t *testing.T, dir string) {
			rawSet(t, dir, recordKey(4), rawGet(t, dir, recordKey(3)))
		}, []string{"record 4", "m/head"}},
		{"m/head names another hash", func(t *testing.T, dir string) {
			h := rawGet(t, dir, []byte("m/head"))
			h[len(h)-1] ^= 1
			rawSet(t, dir, []byte("m/head"), h)
		}, []string{"record 3", "m/head"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			history(t, dir)
			tc.damage(t, dir)
			s, err := pebblestore.Open(dir, pebblestore.Options{})
			if err != nil {
				t.Fatalf("Open: %v (Open must work, for verify)", err)
			}
			defer s.Close()
			_, _, err = s.Load(t.Context())
			var ce *journal.CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("Load: got %v, want a *journal.CorruptionError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not say %q", err, w)
				}
			}
			rec := &journal.Record{Seq: 4}
			journal.Seal(rec)
			if err := s.Commit(t.Context(), &journal.Commit{Record: rec}); err == nil {
				t.Errorf("Commit after a refused Load: got nil, want an error")
			}
		})
	}
}

func TestOpenRefusesOtherFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  string
		val  []byte
		want string
	}{
		{"newer format", "m/format", []byte{2}, "store format"},
		{"not a format", "m/format", []byte("v1"), "store format"},
		{"not a tpwallet store", "other", []byte("x"), "not a tpwallet store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.key == "m/format" {
				history(t, dir)
			}
			rawSet(t, dir, []byte(tc.key), tc.val)
			s, err := pebblestore.Open(dir, pebblestore.Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open: got nil, want an error")
			}
			if !errors.Is(err, journal.ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: got %v, want journal.ErrFormat saying %q", err, tc.want)
			}
		})
	}
}

// TestEach checks the iterators verify uses against the reads the engine uses.
func TestEach(t *testing.T) {
	dir := t.TempDir()
	history(t, dir)
	s, st, head := mustOpen(t, dir)
	ctx := t.Context()
	var seqs []uint64
	if err := s.EachRecord(ctx, func(r *journal.Record) error {
		seqs = append(seqs, r.Seq)
		if journal.RecordHash(r) != r.Hash {
			t.Errorf("record %d: hash does not check out", r.Seq)
		}
		return nil
	}); err != nil || len(seqs) != 3 || seqs[2] != head.Seq {
		t.Errorf("EachRecord: got %v (%v), want 1 2 3", seqs, err)
	}
	n := 0
	if err := s.EachAccount(ctx, func(a *ledger.Account) error {
		n++
		if w, _ := st.Account(a.ID); w.Posted() != a.Posted() {
			t.Errorf("EachAccount %s: posted %s, want %s", a.ID, a.Posted(), w.Posted())
		}
		return nil
	}); err != nil || n != st.AccountCount() {
		t.Errorf("EachAccount: %d accounts (%v), want %d", n, err, st.AccountCount())
	}
	var entries, rows []string
	if err := s.EachEntry(ctx, "", func(e journal.Entry) error {
		entries = append(entries, e.Account+" "+e.TransferID+" "+e.Direction.String())
		return nil
	}); err != nil {
		t.Fatalf("EachEntry: %v", err)
	}
	if err := s.EachActivity(ctx, "alice", func(a *pebblestore.Activity) error {
		rows = append(rows, a.Op.String()+" "+a.TransferID+" "+a.PostedAfter.String())
		return nil
	}); err != nil {
		t.Fatalf("EachActivity: %v", err)
	}
	if got, want := strings.Join(entries, ", "), "alice t1 credit, treasury t1 debit"; got != want {
		t.Errorf("EachEntry: got %q, want %q", got, want)
	}
	if got, want := strings.Join(rows, ", "), "create t1 100, create t2 100"; got != want {
		t.Errorf("EachActivity(alice): got %q, want %q", got, want)
	}
	var pending, transfers []string
	if err := s.EachPending(ctx, func(id string) error { pending = append(pending, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.EachTransfer(ctx, func(tr *ledger.Transfer) error {
		transfers = append(transfers, tr.ID+" "+string(tr.Status))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(pending, ",") != "t2" || strings.Join(transfers, ", ") != "t1 posted, t2 pending" {
		t.Errorf("EachPending %v, EachTransfer %v: want t2; t1 posted, t2 pending", pending, transfers)
	}
	stop := errors.New("stop")
	if err := s.EachRecord(ctx, func(*journal.Record) error { return stop }); err != stop {
		t.Errorf("EachRecord stopped by fn: got %v, want fn's error", err)
	}
}

// TestCommitConcurrentReads runs reads while commits go on (under -race it checks that
// reads share nothing unsynchronised with Commit).
func TestCommitConcurrentReads(t *testing.T) {
	s, st, head := mustOpen(t, t.TempDir())
	head = commitBatches(t, s, st, head, 1e18, []ledger.Command{account("treasury", true), account("alice", false)})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		var err error
		for ctx.Err() == nil && err == nil {
			if _, _, err = s.Entries(ctx, "alice", "", 10); err == nil {
				_, err = s.Head(ctx)
			}
		}
		if ctx.Err() != nil {
			err = nil
		}
		done <- err
	}()
	for i := range 50 {
		head = commitBatches(t, s, st, head, 1e18+int64(i+1)*1e10, []ledger.Command{pay("", "treasury", "alice", 1, false)})
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("read during commits: %v", err)
	}
	if got, _ := s.Head(t.Context()); got != head {
		t.Errorf("Head: got %d, want %d", got.Seq, head.Seq)
	}
}

// quiet discards Pebble's messages in tests that open a store's directory directly.
type quiet struct{}

func (quiet) Infof(string, ...any)         {}
func (quiet) Errorf(string, ...any)        {}
func (quiet) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func TestCommitBeforeLoadAndCloseTwice(t *testing.T) {
	s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &journal.Record{Seq: 1}
	journal.Seal(rec)
	if err := s.Commit(t.Context(), &journal.Commit{Record: rec}); err == nil {
		t.Errorf("Commit before Load: got nil, want an error")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
}

// TestReadsSeeCommitsWhole checks that a read sees all of a Commit or none of it. Pebble
// shows a committed batch to plain reads before its sync returns, and the store publishes
// the accounts and the head only after: a read in between must see the state before the
// Commit. (The linearizability check in cmd/tpwallet caught GET /v1/transfers/{id} showing
// a transfer whose balances GET /v1/accounts/{id} did not show yet.)
func TestReadsSeeCommitsWhole(t *testing.T) {
	s, st, head := mustOpen(t, t.TempDir())
	head = commitBatches(t, s, st, head, 1e18, []ledger.Command{account("treasury", true), account("alice", false)})
	before := head
	checked := 0
	s.SetAfterBatchCommit(func() {
		checked++
		ctx := context.Background()
		if tr, err := s.Transfer(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Transfer t1 before its Commit is published: got %v, %v; want not found", tr, err)
		}
		if a, err := s.Account(ctx, "alice"); err != nil || !a.CreditsPosted.IsZero() {
			t.Errorf("Account alice before the Commit is published: got %+v, %v; want credits_posted 0", a, err)
		}
		if _, err := s.Account(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Account bob before the Commit that creates it is published: got %v, want not found", err)
		}
		if accts, _, err := s.Accounts(ctx, "", "", 10); err != nil || len(accts) != 2 {
			t.Errorf("Accounts before the Commit is published: got %d, %v; want alice and treasury", len(accts), err)
		}
		if h, err := s.Head(ctx); err != nil || h != before {
			t.Errorf("Head before the Commit is published: got %d, %v; want %d", h.Seq, err, before.Seq)
		}
		if recs, err := s.Journal(ctx, before.Seq, 10); err != nil || len(recs) != 0 {
			t.Errorf("Journal before the Commit is published: got %d records, %v; want none", len(recs), err)
		}
		if es, _, err := s.Entries(ctx, "alice", "", 10); err != nil || len(es) != 0 {
			t.Errorf("Entries before the Commit is published: got %d, %v; want none", len(es), err)
		}
	})
	head = commitBatches(t, s, st, head, 2e18,
		[]ledger.Command{account("bob", false), pay("t1", "treasury", "alice", 100, false)})
	s.SetAfterBatchCommit(nil)
	if checked != 1 {
		t.Fatalf("the hook ran %d times, want 1", checked)
	}
	ctx := t.Context()
	if _, err := s.Transfer(ctx, "t1"); err != nil {
		t.Errorf("Transfer t1 after its Commit: %v", err)
	}
	if a, err := s.Account(ctx, "alice"); err != nil || a.CreditsPosted != ledger.AmountFromUint64(100) {
		t.Errorf("Account alice after the Commit: got %+v, %v; want credits_posted 100", a, err)
	}
	if accts, _, err := s.Accounts(ctx, "", "", 10); err != nil || len(accts) != 3 {
		t.Errorf("Accounts after the Commit: got %d, %v; want 3", len(accts), err)
	}
	if h, err := s.Head(ctx); err != nil || h != head {
		t.Errorf("Head after the Commit: got %d, %v; want %d", h.Seq, err, head.Seq)
	}
}
