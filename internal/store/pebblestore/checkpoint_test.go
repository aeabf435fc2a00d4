package pebblestore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
	"github.com/tpwallet/tpwallet/internal/store/storetest"
)

// never is a checkpoint policy that never checkpoints before Close.
const never = math.MaxInt64

// crashingStore closes like a crash after its latest Commit: without the final checkpoint.
type crashingStore struct{ *pebblestore.Store }

func (s crashingStore) Close() error { return s.CloseWithoutCheckpoint() }

// TestConformanceCrash runs the conformance suite with every reopen a crash, so that every
// Load replays the journal after the checkpoint: with no checkpoint at all (the whole
// journal), with one every two records, and with the default policy.
func TestConformanceCrash(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy func(*pebblestore.Store)
	}{
		{"never", func(s *pebblestore.Store) { s.SetCheckpointPolicy(never, never, never, never) }},
		{"every2records", func(s *pebblestore.Store) { s.SetCheckpointPolicy(never, 2, never, never) }},
		{"default", func(*pebblestore.Store) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Opener {
				dir := t.TempDir()
				return func() (engine.Store, error) {
					s, err := pebblestore.Open(dir, pebblestore.Options{})
					if err != nil {
						return nil, err
					}
					tc.policy(s)
					return crashingStore{s}, nil
				}
			})
		})
	}
}

// sameAccounts checks that the store and the state after Load hold exactly the accounts of
// want, balances and pending totals included.
func sameAccounts(t *testing.T, s *pebblestore.Store, got, want *ledger.State) {
	t.Helper()
	if g, w := got.AccountCount(), want.AccountCount(); g != w {
		t.Errorf("accounts after Load: %d, want %d", g, w)
	}
	want.EachAccount(func(w *ledger.Account) {
		if g, ok := got.Account(w.ID); !ok || !reflect.DeepEqual(g, *w) {
			t.Errorf("Load: account %s:\n got %+v\nwant %+v", w.ID, g, *w)
		}
		if g, err := s.Account(t.Context(), w.ID); err != nil || !reflect.DeepEqual(*g, *w) {
			t.Errorf("Account(%s) after Load: got %+v (%v)\nwant %+v", w.ID, g, err, *w)
		}
	})
	holds := func(st *ledger.State) string {
		var ids []string
		for _, h := range st.Holds() {
			ids = append(ids, fmt.Sprintf("%s %s/%s", h.ID, h.AmountPosted, h.Amount))
		}
		slices.Sort(ids)
		return strings.Join(ids, ", ")
	}
	if g, w := holds(got), holds(want); g != w {
		t.Errorf("holds after Load: got %s, want %s", g, w)
	}
	n := 0
	if err := s.EachAccount(t.Context(), func(a *ledger.Account) error {
		n++
		if w, _ := want.Account(a.ID); !reflect.DeepEqual(*a, w) {
			t.Errorf("EachAccount %s:\n got %+v\nwant %+v", a.ID, *a, w)
		}
		return nil
	}); err != nil || n != want.AccountCount() {
		t.Errorf("EachAccount: %d accounts (%v), want %d", n, err, want.AccountCount())
	}
}

func req(op ledger.Op, id string, amount uint64) ledger.Command {
	return ledger.Command{Requests: []ledger.Request{{Op: op, TransferID: id,
		Amount: ledger.AmountFromUint64(amount), AmountSet: amount != 0}}}
}

