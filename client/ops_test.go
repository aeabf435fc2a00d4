package client_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/client"
)

// Every operation of the SDK against the real server: what it returns, and the codes it
// fails with.

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	name := uid("svc")
	k, err := c.CreateAPIKey(ctx, client.CreateAPIKeyRequest{Name: name, Scopes: []client.Scope{client.ScopeWrite}})
	if err != nil {
		t.Fatal(err)
	}
	if k.Key == "" || k.ID == "" || k.Name != name || !slices.Equal(k.Scopes, []client.Scope{client.ScopeWrite}) || k.CreatedAt.IsZero() {
		t.Errorf("CreateAPIKey = %+v", k)
	}

	// The new key writes accounts, but is no admin.
	w, err := client.New(baseURL, k.Key)
	if err != nil {
		t.Fatal(err)
	}
	mustAccount(t, w, client.CreateAccountRequest{Asset: "USD"})
	_, err = w.CreateAsset(ctx, client.Asset{Code: "NOPE", Scale: 2})
	wantCode(t, err, client.ErrForbidden, client.CodeForbidden)

	// Listed, one key a page, without its secret.
	found, pages := false, 0
	for key, err := range c.APIKeys(ctx, client.ListParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if key.ID == k.ID {
			found = key.Name == name && key.CreatedAt.Equal(k.CreatedAt)
		}
	}
	if !found || pages < 2 {
		t.Errorf("APIKeys: found %v over %d pages, want the new key among at least 2 (the admin key too)", found, pages)
	}
	page, err := c.ListAPIKeys(ctx, client.ListParams{Limit: 1})
	if err != nil || len(page.Items) != 1 || page.NextCursor == "" {
		t.Errorf("ListAPIKeys(limit 1) = %+v, %v: want one key and a next cursor", page, err)
	}

	if err := c.DeleteAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	_, err = w.GetAccount(ctx, "anything")
	wantCode(t, err, client.ErrUnauthenticated, client.CodeUnauthenticated)
	wantCode(t, c.DeleteAPIKey(ctx, k.ID), client.ErrNotFound, client.CodeNotFound)
	_, err = c.CreateAPIKey(ctx, client.CreateAPIKeyRequest{Scopes: []client.Scope{"root"}})
	wantCode(t, err, client.ErrInvalidRequest, client.CodeInvalidRequest)
}

