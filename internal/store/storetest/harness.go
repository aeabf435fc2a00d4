package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Opener opens the store under test. Every call opens the same storage, so that calling it
// again after Close is a restart.
type Opener func() (engine.Store, error)

// timeStart is the engine time of the first batch: a realistic Unix ns value.
const timeStart = int64(1_767_225_600) * 1e9 // 2026-01-01T00:00:00Z

// harness drives one store the way the engine does (Apply, Seal, one Commit per batch) and
// keeps what every read must return, derived from the changes Apply made.
type harness struct {
	t     *testing.T
	open  Opener
	store engine.Store
	state *ledger.State
	head  journal.Head
	now   int64

	records   []*journal.Record
	transfers map[string]*ledger.Transfer   // as after their latest change
	created   []*ledger.Transfer            // in creation order
	entries   map[string][]journal.Entry    // per account, oldest first
	activity  map[string][]balancePoint     // per account: every transfer change, oldest first
	accounts  map[string]ledger.AccountKind // every account created, for listing
	owners    map[string][]string           // owner → account ids
}

// balancePoint is an account's posted balance just after a transfer change at time.
type balancePoint struct {
	time  int64
	after ledger.Balance
}

// start opens a fresh store and loads it.
func start(t *testing.T, newStore func(t *testing.T) Opener) *harness {
	t.Helper()
	h := &harness{t: t, open: newStore(t), now: timeStart,
		transfers: map[string]*ledger.Transfer{}, entries: map[string][]journal.Entry{},
		activity: map[string][]balancePoint{}, accounts: map[string]ledger.AccountKind{},
		owners: map[string][]string{}}
	h.openStore()
	st, head, err := h.store.Load(t.Context())
	if err != nil {
		t.Fatalf("Load of a fresh store: %v", err)
	}
	h.state, h.head = st, head
	return h
}

func (h *harness) openStore() {
	h.t.Helper()
	s, err := h.open()
	if err != nil {
		h.t.Fatalf("open: %v", err)
	}
	h.store = s
	h.t.Cleanup(func() {
		if h.store == s {
			s.Close()
			h.store = nil
		}
	})
}

// advance moves engine time on by d ns.
func (h *harness) advance(d int64) { h.now += d }

// apply applies cmds as one engine batch, commits it and returns the batch. Every request
// must succeed unless allowFail.
func (h *harness) apply(cmds ...ledger.Command) ledger.Batch {
	h.t.Helper()
	return h.applyChecked(false, cmds...)
}

func (h *harness) applyChecked(allowFail bool, cmds ...ledger.Command) ledger.Batch {
	h.t.Helper()
	return h.applyWith(allowFail, journal.Commit{}, cmds...)
}

// applyWith is applyChecked committing side's idempotency answers and API keys in the same
// Commit, as the engine does.
func (h *harness) applyWith(allowFail bool, side journal.Commit, cmds ...ledger.Command) ledger.Batch {
	h.t.Helper()
	h.advance(1e6)
	b := h.state.Apply(h.now, cmds)
	if !allowFail {
		for i, rs := range b.Results {
			for j, r := range rs {
				if r.Code != ledger.CodeOK {
					h.t.Fatalf("command %d request %d: %s %s", i, j, r.Code, r.Detail)
				}
			}
		}
	}
	c := &journal.Commit{Accounts: b.Touched, Idempotency: side.Idempotency, APIKeys: side.APIKeys}
	if len(b.Changes) > 0 {
		c.Record = &journal.Record{Seq: h.head.Seq + 1, PrevHash: h.head.Hash,
			Timestamp: b.Time, Changes: b.Changes}
		journal.Seal(c.Record)
	}
	if err := h.store.Commit(h.t.Context(), c); err != nil {
		h.t.Fatalf("Commit %d: %v", h.head.Seq+1, err)
	}
	if r := c.Record; r != nil {
		h.head = journal.Head{Seq: r.Seq, Hash: r.Hash}
		h.records = append(h.records, r)
		for i := range r.Changes {
			h.expect(&r.Changes[i])
		}
	}
	return b
}

// expect records what change c makes every read return.
func (h *harness) expect(c *ledger.Change) {
	switch {
	case c.Account != nil && c.Op == ledger.ChangeAccountCreate:
		a := c.Account
		h.accounts[a.ID] = a.Kind
		if a.Owner != "" {
			h.owners[a.Owner] = append(h.owners[a.Owner], a.ID)
		}
	case c.Transfer != nil:
		t := c.Transfer
		h.transfers[t.ID] = t
		if c.Op == ledger.ChangeCreate {
			h.created = append(h.created, t)
		}
		for _, e := range journal.Entries(c) {
			h.entries[e.Account] = append(h.entries[e.Account], e)
		}
		h.activity[t.Source] = append(h.activity[t.Source], balancePoint{c.Time, c.SourceAfter})
		h.activity[t.Destination] = append(h.activity[t.Destination],
			balancePoint{c.Time, c.DestinationAfter})
	}
}

