package storetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"reflect"
	"testing"

	"github.com/tpwallet/tpwallet/internal/invariants"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Run runs the conformance suite. newStore is called once per subtest and returns an Opener
// for fresh, empty storage of its own; the subtest closes what it opens.
func Run(t *testing.T, newStore func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore func(t *testing.T) Opener)
	}{
		{"EmptyLoad", testEmptyLoad},
		{"CommitAndRead", testCommitAndRead},
		{"Reopen", testReopen},
		{"RefuseBrokenChain", testRefuseBrokenChain},
		{"Idempotency", testIdempotency},
		{"APIKeys", testAPIKeys},
		{"Paging", testPaging},
		{"SideDataWithRecord", testSideDataWithRecord},
		{"Meta", testMeta},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

func testEmptyLoad(t *testing.T, newStore func(t *testing.T) Opener) {
	h := start(t, newStore)
	if h.head != (journal.Head{}) {
		t.Errorf("Load head: got %d %s, want 0 and a zero hash", h.head.Seq, h.head.Hash)
	}
	sameState(t, h.state, ledger.NewState())
	ctx, s := t.Context(), h.store
	if got := len(h.state.Assets()); got != len(ledger.PreloadedAssets) {
		t.Errorf("assets: got %d, want the %d preloaded", got, len(ledger.PreloadedAssets))
	}
	if recs, err := s.Journal(ctx, 0, 10); err != nil || len(recs) != 0 {
		t.Errorf("Journal: got %d records (%v), want none", len(recs), err)
	}
	if page, next, err := s.Transfers(ctx, "", "", 10); err != nil || len(page) != 0 || next != "" {
		t.Errorf("Transfers: got %d, next %q (%v), want none", len(page), next, err)
	}
	if page, next, err := s.Accounts(ctx, "", "", 10); err != nil || len(page) != 0 || next != "" {
		t.Errorf("Accounts: got %d, next %q (%v), want none", len(page), next, err)
	}
	if keys, err := s.APIKeys(ctx); err != nil || len(keys) != 0 {
		t.Errorf("APIKeys: got %d (%v), want none", len(keys), err)
	}
	if _, err := s.Idempotency(ctx, "key_1", "k", timeStart); !isNotFound(err) {
		t.Errorf("Idempotency: got %v, want ErrNotFound", err)
	}
	if _, _, err := s.Entries(ctx, "alice", "", 10); !isNotFound(err) {
		t.Errorf("Entries of an unknown account: got %v, want ErrNotFound", err)
	}
	h.checkReads()
	h.reopen()
	h.checkReads()
}

// scenario commits a history that uses every kind of change: accounts (with and without an
// owner, allow_negative), posted transfers (atomic batch, server ids, metadata), holds with
// and without expiry, partial posts, increases, a final post, voids, an expiry, a hold
// created and posted in one batch, a rejected request, freeze and unfreeze, a new asset.
// It leaves h2 (expiring) and h5 (never expiring) pending.
func (h *harness) scenario() {
	h.t.Helper()
	h.apply(openAccount("treasury", "platform", "USD", true), openAccount("alice", "user:alice", "USD", false),
		openAccount("alice-eur", "user:alice", "EUR", false), openAccount("bob", "user:bob", "USD", false),
		openAccount("carol", "", "USD", false), openAccount("eur-treasury", "platform", "EUR", true))
	h.apply(ledger.Command{Atomic: true, Requests: []ledger.Request{
		pay("fund-alice", "treasury", "alice", 10_000), pay("fund-bob", "treasury", "bob", 5_000),
		pay("fund-alice-eur", "eur-treasury", "alice-eur", 700)}})
	h.apply(one(hold("h1", "alice", "bob", 1_000, 0)), one(hold("h2", "alice", "carol", 500, 60)),
		one(hold("h3", "bob", "alice", 300, 1)), one(hold("h4", "alice", "bob", 200, 0)),
		one(hold("h5", "bob", "carol", 50, 0)))
	h.apply(one(post("h1", 400, false)))
	h.apply(one(increase("h1", 100)), one(void("h4")), one(post("h1", 0, true)),
		one(hold("h6", "alice", "bob", 10, 0)), one(post("h6", 0, true)))
	h.advance(2e9) // h3 expires at the start of the next batch
	p1 := pay("p1", "alice", "bob", 25)
	p1.Transfer.Kind, p1.Transfer.Reference = ledger.TransferP2M, "order-42"
	p1.Transfer.Metadata = map[string]string{"channel": "web", "sku": "a-1"}
	h.apply(one(p1))
	h.apply(one(freeze("carol")), one(newAsset("XAU", 3)), openAccount("gold", "user:alice", "XAU", false))
	b := h.applyChecked(true, ledger.Command{Requests: []ledger.Request{
		pay("too-much", "alice", "bob", 1_000_000), pay("ok1", "bob", "alice", 5), pay("", "bob", "alice", 1)}})
	if got := b.Results[0][0].Code; got != ledger.CodeInsufficientFunds {
		h.t.Fatalf("too-much: got %s, want insufficient_funds", got)
	}
	h.apply(one(freeze("bob")), one(unfreeze("bob")))
}

// checkScenario checks a few outcomes of scenario directly, so that a harness bug cannot
// hide behind comparing the store with itself.
func (h *harness) checkScenario() {
	t, s, ctx := h.t, h.store, h.t.Context()
	t.Helper()
	for id, want := range map[string]string{"h1": "posted 1100/1100", "h2": "pending 0/500",
		"h3": "expired 0/300", "h4": "voided 0/200", "h5": "pending 0/50", "h6": "posted 10/10",
		"p1": "posted 25/25", "fund-alice": "posted 10000/10000"} {
		tr, err := s.Transfer(ctx, id)
		if err != nil {
			t.Errorf("Transfer(%s): %v", id, err)
			continue
		}
		if got := fmt.Sprintf("%s %s/%s", tr.Status, tr.AmountPosted, tr.Amount); got != want {
			t.Errorf("Transfer(%s): got %s, want %s", id, got, want)
		}
	}
	if _, err := s.Transfer(ctx, "too-much"); !isNotFound(err) {
		t.Errorf("Transfer(too-much), rejected: got %v, want ErrNotFound", err)
	}
	if tr, err := s.Transfer(ctx, "p1"); err != nil || tr.Metadata["sku"] != "a-1" || tr.Reference != "order-42" {
		t.Errorf("Transfer(p1): got %+v (%v), want its metadata and reference", tr, err)
	}
	// alice: 10000 − 1100 (h1) − 10 (h6) − 25 (p1) + 5 (ok1) + 1 = 8871; 500 still held by h2.
	if a, err := s.Account(ctx, "alice"); err != nil || a.Posted().String() != "8871" ||
		a.Available().String() != "8371" {
		t.Errorf("Account(alice): got %+v (%v), want posted 8871, available 8371", a, err)
	}
	if a, err := s.Account(ctx, "carol"); err != nil || a.Status != ledger.StatusFrozen ||
		a.CreditsPending.String() != "550" {
		t.Errorf("Account(carol): got %+v (%v), want frozen with 550 pending credits", a, err)
	}
	if a, err := s.Account(ctx, "bob"); err != nil || a.Status != ledger.StatusActive {
		t.Errorf("Account(bob): got %+v (%v), want active again", a, err)
	}
	if e, _, err := s.Entries(ctx, "alice", "", 1); err != nil || len(e) != 1 || e[0].Amount.String() != "1" ||
		e[0].Direction != journal.Credit || e[0].PostedAfter.String() != "8871" {
		t.Errorf("Entries(alice) newest: got %+v (%v), want a credit of 1 leaving 8871", e, err)
	}
	if got := len(h.state.Holds()); got != 2 {
		t.Errorf("pending holds: got %d, want 2 (h2, h5)", got)
	}
	if _, ok := h.state.Asset("XAU"); !ok {
		t.Errorf("asset XAU missing")
	}
}

func testCommitAndRead(t *testing.T, newStore func(t *testing.T) Opener) {
	h := start(t, newStore)
	h.scenario()
	h.checkScenario()
	h.checkReads()
}

func testReopen(t *testing.T, newStore func(t *testing.T) Opener) {
	h := start(t, newStore)
	h.scenario()
	h.reopen() // checks assets, accounts, holds, last time and head
	h.checkScenario()
	h.checkReads()
	// The loaded state goes on where the old one stopped.
	h.apply(one(unfreeze("carol")), one(post("h2", 200, false)), one(void("h5")), one(pay("after-reopen", "alice", "bob", 1)))
	h.advance(61e9) // h2 expires with 200 posted
	h.apply(one(pay("later", "bob", "alice", 2)))
	if tr, err := h.store.Transfer(t.Context(), "h2"); err != nil || tr.Status != ledger.TransferExpired ||
		tr.AmountPosted.String() != "200" {
		t.Errorf("Transfer(h2): got %+v (%v), want expired with 200 posted", tr, err)
	}
	h.reopen()
	if n := len(h.state.Holds()); n != 0 {
		t.Errorf("holds after reopen: got %d, want 0", n)
	}
	h.checkReads()
}

func testRefuseBrokenChain(t *testing.T, newStore func(t *testing.T) Opener) {
	h := start(t, newStore)
	ctx := t.Context()
	h.apply(openAccount("treasury", "platform", "USD", true), openAccount("alice", "user:alice", "USD", false))
	h.apply(one(pay("t1", "treasury", "alice", 100)))
	h.apply(one(pay("t2", "treasury", "alice", 100)))
	first := h.records[0]
	at := h.now + 1e6
	mallory := &ledger.Account{ID: "mallory", Owner: "user:mallory", Asset: "USD", Kind: ledger.KindUser,
		Status: ledger.StatusActive, Metadata: map[string]string{}, CreatedAt: at}
	record := func(seq uint64, prev journal.Hash) *journal.Record {
		r := &journal.Record{Seq: seq, PrevHash: prev, Timestamp: at, Changes: []ledger.Change{
			{Op: ledger.ChangeAccountCreate, Time: at, Account: mallory}}}
		journal.Seal(r)
		return r
	}
	unsealed := record(h.head.Seq+1, h.head.Hash)
	unsealed.Hash[0] ^= 1
	idem := journal.Idempotency{Scope: "key_1", Key: "k", Status: 201, ExpiresAt: at + 1e12}
	refused := map[string]*journal.Record{
		"seq skips one":         record(h.head.Seq+2, h.head.Hash),
		"seq repeats the head":  record(h.head.Seq, h.records[len(h.records)-2].Hash),
		"seq 1 again":           record(1, journal.Hash{}),
		"prev_hash is not head": record(h.head.Seq+1, first.Hash),
		"prev_hash zero":        record(h.head.Seq+1, journal.Hash{}),
	}
	if invariants.Enabled {
		// Rehashing every record on Commit is a pair assertion, on only with invariants
		// (engine.Store): the engine sealed the record just before.
		refused["hash does not check out"] = unsealed
	}
	for name, r := range refused {
		err := h.store.Commit(ctx, &journal.Commit{Record: r, Accounts: []*ledger.Account{mallory},
			Idempotency: []journal.Idempotency{idem}})
		if err == nil {
			t.Errorf("Commit with %s: got nil, want an error", name)
		}
	}
	checkRefusedLeftNothing := func() {
		t.Helper()
		if _, err := h.store.Account(ctx, "mallory"); !isNotFound(err) {
			t.Errorf("Account(mallory) after refused commits: got %v, want ErrNotFound", err)
		}
		if _, err := h.store.Idempotency(ctx, "key_1", "k", at); !isNotFound(err) {
			t.Errorf("Idempotency after refused commits: got %v, want ErrNotFound", err)
		}
		h.checkReads() // head, journal, accounts and the rest unchanged
	}
	checkRefusedLeftNothing()
	h.apply(one(pay("t3", "treasury", "alice", 100))) // the store still takes the next record
	h.reopen()
	checkRefusedLeftNothing()
}

func testIdempotency(t *testing.T, newStore func(t *testing.T) Opener) {
	h := start(t, newStore)
	ctx, s := t.Context(), h.store
	hash := func(s string) journal.Hash { return sha256.Sum256([]byte(s)) }
	a := journal.Idempotency{Scope: "key_1", Key: "order-1", RequestHash: hash("a"), Status: 201,
		Body: []byte(`{"id":"t1"}`), ExpiresAt: timeStart + 100}
	b := journal.Idempotency{Scope: "key_2", Key: "order-1", RequestHash: hash("b"), Status: 422,
		Body: []byte(`{"code":"insufficient_funds"}`), ExpiresAt: timeStart + 200}
	c := journal.Idempotency{Scope: "key_1", Key: "order-2", RequestHash: hash("c"), Status: 204,
		ExpiresAt: timeStart + 300}
	if err := s.Commit(ctx, &journal.Commit{Idempotency: []journal.Idempotency{a, b, c}}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	want := func(v journal.Idempotency, now int64) {
		t.Helper()
		got, err := h.store.Idempotency(ctx, v.Scope, v.Key, now)
		if err != nil {
			t.Errorf("Idempotency(%s, %s, %d): %v", v.Scope, v.Key, now, err)
			return
		}
		if got.Scope != v.Scope || got.Key != v.Key || got.RequestHash != v.RequestHash ||
			got.Status != v.Status || !bytes.Equal(got.Body, v.Body) || got.ExpiresAt != v.ExpiresAt {
			t.Errorf("Idempotency(%s, %s):\n got %+v\nwant %+v", v.Scope, v.Key, *got, v)
		}
	}
	gone := func(scope, key string, now int64) {
		t.Helper()
		if got, err := h.store.Idempotency(ctx, scope, key, now); !isNotFound(err) {
			t.Errorf("Idempotency(%s, %s, %d): got %+v, %v, want ErrNotFound", scope, key, now, got, err)
		}
	}
	want(a, timeStart)
	want(b, timeStart)
	want(c, timeStart)
	want(a, a.ExpiresAt) // good up to and including expires_at
	gone(a.Scope, a.Key, a.ExpiresAt+1)
	gone("key_3", "order-1", timeStart)
	gone("key_1", "order-3", timeStart)
	if head, _ := s.Head(ctx); head.Seq != 0 {
		t.Errorf("Head after a commit of side data only: got %d, want 0", head.Seq)
	}

	a2 := a
	a2.Status, a2.Body, a2.ExpiresAt = 200, []byte(`{"again":true}`), timeStart+1000
	if err := s.Commit(ctx, &journal.Commit{Idempotency: []journal.Idempotency{a2}}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	want(a2, timeStart+500)
	n, err := s.DeleteExpiredIdempotency(ctx, timeStart+250)
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredIdempotency: got %d (%v), want 1 (b)", n, err)
	}
	gone(b.Scope, b.Key, timeStart) // deleted, not only expired
	want(a2, timeStart)
	want(c, timeStart)
	if n, err := s.DeleteExpiredIdempotency(ctx, timeStart+250); err != nil || n != 0 {
		t.Errorf("DeleteExpiredIdempotency again: got %d (%v), want 0", n, err)
	}
	h.reopen()
	want(a2, timeStart)
	want(c, timeStart)
	gone(b.Scope, b.Key, timeStart)
	if n, err := h.store.DeleteExpiredIdempotency(ctx, timeStart+2000); err != nil || n != 2 {
		t.Errorf("DeleteExpiredIdempotency after reopen: got %d (%v), want 2", n, err)
	}
	gone(a2.Scope, a2.Key, timeStart)
	gone(c.Scope, c.Key, timeStart)
}

func testAPIKeys(t *testing.T, newStore func(t *testing.T) Opener) {
	h := start(t, newStore)
	ctx := t.Context()
	secret := func(s string) journal.Hash { return sha256.Sum256([]byte(s)) }
	kb := journal.APIKey{ID: "key_b", Name: "checkout-service", Scopes: []string{"write"},
		Hash: secret("secret-b"), CreatedAt: timeStart}
	ka := journal.APIKey{ID: "key_a", Name: "admin", Scopes: []string{"admin", "read"},
		Hash: secret("secret-a"), CreatedAt: timeStart + 1}
	if err := h.store.Commit(ctx, &journal.Commit{APIKeys: []journal.APIKey{kb, ka}}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	check := func(want ...journal.APIKey) {
		t.Helper()
		got, err := h.store.APIKeys(ctx)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("APIKeys:\n got %+v (%v)\nwant %+v", got, err, want)
		}
		for _, k := range want {
			got, err := h.store.APIKeyByHash(ctx, k.Hash)
			if err != nil || !reflect.DeepEqual(*got, k) {
				t.Errorf("APIKeyByHash(%s): got %+v (%v), want %+v", k.ID, got, err, k)
			}
		}
		if _, err := h.store.APIKeyByHash(ctx, secret("unknown")); !isNotFound(err) {
			t.Errorf("APIKeyByHash(unknown): got %v, want ErrNotFound", err)
		}
	}
	check(ka, kb)
	kb.Revoked = true
	if err := h.store.Commit(ctx, &journal.Commit{APIKeys: []journal.APIKey{kb}}); err != nil {
		t.Fatalf("Commit revoke: %v", err)
	}
	check(ka, kb)
	h.reopen()
	check(ka, kb)
}

func testPaging(t *testing.T, newStore func(t *testing.T) Opener) {
	h := start(t, newStore)
	cmds := []ledger.Command{openAccount("treasury", "platform", "USD", true)}
	for _, id := range []string{"o1-a", "o1-b", "o1-c", "o1-d", "o1-e", "o1-f", "o1-g"} {
		cmds = append(cmds, openAccount(id, "user:o1", "USD", false))
	}
	for _, id := range []string{"o10-a", "o10-b"} { // an owner that extends another's name
		cmds = append(cmds, openAccount(id, "user:o10", "USD", false))
	}
	for _, id := range []string{"o2-a", "o2-b", "o2-c"} {
		cmds = append(cmds, openAccount(id, "user:o2", "USD", false))
	}
	h.apply(cmds...)
	// Many creates in one record, so that paging goes through a record in steps.
	var big []ledger.Request
	for i := range 40 {
		big = append(big, pay(fmt.Sprintf("fund-%02d", i), "treasury", []string{"o1-a", "o1-b", "o10-a"}[i%3], 100))
	}
	h.apply(ledger.Command{Atomic: true, Requests: big})
	for i := range 6 { // holds between posts: activity that is not an entry
		h.apply(one(pay(fmt.Sprintf("p-%d", i), "o1-a", "o1-b", 10)),
			one(hold(fmt.Sprintf("h-%d", i), "o1-a", "o2-a", 5, 0)),
			one(pay(fmt.Sprintf("q-%d", i), "o1-b", "o1-a", 3)))
		h.apply(one(increase(fmt.Sprintf("h-%d", i), 1)))
	}
	h.apply(one(post("h-0", 0, true)), one(void("h-1")), one(post("h-2", 2, false)))
	for _, limit := range []int{1, 2, 3} {
		h.checkLists(limit)
	}
	h.checkReads()
	h.checkBadCursors("o1-a", "o1-b")
	// Clamped defensively: a limit out of range still gives a valid page.
	if page, _, err := h.store.Accounts(t.Context(), "", "", 5000); err != nil || len(page) != h.state.AccountCount() {
		t.Errorf("Accounts(limit 5000): got %d (%v), want all %d", len(page), err, h.state.AccountCount())
	}
	if page, _, err := h.store.Transfers(t.Context(), "o1-a", "", 0); err != nil || len(page) > 1 || len(page) == 0 {
		t.Errorf("Transfers(limit 0): got %d (%v), want one", len(page), err)
	}
	if page, next, err := h.store.Transfers(t.Context(), "no-such-account", "", 10); err != nil || len(page) != 0 || next != "" {
		t.Errorf("Transfers(no-such-account): got %d, %q (%v), want an empty page", len(page), next, err)
	}
	h.reopen()
	h.checkLists(2)
}

func testSideDataWithRecord(t *testing.T, newStore func(t *testing.T) Opener) {
	h := start(t, newStore)
	ctx := t.Context()
	key := journal.APIKey{ID: "key_1", Name: "svc", Scopes: []string{"write"}, Hash: sha256.Sum256([]byte("s")),
		CreatedAt: timeStart}
	idem := journal.Idempotency{Scope: "key_1", Key: "create-alice", Status: 201,
		Body: []byte(`{"id":"alice"}`), ExpiresAt: timeStart + 7*24*3600e9}
	h.applyWith(false, journal.Commit{APIKeys: []journal.APIKey{key}, Idempotency: []journal.Idempotency{idem}},
		openAccount("alice", "user:alice", "USD", false))
	if _, err := h.store.Idempotency(ctx, "key_1", "create-alice", timeStart); err != nil {
		t.Errorf("Idempotency stored with the record: %v", err)
	}
	if _, err := h.store.APIKeyByHash(ctx, key.Hash); err != nil {
		t.Errorf("API key stored with the record: %v", err)
	}
	h.checkReads()
}