func TestAssets(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	code := strings.ToUpper("T" + strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' {
			return r
		}
		return 'X'
	}, uid("")[1:])[:10])
	a, err := c.CreateAsset(ctx, client.Asset{Code: code, Scale: 3})
	if err != nil {
		t.Fatal(err)
	}
	if *a != (client.Asset{Code: code, Scale: 3}) {
		t.Errorf("CreateAsset = %+v", a)
	}
	all, err := c.ListAssets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(all, client.Asset{Code: code, Scale: 3}) || !slices.Contains(all, client.Asset{Code: "ETH", Scale: 18}) {
		t.Errorf("ListAssets = %v: want %s and the preloaded ETH", all, code)
	}
	_, err = c.CreateAsset(ctx, client.Asset{Code: code, Scale: 3})
	wantCode(t, err, client.ErrAssetExists, client.CodeAssetExists)
	_, err = c.CreateAsset(ctx, client.Asset{Code: "x", Scale: 99})
	wantCode(t, err, client.ErrInvalidRequest, client.CodeInvalidRequest)
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	owner := uid("user:owner")
	req := client.CreateAccountRequest{ID: uid("acc"), Owner: owner, Asset: "EUR", Kind: client.AccountMerchant,
		Metadata: map[string]string{"tier": "kyc2"}}
	a := mustAccount(t, c, req)
	if a.ID != req.ID || a.Owner != owner || a.Asset != "EUR" || a.Kind != client.AccountMerchant ||
		a.Status != client.AccountActive || a.AllowNegative || a.Metadata["tier"] != "kyc2" || a.CreatedAt.IsZero() ||
		!a.Balance.Posted.IsZero() || !a.DebitsPosted.IsZero() {
		t.Errorf("CreateAccount = %+v", a)
	}
	got := mustGetAccount(t, c, a.ID)
	if got.ID != a.ID || !got.CreatedAt.Equal(a.CreatedAt) || got.Metadata["tier"] != "kyc2" {
		t.Errorf("GetAccount = %+v, want %+v", got, a)
	}
	// The server makes an id when there is none.
	b := mustAccount(t, c, client.CreateAccountRequest{Owner: owner, Asset: "EUR"})
	d := mustAccount(t, c, client.CreateAccountRequest{Owner: owner, Asset: "EUR"})
	if b.ID == "" || b.Kind != client.AccountUser {
		t.Errorf("CreateAccount without id = %+v: want an id and kind user", b)
	}

	// The owner's three accounts, by id, one a page.
	var ids []string
	for acc, err := range c.Accounts(ctx, client.ListAccountsParams{Owner: owner, ListParams: client.ListParams{Limit: 1}}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, acc.ID)
	}
	want := []string{a.ID, b.ID, d.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("Accounts(owner) = %v, want %v", ids, want)
	}
	// Breaking out of the loop stops it.
	n := 0
	for range c.Accounts(ctx, client.ListAccountsParams{Owner: owner, ListParams: client.ListParams{Limit: 1}}) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("a loop broken at once ran %d times", n)
	}

	_, err := c.GetAccount(ctx, uid("missing"))
	wantCode(t, err, client.ErrAccountNotFound, client.CodeAccountNotFound)
	_, err = c.CreateAccount(ctx, req)
	wantCode(t, err, client.ErrAccountExists, client.CodeAccountExists)
	_, err = c.CreateAccount(ctx, client.CreateAccountRequest{Asset: "NOSUCH"})
	wantCode(t, err, client.ErrAssetUnknown, client.CodeAssetUnknown)
	_, err = c.ListAccounts(ctx, client.ListAccountsParams{ListParams: client.ListParams{Cursor: "garbage"}})
	wantCode(t, err, client.ErrInvalidRequest, client.CodeInvalidRequest)

	// Frozen: no transfer in or out; unfrozen: again.
	f, err := c.FreezeAccount(ctx, b.ID)
	if err != nil || f.Status != client.AccountFrozen {
		t.Fatalf("FreezeAccount = %+v, %v", f, err)
	}
	_, err = c.CreateTransfer(ctx, client.CreateTransferRequest{Source: a.ID, Destination: b.ID, Amount: amt("1")})
	wantCode(t, err, client.ErrAccountFrozen, client.CodeAccountFrozen)
	u, err := c.UnfreezeAccount(ctx, b.ID)
	if err != nil || u.Status != client.AccountActive {
		t.Fatalf("UnfreezeAccount = %+v, %v", u, err)
	}
	_, err = c.FreezeAccount(ctx, uid("missing"))
	wantCode(t, err, client.ErrAccountNotFound, client.CodeAccountNotFound)
}