// reopen closes the store, opens it again and loads it, checks that Load restored the
// state the harness built, and goes on from the loaded state.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.store.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	h.store = nil
	h.openStore()
	st, head, err := h.store.Load(h.t.Context())
	if err != nil {
		h.t.Fatalf("Load after reopen: %v", err)
	}
	if head != h.head {
		h.t.Errorf("Load head: got %d %s, want %d %s", head.Seq, head.Hash, h.head.Seq, h.head.Hash)
	}
	sameState(h.t, st, h.state)
	h.state, h.head = st, head
}

// sameState checks that got holds what want holds: assets, accounts, holds, last time.
func sameState(t *testing.T, got, want *ledger.State) {
	t.Helper()
	if g, w := got.Assets(), want.Assets(); !reflect.DeepEqual(g, w) {
		t.Errorf("assets: got %v, want %v", g, w)
	}
	if g, w := got.AccountCount(), want.AccountCount(); g != w {
		t.Errorf("account count: got %d, want %d", g, w)
	}
	want.EachAccount(func(a *ledger.Account) {
		g, ok := got.Account(a.ID)
		if !ok {
			t.Errorf("account %s: missing after Load", a.ID)
		} else if !reflect.DeepEqual(g, *a) {
			t.Errorf("account %s:\n got %+v\nwant %+v", a.ID, g, *a)
		}
	})
	if g, w := sortedHolds(got), sortedHolds(want); !reflect.DeepEqual(g, w) {
		t.Errorf("holds:\n got %s\nwant %s", transfersString(g), transfersString(w))
	}
	if g, w := got.LastTime(), want.LastTime(); g != w {
		t.Errorf("last change time: got %d, want %d", g, w)
	}
	if g, w := got.NextExpiry(), want.NextExpiry(); g != w {
		t.Errorf("next expiry: got %d, want %d", g, w)
	}
}

func sortedHolds(s *ledger.State) []*ledger.Transfer {
	hs := s.Holds()
	slices.SortFunc(hs, func(a, b *ledger.Transfer) int { return strings.Compare(a.ID, b.ID) })
	return hs
}

func transfersString(ts []*ledger.Transfer) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString("\n  ")
		b.WriteString(transferString(t))
	}
	return b.String()
}

func transferString(t *ledger.Transfer) string {
	return fmt.Sprintf("%s %s->%s %s %s %s %s posted=%s expires=%d", t.ID, t.Source,
		t.Destination, t.Amount, t.Asset, t.Kind, t.Status, t.AmountPosted, t.ExpiresAt)
}

// isNotFound and isBadCursor check the sentinel errors every store returns.
func isNotFound(err error) bool  { return errors.Is(err, engine.ErrNotFound) }
func isBadCursor(err error) bool { return errors.Is(err, engine.ErrBadCursor) }

// Request builders.

func one(r ledger.Request) ledger.Command { return ledger.Command{Requests: []ledger.Request{r}} }

func amt(v uint64) ledger.Amount { return ledger.AmountFromUint64(v) }

func openAccount(id, owner, asset string, allowNegative bool) ledger.Command {
	return one(ledger.Request{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{
		ID: id, Owner: owner, Asset: asset, AllowNegative: allowNegative}})
}

func pay(id, src, dst string, amount uint64) ledger.Request {
	return ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
		ID: id, Source: src, Destination: dst, Amount: amt(amount)}}
}

func hold(id, src, dst string, amount uint64, timeoutSeconds uint32) ledger.Request {
	r := pay(id, src, dst, amount)
	r.Transfer.Hold, r.Transfer.HoldTimeout = true, timeoutSeconds
	return r
}

func post(id string, amount uint64, final bool) ledger.Request {
	return ledger.Request{Op: ledger.OpPost, TransferID: id, Amount: amt(amount),
		AmountSet: amount != 0, NotFinal: !final}
}

func increase(id string, amount uint64) ledger.Request {
	return ledger.Request{Op: ledger.OpIncrease, TransferID: id, Amount: amt(amount)}
}

func void(id string) ledger.Request { return ledger.Request{Op: ledger.OpVoid, TransferID: id} }

func freeze(id string) ledger.Request { return ledger.Request{Op: ledger.OpFreeze, AccountID: id} }

func unfreeze(id string) ledger.Request {
	return ledger.Request{Op: ledger.OpUnfreeze, AccountID: id}
}

func newAsset(code string, scale uint8) ledger.Request {
	return ledger.Request{Op: ledger.OpCreateAsset, Asset: ledger.Asset{Code: code, Scale: scale}}
}
