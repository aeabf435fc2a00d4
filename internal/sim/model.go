package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

// model is what the clients were told: the acknowledged records (read back from the live
// store as each reply arrived, and checked against the reply), and the transfers, accounts
// and idempotency answers they hold. A request in flight at a crash joins it only once a
// recovery finds it.
type model struct {
	head      journal.Head
	hashes    map[uint64]journal.Hash     // every acknowledged record
	transfers map[string]*ledger.Transfer // every transfer, as after its latest change
	accounts  map[string]*ledger.Account  // as after their latest change (balances aside)
	assets    map[string]ledger.Asset     // created by the workload
	idem      map[string][]byte           // idempotency key → the answer acknowledged
	refused   []string                    // transfers submitted after a fail-stop: never applied
	changes   [changeOps]int              // changes of the records, by op
}

// changeOps bounds ledger.ChangeOp.
const changeOps = int(ledger.ChangeAssetCreate) + 1

func newModel() *model {
	return &model{hashes: make(map[uint64]journal.Hash), transfers: make(map[string]*ledger.Transfer),
		accounts: make(map[string]*ledger.Account), assets: make(map[string]ledger.Asset),
		idem: make(map[string][]byte)}
}

// add takes r, the next record, into the model.
func (m *model) add(r *journal.Record) error {
	if r.Seq != m.head.Seq+1 || r.PrevHash != m.head.Hash {
		return fmt.Errorf("record %d does not follow the model's head %d", r.Seq, m.head.Seq)
	}
	for i := range r.Changes {
		c := &r.Changes[i]
		if int(c.Op) < changeOps {
			m.changes[c.Op]++
		}
		switch {
		case c.Transfer != nil:
			m.transfers[c.Transfer.ID] = c.Transfer
		case c.Account != nil:
			m.accounts[c.Account.ID] = c.Account
		case c.Asset != nil:
			m.assets[c.Asset.Code] = *c.Asset
		}
	}
	m.hashes[r.Seq] = r.Hash
	m.head = journal.Head{Seq: r.Seq, Hash: r.Hash}
	return nil
}