func TestTransfersEntriesBalance(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	treasury, users := funded(t, c, "USD", 2, "0")
	alice, bob := users[0], users[1]
	topup := mustTransfer(t, c, client.CreateTransferRequest{Source: treasury, Destination: alice, Amount: amt("1000"),
		Kind: client.KindTopup})
	pay := mustTransfer(t, c, client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("250"),
		Asset: "USD", Reference: "order-42", Metadata: map[string]string{"cart": "7"}})
	if pay.Status != client.StatusPosted || pay.Amount != amt("250") || pay.AmountPosted != amt("250") ||
		pay.Kind != client.KindP2P || pay.Reference != "order-42" || pay.Metadata["cart"] != "7" ||
		pay.PostedAt == nil || pay.ExpiresAt != nil || pay.Asset != "USD" || !strings.HasPrefix(pay.ID, "tr_") {
		t.Errorf("CreateTransfer = %+v", pay)
	}
	wantBalance(t, c, alice, "750", "750")
	wantBalance(t, c, bob, "250", "250")
	wantBalance(t, c, treasury, "-1000", "-1000") // a SignedAmount below zero
	tre := mustGetAccount(t, c, treasury)
	if !tre.Balance.Posted.Neg() || tre.DebitsPosted != amt("1000") {
		t.Errorf("treasury = %+v", tre)
	}

	got, err := c.GetTransfer(ctx, pay.ID)
	if err != nil || got.ID != pay.ID || !got.CreatedAt.Equal(pay.CreatedAt) {
		t.Errorf("GetTransfer = %+v, %v", got, err)
	}
	_, err = c.GetTransfer(ctx, "tr_0000000000000")
	wantCode(t, err, client.ErrTransferNotFound, client.CodeTransferNotFound)

	// Newest first.
	var list []string
	for tr, err := range c.Transfers(ctx, client.ListTransfersParams{Account: alice, ListParams: client.ListParams{Limit: 1}}) {
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, tr.ID)
	}
	if !slices.Equal(list, []string{pay.ID, topup.ID}) {
		t.Errorf("Transfers(alice) = %v, want %v", list, []string{pay.ID, topup.ID})
	}
	page, err := c.ListTransfers(ctx, client.ListTransfersParams{Account: alice})
	if err != nil || len(page.Items) != 2 || page.NextCursor != "" {
		t.Errorf("ListTransfers(alice) = %+v, %v", page, err)
	}
	_, err = c.ListTransfers(ctx, client.ListTransfersParams{Account: uid("missing")})
	wantCode(t, err, client.ErrAccountNotFound, client.CodeAccountNotFound)

	var entries []client.Entry
	for e, err := range c.Entries(ctx, alice, client.ListParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, *e)
	}
	if len(entries) != 2 ||
		entries[0].TransferID != pay.ID || entries[0].Direction != client.Debit || entries[0].Amount != amt("250") ||
		entries[0].PostedAfter.String() != "750" ||
		entries[1].TransferID != topup.ID || entries[1].Direction != client.Credit || entries[1].Kind != client.KindTopup ||
		entries[1].PostedAfter.String() != "1000" {
		t.Errorf("Entries(alice) = %+v", entries)
	}
	_, err = c.ListEntries(ctx, uid("missing"), client.ListParams{})
	wantCode(t, err, client.ErrAccountNotFound, client.CodeAccountNotFound)

	// The posted balance at the top-up, and now.
	at, err := c.BalanceAt(ctx, alice, topup.CreatedAt)
	if err != nil || at.Posted.String() != "1000" || at.AccountID != alice || !at.At.Equal(topup.CreatedAt) {
		t.Errorf("BalanceAt(topup) = %+v, %v", at, err)
	}
	before, err := c.BalanceAt(ctx, alice, topup.CreatedAt.Add(-time.Nanosecond))
	if err != nil || !before.Posted.IsZero() {
		t.Errorf("BalanceAt(before the top-up) = %+v, %v", before, err)
	}
	now, err := c.BalanceAt(ctx, alice, time.Time{})
	if err != nil || now.Posted.String() != "750" {
		t.Errorf("BalanceAt(now) = %+v, %v", now, err)
	}
	_, err = c.BalanceAt(ctx, uid("missing"), time.Time{})
	wantCode(t, err, client.ErrAccountNotFound, client.CodeAccountNotFound)

	// The rejections of a transfer, none of which moves anything.
	eur := mustAccount(t, c, client.CreateAccountRequest{Asset: "EUR"}).ID
	for _, tc := range []struct {
		req  client.CreateTransferRequest
		want error
		code client.Code
	}{
		{client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("751")}, client.ErrInsufficientFunds, client.CodeInsufficientFunds},
		{client.CreateTransferRequest{Source: alice, Destination: alice, Amount: amt("1")}, client.ErrSameAccount, client.CodeSameAccount},
		{client.CreateTransferRequest{Source: alice, Destination: eur, Amount: amt("1")}, client.ErrAssetMismatch, client.CodeAssetMismatch},
		{client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("1"), Asset: "EUR"}, client.ErrAssetMismatch, client.CodeAssetMismatch},
		{client.CreateTransferRequest{Source: treasury, Destination: alice, Amount: client.AmountMax}, client.ErrAmountOverflow, client.CodeAmountOverflow},
		{client.CreateTransferRequest{Source: uid("missing"), Destination: alice, Amount: amt("1")}, client.ErrAccountNotFound, client.CodeAccountNotFound},
		{client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("0")}, client.ErrInvalidRequest, client.CodeInvalidRequest},
		{client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("1"), ID: "tr_0000000000000"}, client.ErrInvalidRequest, client.CodeInvalidRequest},
	} {
		_, err := c.CreateTransfer(ctx, tc.req)
		wantCode(t, err, tc.want, tc.code)
	}
	wantBalance(t, c, alice, "750", "750")

	// A client id makes the transfer itself idempotent: the same fields again answer 200
	// with it, other fields 409.
	id := uid("pay")
	first := mustTransfer(t, c, client.CreateTransferRequest{ID: id, Source: alice, Destination: bob, Amount: amt("50")})
	var m client.Meta
	again, err := c.CreateTransfer(ctx, client.CreateTransferRequest{ID: id, Source: alice, Destination: bob, Amount: amt("50")},
		client.WithMeta(&m))
	if err != nil || again.ID != first.ID || m.Status != 200 || m.Replayed {
		t.Errorf("the same transfer again = %+v, %v, %+v: want the first, status 200, not a replay", again, err, m)
	}
	_, err = c.CreateTransfer(ctx, client.CreateTransferRequest{ID: id, Source: alice, Destination: bob, Amount: amt("51")})
	wantCode(t, err, client.ErrTransferExists, client.CodeTransferExists)
	wantBalance(t, c, alice, "700", "700")
}