// TestReopenAfterCrash commits every kind of change with no checkpoint after the first
// record, abandons the store without Close (closeWithoutCheckpoint), and checks that Load
// rebuilds the exact accounts, pending totals included; then once more from the reloaded
// state, and finally that Close writes the checkpoint so that nothing is replayed.
func TestReopenAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s, st, head := mustOpen(t, dir)
	s.SetCheckpointPolicy(never, never, never, never)
	now := int64(1_767_225_600e9)
	head = commitBatches(t, s, st, head, now,
		[]ledger.Command{account("treasury", true), account("alice", false), account("bob", false)},
		[]ledger.Command{pay("f1", "treasury", "alice", 1000, false), pay("f2", "treasury", "bob", 500, false)},
		[]ledger.Command{pay("h1", "alice", "bob", 300, true), pay("h2", "bob", "alice", 100, true),
			pay("h3", "alice", "treasury", 50, true)},
		[]ledger.Command{{Requests: []ledger.Request{{Op: ledger.OpPost, TransferID: "h1",
			Amount: ledger.AmountFromUint64(120), AmountSet: true, NotFinal: true}}}},
		[]ledger.Command{req(ledger.OpIncrease, "h1", 30), req(ledger.OpVoid, "h2", 0)},
		[]ledger.Command{req(ledger.OpPost, "h1", 0)}, // final: releases the 210 still held
		[]ledger.Command{{Requests: []ledger.Request{{Op: ledger.OpFreeze, AccountID: "bob"}}},
			account("carol", false)},
		[]ledger.Command{pay("p1", "alice", "carol", 7, false)})
	if got := s.CheckpointSeq(); got != 0 {
		t.Fatalf("checkpoint: at %d, want none (0)", got)
	}
	if err := s.CloseWithoutCheckpoint(); err != nil {
		t.Fatal(err)
	}
	s2, st2, head2 := mustOpen(t, dir)
	if head2 != head {
		t.Fatalf("head after crash: %d, want %d", head2.Seq, head.Seq)
	}
	sameAccounts(t, s2, st2, st)
	if a, _ := st2.Account("alice"); a.Posted().String() != "663" || a.DebitsPending.String() != "50" ||
		a.CreditsPending.String() != "0" {
		t.Errorf("alice after crash: posted %s, pending debits %s credits %s; want 663, 50, 0",
			a.Posted(), a.DebitsPending, a.CreditsPending)
	}

	// Go on from the loaded state, crash again, then close properly.
	s2.SetCheckpointPolicy(never, never, never, never)
	head2 = commitBatches(t, s2, st2, head2, now+100e9,
		[]ledger.Command{req(ledger.OpPost, "h3", 20)},
		[]ledger.Command{{Requests: []ledger.Request{{Op: ledger.OpUnfreeze, AccountID: "bob"}}}})
	if err := s2.CloseWithoutCheckpoint(); err != nil {
		t.Fatal(err)
	}
	s3, st3, _ := mustOpen(t, dir)
	sameAccounts(t, s3, st3, st2)
	if err := s3.Close(); err != nil {
		t.Fatal(err)
	}
	ckpt := rawGet(t, dir, []byte("m/checkpoint"))
	if got := binary.BigEndian.Uint64(ckpt); got != head2.Seq {
		t.Errorf("m/checkpoint after Close: %d, want the head %d", got, head2.Seq)
	}
	s4, st4, _ := mustOpen(t, dir)
	if got := s4.CheckpointSeq(); got != head2.Seq {
		t.Errorf("checkpoint after Close and Load: %d, want %d", got, head2.Seq)
	}
	sameAccounts(t, s4, st4, st2)
}