// pending returns the ids of the pending transfers, sorted.
func (m *model) pending() []string {
	var ids []string
	for id, t := range m.transfers {
		if t.Status == ledger.TransferPending {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// tally is the balances the transfers of the model add up to: the obviously correct sum
// that the store's accounts (checkpoints plus replay) must equal.
func (m *model) tally() (map[string]*[4]ledger.Amount, error) {
	sums := make(map[string]*[4]ledger.Amount) // debits posted, credits posted, debits pending, credits pending
	add := func(id string, i int, a ledger.Amount) error {
		s := sums[id]
		if s == nil {
			s = new([4]ledger.Amount)
			sums[id] = s
		}
		var ok bool
		if s[i], ok = s[i].Add(a); !ok {
			return fmt.Errorf("account %s: the tally overflows", id)
		}
		return nil
	}
	for _, id := range slices.Sorted(maps.Keys(m.transfers)) {
		t := m.transfers[id]
		if err := errors.Join(add(t.Source, 0, t.AmountPosted), add(t.Destination, 1, t.AmountPosted),
			add(t.Source, 2, t.Held()), add(t.Destination, 3, t.Held())); err != nil {
			return nil, err
		}
	}
	return sums, nil
}

// inDoubt is a request whose outcome no client heard: in flight at a crash, or answered with
// an error after a failed commit. A recovery must find all of its commit or none of it.
type inDoubt struct {
	step    int
	fault   Fault
	commit  *journal.Commit // what the engine handed the store when the fault struck
	durable bool            // that commit returned before the crash: it must be found
}

// recovered is a store just reopened after a crash or a restart.
type recovered struct {
	st    *pebblestore.Store
	state *ledger.State
	head  journal.Head
	now   int64
}

// checkRecovery checks a recovered store against the model, first settling a request in
// doubt. The checks: no acknowledged record is
// missing or changed; a request in doubt is found whole (its record with its idempotency
// answer, and at most it) or not at all; the journal verifies from its first record;
// Load's state, the store's accounts and a replay of the journal agree, and the balances
// are the tally of the transfers; every transfer and account is as the model says, with no
// others and none of those refused after a fail-stop; every acknowledged idempotency
// answer is there; and State.CheckInvariants holds.
func (s *sim) checkRecovery(ctx context.Context, r *recovered) error {
	m := s.m
	var recs []*journal.Record
	if err := r.st.EachRecord(ctx, func(rec *journal.Record) error {
		recs = append(recs, rec)
		return nil
	}); err != nil {
		return fmt.Errorf("read the journal: %w", err)
	}
	if n := uint64(len(recs)); n != r.head.Seq {
		return fmt.Errorf("the store holds %d records, its head is %d", n, r.head.Seq)
	}
	if err := s.settle(ctx, r, recs); err != nil {
		return err
	}
	v := journal.NewVerifier()
	for _, rec := range recs {
		if err := v.Add(rec); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	if err := v.Finish(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := r.state.CheckInvariants(); err != nil {
		return fmt.Errorf("loaded state: %w", err)
	}
	if err := s.checkAccounts(ctx, r, v); err != nil {
		return err
	}
	if err := s.checkTransfers(ctx, r, v); err != nil {
		return err
	}
	for _, key := range slices.Sorted(maps.Keys(m.idem)) {
		want := m.idem[key]
		got, err := r.st.Idempotency(ctx, idemScope, key, r.now)
		if err != nil {
			return fmt.Errorf("LOST: the acknowledged answer to idempotency key %s: %w", key, err)
		}
		if !bytes.Equal(got.Body, want) {
			return fmt.Errorf("idempotency key %s: got %q, want %q", key, got.Body, want)
		}
	}
	s.stats.Checks++
	return nil
}

// settle compares the recovered journal with the acknowledged one and decides the request in
// doubt, taking its record into the model if the store has it.
func (s *sim) settle(ctx context.Context, r *recovered, recs []*journal.Record) error {
	m := s.m
	a := m.head.Seq
	h := r.head.Seq
	if h < a {
		return fmt.Errorf("LOST: acknowledged records %d-%d are missing (head %d)", h+1, a, h)
	}
	for seq := uint64(1); seq <= a; seq++ {
		if recs[seq-1].Hash != m.hashes[seq] {
			return fmt.Errorf("acknowledged record %d changed: hash %s, acknowledged %s",
				seq, recs[seq-1].Hash, m.hashes[seq])
		}
	}
	d := s.doubt
	s.doubt = nil
	var rec *journal.Record // the record in doubt
	if d != nil && d.commit != nil {
		rec = d.commit.Record
	}
	switch {
	case h > a+1:
		return fmt.Errorf("the store holds records %d-%d; only %d was acknowledged and one in doubt", a+1, h, a)
	case h == a+1 && rec == nil:
		return fmt.Errorf("the store holds record %d, which no request in doubt explains", h)
	case h == a+1 && recs[h-1].Hash != rec.Hash:
		return fmt.Errorf("record %d in doubt (step %d): the store has hash %s, the engine committed %s",
			h, d.step, recs[h-1].Hash, rec.Hash)
	case h == a && rec != nil && d.durable:
		return fmt.Errorf("LOST: the commit of step %d returned before the crash, but its record %d is missing", d.step, a+1)
	}
	if h == a+1 {
		if err := m.add(recs[h-1]); err != nil {
			return err
		}
	}
	if d == nil || d.commit == nil {
		return nil
	}
	found, err := s.settleAnswers(ctx, r, d, h == a+1)
	if err != nil {
		return err
	}
	if found {
		s.stats.DoubtFound++
	} else {
		s.stats.DoubtGone++
	}
	s.logf("  step %d in doubt (%s): %s", d.step, d.fault, map[bool]string{true: "found whole", false: "not there"}[found])
	return nil
}

// settleAnswers checks that the idempotency answers of the commit in doubt are all there or
// none, and there exactly when its record is (found); a commit without a record is found when
// its answers are. Found answers join the model.
func (s *sim) settleAnswers(ctx context.Context, r *recovered, d *inDoubt, found bool) (bool, error) {
	c := d.commit
	var there, gone []string
	for i := range c.Idempotency {
		want := &c.Idempotency[i]
		got, err := r.st.Idempotency(ctx, want.Scope, want.Key, r.now)
		switch {
		case errors.Is(err, engine.ErrNotFound):
			gone = append(gone, want.Key)
		case err != nil:
			return false, fmt.Errorf("idempotency key %s: %w", want.Key, err)
		case !bytes.Equal(got.Body, want.Body):
			return false, fmt.Errorf("idempotency key %s in doubt: got %q, the engine committed %q", want.Key, got.Body, want.Body)
		default:
			there = append(there, want.Key)
		}
	}
	switch {
	case len(there) > 0 && len(gone) > 0:
		return false, fmt.Errorf("step %d in doubt: idempotency answers %v are there, %v are not (torn commit)", d.step, there, gone)
	case c.Record != nil && found && len(gone) > 0:
		return false, fmt.Errorf("step %d in doubt: its record is there, its idempotency answers %v are not (torn commit)", d.step, gone)
	case c.Record != nil && !found && len(there) > 0:
		return false, fmt.Errorf("step %d in doubt: its idempotency answers %v are there, its record is not (torn commit)", d.step, there)
	case c.Record == nil && d.durable && len(gone) > 0:
		return false, fmt.Errorf("LOST: the commit of step %d returned before the crash, but its idempotency answers %v are missing", d.step, gone)
	}
	for i := range c.Idempotency {
		if len(there) > 0 {
			s.m.idem[c.Idempotency[i].Key] = c.Idempotency[i].Body
		}
	}
	return found || len(there) > 0, nil
}

// checkAccounts: Load's state, the store's accounts (checkpoint and replay), the journal's
// replay and the model's tally agree on every account, and the model's accounts are all
// there, unchanged apart from balances.
func (s *sim) checkAccounts(ctx context.Context, r *recovered, v *journal.Verifier) error {
	m := s.m
	sums, err := m.tally()
	if err != nil {
		return err
	}
	if n, w := r.state.AccountCount(), len(m.accounts); n != w {
		return fmt.Errorf("loaded state: %d accounts, the model has %d", n, w)
	}
	if n := len(v.Accounts()); n != len(m.accounts) {
		return fmt.Errorf("journal replay: %d accounts, the model has %d", n, len(m.accounts))
	}
	for _, id := range slices.Sorted(maps.Keys(m.accounts)) {
		want := m.accounts[id]
		got, ok := r.state.Account(id)
		if !ok {
			return fmt.Errorf("LOST: account %s", id)
		}
		stored, err := r.st.Account(ctx, id)
		if err != nil {
			return fmt.Errorf("store account %s: %w", id, err)
		}
		if !reflect.DeepEqual(*stored, got) {
			return fmt.Errorf("account %s: the store has %+v, Load %+v", id, *stored, got)
		}
		if replayed := v.Accounts()[id]; replayed == nil || !reflect.DeepEqual(*replayed, got) {
			return fmt.Errorf("account %s: the journal replays to %+v, Load has %+v", id, replayed, got)
		}
		static := got
		static.DebitsPosted, static.CreditsPosted = want.DebitsPosted, want.CreditsPosted
		static.DebitsPending, static.CreditsPending = want.DebitsPending, want.CreditsPending
		if !reflect.DeepEqual(static, *want) {
			return fmt.Errorf("account %s: got %+v, want %+v", id, got, *want)
		}
		sum := sums[id]
		if sum == nil {
			sum = new([4]ledger.Amount)
		}
		if bal := [4]ledger.Amount{got.DebitsPosted, got.CreditsPosted, got.DebitsPending,
			got.CreditsPending}; bal != *sum {
			return fmt.Errorf("account %s: balances (debits, credits posted; debits, credits pending) %v, its transfers add up to %v",
				id, bal, *sum)
		}
	}
	return nil
}

// checkTransfers: every transfer of the model is in the store as the model has it, pending
// ones in Load's state and the journal's replay too; the store holds no other, and none of
// those refused after a fail-stop.
func (s *sim) checkTransfers(ctx context.Context, r *recovered, v *journal.Verifier) error {
	m := s.m
	n := 0
	if err := r.st.EachTransfer(ctx, func(t *ledger.Transfer) error {
		n++
		want := m.transfers[t.ID]
		if want == nil {
			return fmt.Errorf("the store holds transfer %s, which no record of the model has", t.ID)
		}
		if !bytes.Equal(journal.AppendTransfer(nil, t), journal.AppendTransfer(nil, want)) {
			return fmt.Errorf("transfer %s: got %+v, want %+v", t.ID, *t, *want)
		}
		return nil
	}); err != nil {
		return err
	}
	if n != len(m.transfers) {
		for _, id := range slices.Sorted(maps.Keys(m.transfers)) {
			if _, err := r.st.Transfer(ctx, id); err != nil {
				return fmt.Errorf("LOST: transfer %s: %w", id, err)
			}
		}
		return fmt.Errorf("the store lists %d transfers, the model has %d", n, len(m.transfers))
	}
	holds := r.state.Holds()
	pending := m.pending()
	if len(holds) != len(pending) || len(v.Holds()) != len(pending) {
		return fmt.Errorf("pending holds: Load has %d, the journal replays %d, the model has %d",
			len(holds), len(v.Holds()), len(pending))
	}
	for _, id := range pending {
		got, ok := r.state.Transfer(id)
		if !ok || !bytes.Equal(journal.AppendTransfer(nil, got), journal.AppendTransfer(nil, m.transfers[id])) {
			return fmt.Errorf("hold %s after Load: got %+v, want %+v", id, got, m.transfers[id])
		}
	}
	for _, id := range m.refused {
		if _, err := r.st.Transfer(ctx, id); !errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("transfer %s was submitted after the engine stopped, yet the store has it (%v)", id, err)
		}
	}
	s.stats.TransfersChecked += n
	return nil
}