func TestHolds(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	_, users := funded(t, c, "USD", 2, "1000")
	alice, bob := users[0], users[1]

	h := mustTransfer(t, c, client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("300"),
		Hold: &client.Hold{Timeout: 10 * time.Minute}})
	if h.Status != client.StatusPending || h.ExpiresAt == nil || h.ExpiresAt.Sub(h.CreatedAt) != 10*time.Minute ||
		!h.AmountPosted.IsZero() || h.PostedAt != nil {
		t.Errorf("hold = %+v", h)
	}
	a := mustGetAccount(t, c, alice)
	if a.Balance.Posted.String() != "1000" || a.Balance.Available.String() != "700" || a.Balance.PendingDebits != amt("300") {
		t.Errorf("alice while held = %+v", a.Balance)
	}
	if b := mustGetAccount(t, c, bob); b.Balance.PendingCredits != amt("300") {
		t.Errorf("bob while held = %+v", b.Balance)
	}

	inc, err := c.IncreaseTransfer(ctx, h.ID, amt("50"))
	if err != nil || inc.Amount != amt("350") || inc.Status != client.StatusPending || !inc.ExpiresAt.Equal(*h.ExpiresAt) {
		t.Fatalf("IncreaseTransfer = %+v, %v", inc, err)
	}
	_, err = c.IncreaseTransfer(ctx, h.ID, amt("651"))
	wantCode(t, err, client.ErrInsufficientFunds, client.CodeInsufficientFunds)

	part, err := c.PostTransfer(ctx, h.ID, client.PostTransferRequest{Amount: amt("100"), NotFinal: true})
	if err != nil || part.Status != client.StatusPending || part.AmountPosted != amt("100") || part.PostedAt == nil {
		t.Fatalf("PostTransfer(100, not final) = %+v, %v", part, err)
	}
	_, err = c.PostTransfer(ctx, h.ID, client.PostTransferRequest{Amount: amt("251")})
	wantCode(t, err, client.ErrAmountExceedsHold, client.CodeAmountExceedsHold)
	final, err := c.PostTransfer(ctx, h.ID, client.PostTransferRequest{}) // the rest, finally
	if err != nil || final.Status != client.StatusPosted || final.AmountPosted != amt("350") {
		t.Fatalf("PostTransfer(all) = %+v, %v", final, err)
	}
	_, err = c.VoidTransfer(ctx, h.ID)
	wantCode(t, err, client.ErrTransferNotPending, client.CodeTransferNotPending)
	wantBalance(t, c, alice, "650", "650")
	wantBalance(t, c, bob, "1350", "1350")

	// A hold that never expires, voided: what it held comes back.
	forever := mustTransfer(t, c, client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("600"),
		Hold: &client.Hold{}})
	if forever.ExpiresAt != nil {
		t.Errorf("a hold without timeout expires at %v", forever.ExpiresAt)
	}
	wantBalance(t, c, alice, "650", "50")
	v, err := c.VoidTransfer(ctx, forever.ID)
	if err != nil || v.Status != client.StatusVoided {
		t.Fatalf("VoidTransfer = %+v, %v", v, err)
	}
	wantBalance(t, c, alice, "650", "650")
	for _, err := range []error{
		second(c.PostTransfer(ctx, "tr_0000000000000", client.PostTransferRequest{})),
		second(c.IncreaseTransfer(ctx, "tr_0000000000000", amt("1"))),
		second(c.VoidTransfer(ctx, "tr_0000000000000")),
	} {
		wantCode(t, err, client.ErrTransferNotFound, client.CodeTransferNotFound)
	}
	// A hold timeout that is not whole seconds cannot be sent.
	if _, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: alice, Destination: bob, Amount: amt("1"),
		Hold: &client.Hold{Timeout: 1500 * time.Millisecond}}); err == nil || client.CodeOf(err) != "" {
		t.Errorf("a hold of 1.5 s = %v, want an encoding error before sending", err)
	}
}