// TestCheckpointThresholds checks that a Commit writes a checkpoint (a/ of every account
// changed since the last one, and m/checkpoint) exactly when a threshold is crossed.
func TestCheckpointThresholds(t *testing.T) {
	setup := func(t *testing.T) (*pebblestore.Store, *ledger.State, journal.Head) {
		s, st, head := mustOpen(t, t.TempDir())
		head = commitBatches(t, s, st, head, 1e18,
			[]ledger.Command{account("a", true), account("b", true), account("c", true), account("d", true)})
		if got := s.CheckpointSeq(); got != 1 { // the first record: 1e18 ns after time 0
			t.Fatalf("checkpoint after the first record: %d, want 1", got)
		}
		return s, st, head
	}
	// commit commits one batch at time at and returns the keys it wrote.
	commit := func(t *testing.T, s *pebblestore.Store, st *ledger.State, head *journal.Head, at int64,
		cmds ...ledger.Command) int {
		t.Helper()
		*head = commitBatches(t, s, st, *head, at-1e9, cmds)
		return s.LastCommitKeys()
	}
	const t0 = 1e18 + 1e9 // the first record's time
	const plain = 2 + 3   // j/, m/head; t/ and two x/ of one posted transfer
	t.Run("interval", func(t *testing.T) {
		s, st, head := setup(t) // default policy: 2 s of record time
		if k := commit(t, s, st, &head, t0+1.5e9, pay("", "a", "b", 1, false)); k != plain || s.CheckpointSeq() != 1 {
			t.Errorf("1.5 s after: %d keys, checkpoint %d; want %d, 1", k, s.CheckpointSeq(), plain)
		}
		if k := commit(t, s, st, &head, t0+2e9, pay("", "c", "d", 1, false)); k != plain+4+1 || s.CheckpointSeq() != 3 {
			t.Errorf("2 s after: %d keys, checkpoint %d; want %d (a, b, c, d and m/checkpoint), 3",
				k, s.CheckpointSeq(), plain+5)
		}
		if k := commit(t, s, st, &head, t0+3e9, pay("", "a", "b", 1, false)); k != plain {
			t.Errorf("after the checkpoint: %d keys, want %d", k, plain)
		}
	})
	t.Run("records", func(t *testing.T) {
		s, st, head := setup(t)
		s.SetCheckpointPolicy(never, 3, never, never)
		for i := range 3 {
			k := commit(t, s, st, &head, t0+int64(i+1)*1e6, pay("", "a", "b", 1, false))
			if want := plain + map[bool]int{true: 2 + 1}[i == 2]; k != want {
				t.Errorf("record %d: %d keys, want %d", i+2, k, want)
			}
		}
		if got := s.CheckpointSeq(); got != 4 {
			t.Errorf("checkpoint: %d, want 4", got)
		}
	})
	t.Run("changes", func(t *testing.T) {
		s, st, head := setup(t)
		s.SetCheckpointPolicy(never, never, 5, never)
		commit(t, s, st, &head, t0+1e6, pay("", "a", "b", 1, false), pay("", "a", "c", 1, false))
		commit(t, s, st, &head, t0+2e6, pay("", "a", "b", 1, false), pay("", "a", "c", 1, false))
		if got := s.CheckpointSeq(); got != 1 {
			t.Errorf("after 4 changes: checkpoint %d, want 1", got)
		}
		commit(t, s, st, &head, t0+3e6, pay("", "d", "b", 1, false))
		if got := s.CheckpointSeq(); got != 4 {
			t.Errorf("after 5 changes: checkpoint %d, want 4", got)
		}
	})
	t.Run("accounts", func(t *testing.T) {
		s, st, head := setup(t)
		s.SetCheckpointPolicy(3, never, never, never)
		commit(t, s, st, &head, t0+1e6, pay("", "a", "b", 1, false))
		commit(t, s, st, &head, t0+2e6, pay("", "a", "b", 1, false))
		if got := s.CheckpointSeq(); got != 1 {
			t.Errorf("2 accounts changed: checkpoint %d, want 1", got)
		}
		if k := commit(t, s, st, &head, t0+3e6, pay("", "c", "b", 1, false)); k != plain+3+1 {
			t.Errorf("3 accounts changed: %d keys, want %d", k, plain+4)
		}
		if got := s.CheckpointSeq(); got != 4 {
			t.Errorf("3 accounts changed: checkpoint %d, want 4", got)
		}
	})
	t.Run("checkpoint then crash", func(t *testing.T) {
		dir := t.TempDir()
		s, st, head := mustOpen(t, dir)
		s.SetCheckpointPolicy(never, 2, never, never)
		head = commitBatches(t, s, st, head, 1e18,
			[]ledger.Command{account("a", true), account("b", true)},
			[]ledger.Command{pay("", "a", "b", 5, false)},  // checkpoint 2
			[]ledger.Command{pay("", "b", "a", 2, false)},  // replayed
			[]ledger.Command{pay("h", "a", "b", 10, true)}) // checkpoint 4
		head = commitBatches(t, s, st, head, 1e18+10e9,
			[]ledger.Command{account("c", false)}, // replayed
		)
		if got := s.CheckpointSeq(); got != 4 {
			t.Fatalf("checkpoint: %d, want 4", got)
		}
		s.CloseWithoutCheckpoint()
		s2, st2, _ := mustOpen(t, dir)
		sameAccounts(t, s2, st2, st)
	})
}

