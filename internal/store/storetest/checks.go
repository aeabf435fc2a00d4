package storetest

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// pageFunc reads one page of a list.
type pageFunc[T any] func(cursor string, limit int) ([]T, string, error)

// collect reads a whole list with pages of limit, checking the paging contract: no page is
// longer than limit, every page but the last is full, and next is "" exactly on the last
// page (so no page is empty unless the list is).
func collect[T any](t *testing.T, what string, limit int, page pageFunc[T]) []T {
	t.Helper()
	var all []T
	cursor := ""
	for n := 0; ; n++ {
		items, next, err := page(cursor, limit)
		if err != nil {
			t.Fatalf("%s: page %d (limit %d): %v", what, n, limit, err)
		}
		switch {
		case len(items) > limit:
			t.Fatalf("%s: page %d has %d items, limit %d", what, n, len(items), limit)
		case next != "" && len(items) < limit:
			t.Fatalf("%s: page %d has %d items and a next cursor, limit %d", what, n, len(items), limit)
		case n > 0 && len(items) == 0:
			t.Fatalf("%s: page %d is empty: the page before should have had no next cursor", what, n)
		case n > 100_000:
			t.Fatalf("%s: paging does not end", what)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// checkReads checks every read of the store against what the harness committed.
func (h *harness) checkReads() {
	h.t.Helper()
	h.checkHeadAndJournal()
	h.checkTransfers()
	h.checkAccounts()
	for _, limit := range []int{1000, 2} {
		h.checkLists(limit)
	}
	h.checkBalances()
}

func (h *harness) checkHeadAndJournal() {
	t, s, ctx := h.t, h.store, h.t.Context()
	t.Helper()
	head, err := s.Head(ctx)
	if err != nil || head != h.head {
		t.Errorf("Head: got %d %s (%v), want %d %s", head.Seq, head.Hash, err, h.head.Seq, h.head.Hash)
	}
	var got []*journal.Record
	for after := uint64(0); ; {
		recs, err := s.Journal(ctx, after, 1000)
		if err != nil {
			t.Fatalf("Journal(%d): %v", after, err)
		}
		if len(recs) == 0 {
			break
		}
		got = append(got, recs...)
		after = recs[len(recs)-1].Seq
	}
	if len(got) != len(h.records) {
		t.Fatalf("Journal: got %d records, want %d", len(got), len(h.records))
	}
	for i, r := range got {
		if !reflect.DeepEqual(r, h.records[i]) {
			t.Errorf("Journal record %d differs from the one committed:\n got %+v\nwant %+v", i+1, r, h.records[i])
		}
	}
	n := uint64(len(h.records))
	for _, c := range []struct{ after, limit, want uint64 }{
		{0, 1, min(1, n)}, {1, 2, min(2, max(n, 1)-1)}, {n, 5, 0}, {n - min(n, 3), 1000, min(n, 3)},
	} {
		recs, err := s.Journal(ctx, c.after, int(c.limit))
		if err != nil || uint64(len(recs)) != c.want {
			t.Errorf("Journal(%d, %d): got %d records (%v), want %d", c.after, c.limit, len(recs), err, c.want)
			continue
		}
		for i, r := range recs {
			if r.Seq != c.after+1+uint64(i) {
				t.Errorf("Journal(%d, %d)[%d]: seq %d", c.after, c.limit, i, r.Seq)
			}
		}
	}
}

func (h *harness) checkTransfers() {
	t, s, ctx := h.t, h.store, h.t.Context()
	t.Helper()
	for id, want := range h.transfers {
		got, err := s.Transfer(ctx, id)
		if err != nil {
			t.Errorf("Transfer(%s): %v", id, err)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("Transfer(%s):\n got %+v\nwant %+v", id, got, want)
		}
	}
	if _, err := s.Transfer(ctx, "no-such-transfer"); !isNotFound(err) {
		t.Errorf("Transfer(no-such-transfer): got %v, want ErrNotFound", err)
	}
}

func (h *harness) checkAccounts() {
	t, s, ctx := h.t, h.store, h.t.Context()
	t.Helper()
	h.state.EachAccount(func(want *ledger.Account) {
		got, err := s.Account(ctx, want.ID)
		if err != nil {
			t.Errorf("Account(%s): %v", want.ID, err)
		} else if !reflect.DeepEqual(*got, *want) {
			t.Errorf("Account(%s):\n got %+v\nwant %+v", want.ID, *got, *want)
		}
	})
	if _, err := s.Account(ctx, "no-such-account"); !isNotFound(err) {
		t.Errorf("Account(no-such-account): got %v, want ErrNotFound", err)
	}
}

// checkLists reads every list in pages of limit.
func (h *harness) checkLists(limit int) {
	t, s, ctx := h.t, h.store, h.t.Context()
	t.Helper()
	all := accountIDs(h.state)
	owners := map[string]bool{"": true, "no-such-owner": true}
	for o := range h.owners {
		owners[o] = true
	}
	for owner := range owners {
		want := all
		if owner != "" {
			want = slices.Sorted(slices.Values(h.owners[owner]))
		}
		got := collect(t, "Accounts("+owner+")", limit, func(c string, l int) ([]*ledger.Account, string, error) {
			return s.Accounts(ctx, owner, c, l)
		})
		var ids []string
		for _, a := range got {
			ids = append(ids, a.ID)
			if w, ok := h.state.Account(a.ID); !ok || !reflect.DeepEqual(*a, w) {
				t.Errorf("Accounts(%s): account %s:\n got %+v\nwant %+v", owner, a.ID, *a, w)
			}
		}
		if !slices.Equal(ids, want) {
			t.Errorf("Accounts(%q) limit %d: got %v, want %v", owner, limit, ids, want)
		}
	}
	for _, id := range append(all, "") {
		h.checkTransferList(id, limit)
		if id == "" {
			continue
		}
		got := collect(t, "Entries("+id+")", limit, func(c string, l int) ([]journal.Entry, string, error) {
			return s.Entries(ctx, id, c, l)
		})
		want := slices.Clone(h.entries[id])
		slices.Reverse(want)
		if !(len(got) == 0 && len(want) == 0) && !reflect.DeepEqual(got, want) {
			t.Errorf("Entries(%s) limit %d:\n got %+v\nwant %+v", id, limit, got, want)
		}
	}
}

// checkTransferList checks Transfers(account): newest first by creation, as they are now.
func (h *harness) checkTransferList(account string, limit int) {
	t, s, ctx := h.t, h.store, h.t.Context()
	t.Helper()
	got := collect(t, "Transfers("+account+")", limit, func(c string, l int) ([]*ledger.Transfer, string, error) {
		return s.Transfers(ctx, account, c, l)
	})
	var want []*ledger.Transfer
	for i := len(h.created) - 1; i >= 0; i-- {
		c := h.created[i]
		if account == "" || c.Source == account || c.Destination == account {
			want = append(want, h.transfers[c.ID])
		}
	}
	if !(len(got) == 0 && len(want) == 0) && !reflect.DeepEqual(got, want) {
		t.Errorf("Transfers(%q) limit %d:\n got %s\nwant %s", account, limit, transfersString(got), transfersString(want))
	}
}

func accountIDs(st *ledger.State) []string {
	var ids []string
	st.EachAccount(func(a *ledger.Account) { ids = append(ids, a.ID) })
	slices.Sort(ids)
	return ids
}

// checkBalances checks BalanceAt just before, at and just after every transfer change of
// every account, and at the ends of time.
func (h *harness) checkBalances() {
	t, s, ctx := h.t, h.store, h.t.Context()
	t.Helper()
	for _, id := range accountIDs(h.state) {
		pts := h.activity[id]
		ats := []int64{0, 1, timeStart, math.MaxInt64}
		for _, p := range pts {
			ats = append(ats, p.time-1, p.time, p.time+1)
		}
		for _, at := range ats {
			want := balanceAt(pts, at)
			got, err := s.BalanceAt(ctx, id, at)
			if err != nil || got != want {
				t.Errorf("BalanceAt(%s, %d): got %s (%v), want %s", id, at, got, err, want)
			}
		}
		a, _ := h.state.Account(id)
		if got, _ := s.BalanceAt(ctx, id, math.MaxInt64); got != a.Posted() {
			t.Errorf("BalanceAt(%s, max): got %s, want the posted balance %s", id, got, a.Posted())
		}
	}
	if _, err := s.BalanceAt(ctx, "no-such-account", math.MaxInt64); !isNotFound(err) {
		t.Errorf("BalanceAt(no-such-account): got %v, want ErrNotFound", err)
	}
}

// balanceAt is the posted balance after the last point at or before at.
func balanceAt(pts []balancePoint, at int64) ledger.Balance {
	var b ledger.Balance
	for _, p := range pts {
		if p.time <= at {
			b = p.after
		}
	}
	return b
}

// checkBadCursors checks that lists refuse cursors they did not make.
func (h *harness) checkBadCursors(a, b string) {
	t, s, ctx := h.t, h.store, h.t.Context()
	t.Helper()
	_, entriesA, err := s.Entries(ctx, a, "", 1)
	if err != nil || entriesA == "" {
		t.Fatalf("Entries(%s, limit 1): next %q, %v; the test needs two entries", a, entriesA, err)
	}
	_, transfersA, err := s.Transfers(ctx, a, "", 1)
	if err != nil || transfersA == "" {
		t.Fatalf("Transfers(%s, limit 1): next %q, %v; the test needs two transfers", a, transfersA, err)
	}
	_, accounts, err := s.Accounts(ctx, "", "", 1)
	if err != nil || accounts == "" {
		t.Fatalf("Accounts(limit 1): next %q, %v; the test needs two accounts", accounts, err)
	}
	_, all, err := s.Transfers(ctx, "", "", 1)
	if err != nil || all == "" {
		t.Fatalf("Transfers(all, limit 1): next %q, %v; the test needs two transfers", all, err)
	}
	garbage := []string{"!!!", "%", "AAAA", "bm90LWEtY3Vyc29y", strings.Repeat("A", 300)}
	type list struct {
		name  string
		page  func(cursor string) error
		good  string   // a cursor it made
		other []string // cursors other lists made
	}
	lists := []list{
		{"Entries(" + a + ")", func(c string) error { _, _, err := s.Entries(ctx, a, c, 1); return err },
			entriesA, []string{transfersA, accounts, all}},
		{"Entries(" + b + ")", func(c string) error { _, _, err := s.Entries(ctx, b, c, 1); return err },
			"", []string{entriesA}},
		{"Transfers(" + a + ")", func(c string) error { _, _, err := s.Transfers(ctx, a, c, 1); return err },
			transfersA, []string{entriesA, accounts, all}},
		{"Transfers(" + b + ")", func(c string) error { _, _, err := s.Transfers(ctx, b, c, 1); return err },
			"", []string{transfersA}},
		{"Transfers()", func(c string) error { _, _, err := s.Transfers(ctx, "", c, 1); return err },
			all, []string{entriesA, transfersA, accounts}},
		{"Accounts()", func(c string) error { _, _, err := s.Accounts(ctx, "", c, 1); return err },
			accounts, []string{entriesA, transfersA, all}},
		{"Accounts(owner)", func(c string) error { _, _, err := s.Accounts(ctx, "user:"+a, c, 1); return err },
			"", []string{accounts, entriesA}},
	}
	for _, l := range lists {
		if l.good != "" {
			if err := l.page(l.good); err != nil {
				t.Errorf("%s with its own cursor: %v", l.name, err)
			}
		}
		for _, c := range append(slices.Clone(garbage), l.other...) {
			if err := l.page(c); !isBadCursor(err) {
				t.Errorf("%s with cursor %q: got %v, want ErrBadCursor", l.name, c, err)
			}
		}
	}
}