// TestHoldExpired waits for the server to expire a hold — on its events, not on a clock —
// and then finds the hold closed to post, increase and void.
func TestHoldExpired(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	_, users := funded(t, c, "USD", 2, "100")
	head := headSeq(t, c)
	h := mustTransfer(t, c, client.CreateTransferRequest{Source: users[0], Destination: users[1], Amount: amt("40"),
		Hold: &client.Hold{Timeout: time.Second}})
	for e, err := range c.Events(ctx, client.EventsParams{After: uitoa(head), Types: []client.EventType{client.EventTransferExpired}}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Subject == h.ID {
			if e.Data.Op != client.OpExpire || e.Data.Transfer.Status != client.StatusExpired || *e.Data.Amount != amt("40") {
				t.Errorf("expired event = %+v", e)
			}
			break
		}
	}
	_, err := c.PostTransfer(ctx, h.ID, client.PostTransferRequest{})
	wantCode(t, err, client.ErrHoldExpired, client.CodeHoldExpired)
	_, err = c.IncreaseTransfer(ctx, h.ID, amt("1"))
	wantCode(t, err, client.ErrHoldExpired, client.CodeHoldExpired)
	wantBalance(t, c, users[0], "100", "100")
}

func second[T any](_ T, err error) error { return err }

func TestBatches(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	_, users := funded(t, c, "USD", 3, "100")
	a, b, d := users[0], users[1], users[2]

	// In order: b spends what a gave it.
	trs, err := c.CreateBatchAtomic(ctx, []client.CreateTransferRequest{
		{Source: a, Destination: b, Amount: amt("100")},
		{Source: b, Destination: d, Amount: amt("200")},
	})
	if err != nil || len(trs) != 2 || trs[0].Source != a || trs[1].Amount != amt("200") {
		t.Fatalf("CreateBatchAtomic = %+v, %v", trs, err)
	}
	wantBalance(t, c, d, "300", "300")

	// All or none: the second fails, so the first is not applied either.
	_, err = c.CreateBatchAtomic(ctx, []client.CreateTransferRequest{
		{Source: d, Destination: a, Amount: amt("10")},
		{Source: a, Destination: b, Amount: amt("1000")},
		{Source: a, Destination: a, Amount: amt("1")},
	})
	wantCode(t, err, client.ErrBatchFailed, client.CodeBatchFailed)
	var e *client.Error
	if errors.As(err, &e) {
		// The server names the first failure (at least).
		if len(e.Errors) == 0 || e.Errors[0].Index != 1 || !errors.Is(e.Errors[0].Err(), client.ErrInsufficientFunds) {
			t.Errorf("batch_failed errors = %+v", e.Errors)
		}
	}
	wantBalance(t, c, d, "300", "300")
	wantBalance(t, c, a, "0", "0")

	// Each on its own.
	res, err := c.CreateBatch(ctx, []client.CreateTransferRequest{
		{Source: d, Destination: a, Amount: amt("10")},
		{Source: a, Destination: b, Amount: amt("1000")},
	})
	if err != nil || len(res) != 2 || res[0].Transfer == nil || res[0].Err != nil || res[1].Transfer != nil ||
		!errors.Is(res[1].Err, client.ErrInsufficientFunds) {
		t.Fatalf("CreateBatch = %+v, %v", res, err)
	}
	wantBalance(t, c, a, "10", "10")

	_, err = c.CreateBatch(ctx, make([]client.CreateTransferRequest, 8191))
	wantCode(t, err, client.ErrBatchTooLarge, client.CodeBatchTooLarge)
	_, err = c.CreateBatch(ctx, nil)
	wantCode(t, err, client.ErrInvalidRequest, client.CodeInvalidRequest)
}