// rawDelete deletes key from the store in dir through Pebble directly.
func rawDelete(t *testing.T, dir string, key []byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	if err := db.Delete(key, pebble.Sync); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// crashHistory writes six records with a checkpoint at 1 only (record 3 a posted transfer,
// record 4 a hold), and abandons the store.
func crashHistory(t *testing.T, dir string) {
	t.Helper()
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	st, head, err := s.Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	s.SetCheckpointPolicy(never, never, never, never)
	commitBatches(t, s, st, head, 1_767_225_600e9,
		[]ledger.Command{account("treasury", true), account("alice", false)},
		[]ledger.Command{pay("t1", "treasury", "alice", 100, false)},
		[]ledger.Command{pay("t2", "alice", "treasury", 10, false)},
		[]ledger.Command{pay("t3", "alice", "treasury", 5, true)},
		[]ledger.Command{pay("t4", "treasury", "alice", 1, false)},
		[]ledger.Command{pay("t5", "treasury", "alice", 1, false)})
	if err := s.CloseWithoutCheckpoint(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestLoadRefusesCorruptReplay damages a record after the checkpoint, but before the two
// that Load checks as the head, in several ways: Load refuses with a *journal.CorruptionError
// naming it, and so does EachAccount (verify).
func TestLoadRefusesCorruptReplay(t *testing.T) {
	edit := func(seq uint64, f func(r *journal.Record)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			r, err := journal.DecodeRecord(rawGet(t, dir, recordKey(seq)))
			if err != nil {
				t.Fatal(err)
			}
			f(r)
			rawSet(t, dir, recordKey(seq), journal.AppendRecord(nil, r))
		}
	}
	setAmount := func(r *journal.Record) {
		c := &r.Changes[0]
		c.Amount, c.Transfer.Amount = ledger.AmountFromUint64(11), ledger.AmountFromUint64(11)
		if !c.Transfer.Hold {
			c.Transfer.AmountPosted = c.Amount
		}
	}
	sealed := func(f func(r *journal.Record)) func(r *journal.Record) {
		return func(r *journal.Record) { f(r); journal.Seal(r) }
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		seq    uint64 // of the *journal.CorruptionError; 0: another error
		want   []string
	}{
		{"garbage", func(t *testing.T, dir string) { rawSet(t, dir, recordKey(3), []byte("garbage")) },
			3, []string{"record 3", "does not decode"}},
		{"missing", func(t *testing.T, dir string) { rawDelete(t, dir, recordKey(3)) },
			3, []string{"record 3", "missing"}},
		{"content changed", edit(3, setAmount), 3, []string{"record 3", "hash"}},
		{"amount changed and resealed", edit(3, sealed(setAmount)),
			3, []string{"record 3", "change 0 (create t2)", "source_after", "alice", "want 89, got 90"}},
		{"source_after changed and resealed", edit(3, sealed(func(r *journal.Record) {
			r.Changes[0].SourceAfter = ledger.Balance{Mag: ledger.AmountFromUint64(91)}
		})), 3, []string{"record 3", "source_after", "want 90, got 91"}},
		{"unknown account and resealed", edit(3, sealed(func(r *journal.Record) { r.Changes[0].Transfer.Source = "mallory" })),
			3, []string{"record 3", "source account not found", "mallory"}},
		{"hold amount changed and resealed", edit(4, sealed(setAmount)),
			0, []string{"account alice", "pending debits/credits 11/0", "hold 5/0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			crashHistory(t, dir)
			tc.damage(t, dir)
			s, err := pebblestore.Open(dir, pebblestore.Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			_, _, err = s.Load(t.Context())
			var ce *journal.CorruptionError
			if err == nil || tc.seq != 0 && (!errors.As(err, &ce) || ce.Seq != tc.seq) {
				t.Fatalf("Load: got %v, want a *journal.CorruptionError at record %d", err, tc.seq)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not say %q", err, w)
				}
			}
			if tc.seq == 0 {
				return
			}
			err = s.EachAccount(t.Context(), func(*ledger.Account) error { return nil })
			if !errors.As(err, &ce) || ce.Seq != tc.seq {
				t.Errorf("EachAccount: got %v, want a *journal.CorruptionError at record %d", err, tc.seq)
			}
		})
	}
	t.Run("checkpoint after the head", func(t *testing.T) {
		dir := t.TempDir()
		crashHistory(t, dir)
		rawSet(t, dir, []byte("m/checkpoint"), binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 7), 0))
		s, err := pebblestore.Open(dir, pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, _, err := s.Load(t.Context()); err == nil || !strings.Contains(err.Error(), "m/checkpoint is after the head") {
			t.Errorf("Load: got %v, want m/checkpoint is after the head", err)
		}
	})
}

// TestLoadWithoutCheckpointKey opens a store written before checkpoints (its a/ keys are
// the accounts as of m/head, and there is no m/checkpoint): Load takes a/ as a checkpoint
// at the head and writes m/checkpoint so.
func TestLoadWithoutCheckpointKey(t *testing.T) {
	dir := t.TempDir()
	history(t, dir) // closed: a/ is as of the head
	rawDelete(t, dir, []byte("m/checkpoint"))
	s, st, head := mustOpen(t, dir)
	if got := s.CheckpointSeq(); got != head.Seq {
		t.Errorf("checkpoint: %d, want the head %d", got, head.Seq)
	}
	if a, _ := st.Account("alice"); a.Posted().String() != "100" || a.DebitsPending.String() != "10" {
		t.Errorf("alice: posted %s, pending debits %s; want 100, 10", a.Posted(), a.DebitsPending)
	}
	s.CloseWithoutCheckpoint()
	if got := binary.BigEndian.Uint64(rawGet(t, dir, []byte("m/checkpoint"))); got != head.Seq {
		t.Errorf("m/checkpoint written by Load: %d, want %d", got, head.Seq)
	}
}

// TestReopenRandom commits random batches of every kind of transfer change between a few
// accounts, with random checkpoint thresholds, crashing or closing at random, and checks
// after each reopen that Load rebuilt the ledger's own accounts exactly.
func TestReopenRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	dir := t.TempDir()
	s, st, head := mustOpen(t, dir)
	ids := []string{"t"}
	cmds := []ledger.Command{account("t", true)}
	now := int64(1_767_225_600e9)
	var holds []string
	n := 0
	for round := range 8 {
		s.SetCheckpointPolicy(1+rng.IntN(12), uint64(1+rng.IntN(6)), uint64(1+rng.IntN(40)), int64(1+rng.IntN(5))*1e9)
		for range 6 + rng.IntN(10) {
			if len(ids) < 12 && rng.IntN(3) == 0 {
				id := fmt.Sprint("acc", len(ids))
				ids = append(ids, id)
				cmds = append(cmds, account(id, rng.IntN(2) == 0))
			}
			for range 1 + rng.IntN(6) {
				n++
				id := fmt.Sprint("x", n)
				src, dst := ids[rng.IntN(len(ids))], ids[rng.IntN(len(ids))]
				switch k := rng.IntN(8); {
				case len(holds) > 0 && k < 4:
					h := holds[rng.IntN(len(holds))]
					ops := []ledger.Command{req(ledger.OpPost, h, 0), req(ledger.OpPost, h, uint64(1+rng.IntN(3))),
						req(ledger.OpIncrease, h, uint64(1+rng.IntN(5))), req(ledger.OpVoid, h, 0),
						{Requests: []ledger.Request{{Op: ledger.OpPost, TransferID: h, NotFinal: true,
							Amount: ledger.AmountFromUint64(1), AmountSet: true}}}}
					cmds = append(cmds, ops[rng.IntN(len(ops))])
				case k == 4 && src != "t":
					op := ledger.OpFreeze
					if rng.IntN(2) == 0 {
						op = ledger.OpUnfreeze
					}
					cmds = append(cmds, ledger.Command{Requests: []ledger.Request{{Op: op, AccountID: src}}})
				default:
					hold := rng.IntN(2) == 0
					c := pay(id, src, dst, uint64(1+rng.IntN(50)), hold)
					c.Requests[0].Transfer.HoldTimeout = uint32(rng.IntN(3) * 2)
					if hold {
						holds = append(holds, id)
					}
					cmds = append(cmds, c)
				}
			}
			now += int64(rng.IntN(3)) * 1e9
			b := st.Apply(now, cmds)
			cmds = cmds[:0]
			if len(b.Changes) == 0 {
				continue
			}
			r := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: b.Time, Changes: b.Changes}
			journal.Seal(r)
			if err := s.Commit(t.Context(), &journal.Commit{Record: r, Accounts: b.Touched}); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			head = journal.Head{Seq: r.Seq, Hash: r.Hash}
		}
		if rng.IntN(3) == 0 {
			s.Close()
		} else {
			s.CloseWithoutCheckpoint()
		}
		var st2 *ledger.State
		s, st2, head = mustOpen(t, dir)
		sameAccounts(t, s, st2, st)
		if t.Failed() {
			t.Fatalf("round %d: Load differs from the ledger", round)
		}
		st = st2
	}
}

// TestAccountsDuringCheckpoints lists every account, and reads each, while commits create
// accounts and checkpoint often: an account created since the checkpoint is in memory only,
// and must be listed all the same, before, during and after the checkpoint that writes it.
func TestAccountsDuringCheckpoints(t *testing.T) {
	s, st, head := mustOpen(t, t.TempDir())
	s.SetCheckpointPolicy(never, 3, never, never)
	head = commitBatches(t, s, st, head, 1e18, []ledger.Command{account("a000", true)})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	committed := func() int { // accounts committed so far: a lower bound for a list
		h, _ := s.Head(ctx)
		return int(h.Seq)
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			least := committed()
			var all []string
			cursor := ""
			for {
				page, next, err := s.Accounts(ctx, "", cursor, 7)
				if err != nil {
					errs <- err
					return
				}
				for _, a := range page {
					all = append(all, a.ID)
				}
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.IsSorted(all) || len(all) < least || len(slices.Compact(slices.Clone(all))) != len(all) {
				errs <- fmt.Errorf("Accounts: %d ids (sorted %v), at least %d committed before", len(all),
					slices.IsSorted(all), least)
				return
			}
		}
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			if _, err := s.Account(ctx, "a000"); err != nil {
				errs <- err
				return
			}
		}
	})
	for i := 1; i < 60; i++ {
		id := fmt.Sprintf("a%03d", (i*37)%100) // not in id order
		head = commitBatches(t, s, st, head, 1e18+int64(i)*1e10,
			[]ledger.Command{account(id, false), pay("", "a000", id, 1, false)})
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	page, _, err := s.Accounts(t.Context(), "", "", 1000)
	if err != nil || len(page) != st.AccountCount() {
		t.Errorf("Accounts: %d (%v), want %d", len(page), err, st.AccountCount())
	}
	for _, a := range page {
		if w, _ := st.Account(a.ID); !reflect.DeepEqual(*a, w) {
			t.Errorf("Accounts: %s: got %+v, want %+v", a.ID, *a, w)
		}
	}
}