func TestJournal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	h0 := headSeq(t, c)
	_, users := funded(t, c, "USD", 1, "5")

	head, err := c.JournalHead(ctx)
	if err != nil || head.Seq == 0 || len(head.Hash) != 64 {
		t.Fatalf("JournalHead = %+v, %v", head, err)
	}
	// Every record from the start, a page of 2 at a time, chained by hash, up to (at
	// least) the head read before.
	var prev *client.Record
	n := 0
	for r, err := range c.Journal(ctx, client.JournalParams{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r.Seq != uint64(n) || len(r.Changes) == 0 {
			t.Fatalf("record %d = %+v", n, r)
		}
		want := strings.Repeat("0", 64)
		if prev != nil {
			want = prev.Hash
		}
		if r.PrevHash != want {
			t.Fatalf("record %d prev_hash %s, want %s", r.Seq, r.PrevHash, want)
		}
		prev = r
	}
	if uint64(n) < head.Seq {
		t.Errorf("Journal yielded %d records, want at least %d", n, head.Seq)
	}
	page, err := c.ListJournal(ctx, client.JournalParams{After: head.Seq - 1, Limit: 1})
	if err != nil || len(page.Items) != 1 || page.Items[0].Seq != head.Seq || page.NextCursor != uitoa(head.Seq) {
		t.Fatalf("ListJournal(after head-1) = %+v, %v", page, err)
	}
	// The user's top-up is in the journal, once, after the head read before it.
	found := 0
	for r, err := range c.Journal(ctx, client.JournalParams{After: h0}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range r.Changes {
			if ch.Op == client.OpCreate && ch.Transfer != nil && ch.Transfer.Destination == users[0] {
				found++
				if *ch.Amount != amt("5") || ch.Transfer.Status != client.StatusPosted || ch.Timestamp.IsZero() {
					t.Errorf("the top-up's change = %+v", ch)
				}
			}
		}
	}
	if found != 1 {
		t.Errorf("the top-up is %d times in the journal, want once", found)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	head := headSeq(t, c)

	// A follower that long-polls from the head sees what is written after it starts.
	type seen struct {
		typ  client.EventType
		subj string
	}
	got := make(chan seen, 16)
	acc := uid("ev")
	go func() {
		defer close(got)
		for e, err := range c.Events(ctx, client.EventsParams{After: uitoa(head), Limit: 1}) {
			if err != nil {
				t.Error(err)
				return
			}
			if e.SpecVersion != "1.0" || e.JournalSeq <= head || e.ID == "" || e.Source == "" || e.Time.IsZero() {
				t.Errorf("event = %+v", e)
			}
			switch {
			case e.Type == client.EventAccountCreated && e.Subject == acc && e.PartitionKey == acc:
				got <- seen{e.Type, e.Subject}
			case e.Data.Transfer != nil && e.Data.Transfer.Destination == acc:
				got <- seen{e.Type, e.Subject}
				return
			}
		}
	}()
	tre := mustAccount(t, c, client.CreateAccountRequest{Asset: "USD", AllowNegative: true}).ID
	mustAccount(t, c, client.CreateAccountRequest{ID: acc, Asset: "USD"})
	tr := mustTransfer(t, c, client.CreateTransferRequest{Source: tre, Destination: acc, Amount: amt("9")})
	var events []seen
	for s := range got {
		events = append(events, s)
	}
	want := []seen{{client.EventAccountCreated, acc}, {client.EventTransferPosted, tr.ID}}
	if !slices.Equal(events, want) {
		t.Errorf("events for %s = %v, want %v", acc, events, want)
	}

	// Filtered by type, one page.
	page, err := c.ListEvents(ctx, client.EventsParams{After: uitoa(head), Types: []client.EventType{client.EventAccountCreated}})
	if err != nil || len(page.Items) == 0 || page.NextCursor == "" {
		t.Fatalf("ListEvents = %+v, %v", page, err)
	}
	for _, e := range page.Items {
		if e.Type != client.EventAccountCreated || e.Data.Account == nil || e.Data.Account.ID != e.Subject {
			t.Errorf("ListEvents(account.created) gave %+v", e)
		}
	}
	_, err = c.ListEvents(ctx, client.EventsParams{Types: []client.EventType{"no.such"}})
	wantCode(t, err, client.ErrInvalidRequest, client.CodeInvalidRequest)

	fol, err := c.ListFollowers(ctx)
	if err != nil || len(fol) != 0 {
		t.Errorf("ListFollowers = %+v, %v: want none (no outlet configured)", fol, err)
	}
}

// TestEventsEndWithContext: the endless iterator ends when its context does, with the
// context's error, even while a long poll waits.
func TestEventsEndWithContext(t *testing.T) {
	t.Parallel()
	// Only events of a type rarely made, from the head: the poll waits.
	// The poll is on its way once the HTTP client has it.
	sent := make(chan struct{})
	var once sync.Once
	c := sharedClient(t, client.WithHTTPClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		once.Do(func() { close(sent) })
		return http.DefaultTransport.RoundTrip(r)
	})}))
	ctx, cancel := context.WithCancel(t.Context())
	head := uitoa(headSeq(t, sharedClient(t)))
	done := make(chan error, 1)
	go func() {
		for _, err := range c.Events(ctx, client.EventsParams{After: head, Types: []client.EventType{client.EventAccountUnfrozen}}) {
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	<-sent
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Events after cancel: %v, want context.Canceled", err)
	}
}

// TestIdempotencyKeys: the same key and request answer the stored answer (a success or a
// rejection) without applying again; the same key with another request is refused.
func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := sharedClient(t)
	treasury, users := funded(t, c, "USD", 2, "100")
	key := uid("order-7")
	req := client.CreateTransferRequest{Source: users[0], Destination: users[1], Amount: amt("30")}
	var m1, m2 client.Meta
	t1, err := c.CreateTransfer(ctx, req, client.WithIdempotencyKey(key), client.WithMeta(&m1))
	if err != nil {
		t.Fatal(err)
	}
	t2, err := c.CreateTransfer(ctx, req, client.WithIdempotencyKey(key), client.WithMeta(&m2))
	if err != nil {
		t.Fatal(err)
	}
	if t1.ID != t2.ID || m1.Replayed || !m2.Replayed || m1.IdempotencyKey != key || m2.IdempotencyKey != key ||
		m1.Status != 201 || m2.Status != 201 || m1.Attempts != 1 {
		t.Errorf("same key twice: %s %+v, %s %+v", t1.ID, m1, t2.ID, m2)
	}
	wantBalance(t, c, users[0], "70", "70")
	if n := transferCount(t, c, users[0]); n != 2 { // the top-up and the one payment
		t.Errorf("%d transfers, want 2", n)
	}

	other := req
	other.Amount = amt("31")
	_, err = c.CreateTransfer(ctx, other, client.WithIdempotencyKey(key))
	wantCode(t, err, client.ErrIdempotencyKeyReused, client.CodeIdempotencyKeyReused)

	// A rejection is stored too, and replayed even once the funds are there.
	big := req
	big.Amount = amt("500")
	key2 := uid("big")
	_, err = c.CreateTransfer(ctx, big, client.WithIdempotencyKey(key2))
	wantCode(t, err, client.ErrInsufficientFunds, client.CodeInsufficientFunds)
	mustTransfer(t, c, client.CreateTransferRequest{Source: treasury, Destination: users[0], Amount: amt("500")})
	var m client.Meta
	_, err = c.CreateTransfer(ctx, big, client.WithIdempotencyKey(key2), client.WithMeta(&m))
	wantCode(t, err, client.ErrInsufficientFunds, client.CodeInsufficientFunds)
	if !m.Replayed || m.Status != 422 {
		t.Errorf("the rejection again: %+v, want a replayed 422", m)
	}

	// Without a key of the caller's, each call gets its own.
	var ma, mb client.Meta
	mustTransferMeta(t, c, req, &ma)
	mustTransferMeta(t, c, req, &mb)
	if ma.IdempotencyKey == "" || ma.IdempotencyKey == mb.IdempotencyKey || ma.Replayed || mb.Replayed {
		t.Errorf("two calls: %+v and %+v, want two fresh keys", ma, mb)
	}
	// Reads carry none.
	var mr client.Meta
	if _, err := c.GetAccount(ctx, users[0], client.WithMeta(&mr)); err != nil || mr.IdempotencyKey != "" || mr.RequestID == "" {
		t.Errorf("GetAccount meta = %+v, %v", mr, err)
	}
	// A request id of the caller's names the call.
	var mi client.Meta
	if _, err := c.GetAccount(ctx, users[0], client.WithRequestID("trace-42"), client.WithMeta(&mi)); err != nil || mi.RequestID != "trace-42" {
		t.Errorf("GetAccount with request id: %+v, %v", mi, err)
	}
}

func mustTransferMeta(t *testing.T, c *client.Client, req client.CreateTransferRequest, m *client.Meta) {
	t.Helper()
	if _, err := c.CreateTransfer(t.Context(), req, client.WithMeta(m)); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentCalls: one client shared by many goroutines (run it with -race).
func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	c := sharedClient(t)
	_, users := funded(t, c, "USD", 2, "1000")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.CreateTransfer(t.Context(), client.CreateTransferRequest{Source: users[0], Destination: users[1],
				Amount: amt("7")}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	wantBalance(t, c, users[0], "860", "860")
	wantBalance(t, c, users[1], "1140", "1140")
}

func TestUnauthenticatedAndCancelled(t *testing.T) {
	t.Parallel()
	c, err := client.New(baseURL, "not-a-key")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListAssets(t.Context())
	wantCode(t, err, client.ErrUnauthenticated, client.CodeUnauthenticated)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var m client.Meta
	_, err = sharedClient(t).ListAssets(ctx, client.WithMeta(&m))
	if !errors.Is(err, context.Canceled) || m.Attempts != 1 || client.CodeOf(err) != "" {
		t.Errorf("a cancelled call: %v, %+v", err, m)
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://host/?q=1"} {
		if _, err := client.New(bad, "k"); err == nil {
			t.Errorf("New(%q) = nil error", bad)
		}
	}
}

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
