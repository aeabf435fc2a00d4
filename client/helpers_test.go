package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/tpwallet/tpwallet/client"
)

// uid returns an id unique to this run, prefixed, for resources on the shared server.
func uid(prefix string) string { return prefix + "-" + rand.Text()[:12] }

// amt parses an amount for a test.
func amt(s string) client.Amount { return client.MustParseAmount(s) }

// mustAccount opens an account of asset, failing t otherwise.
func mustAccount(t testing.TB, c *client.Client, req client.CreateAccountRequest) *client.Account {
	t.Helper()
	a, err := c.CreateAccount(t.Context(), req)
	if err != nil {
		t.Fatalf("CreateAccount(%+v): %v", req, err)
	}
	return a
}

// funded opens a treasury that may go negative and n user accounts of asset, and tops each
// user up with amount. It returns the treasury's id and the users' ids.
func funded(t testing.TB, c *client.Client, asset string, n int, amount string) (treasury string, users []string) {
	t.Helper()
	treasury = mustAccount(t, c, client.CreateAccountRequest{ID: uid("treasury"), Asset: asset,
		Kind: client.AccountSystem, AllowNegative: true}).ID
	for range n {
		u := mustAccount(t, c, client.CreateAccountRequest{ID: uid("user"), Asset: asset}).ID
		if amount != "0" {
			mustTransfer(t, c, client.CreateTransferRequest{Source: treasury, Destination: u,
				Amount: amt(amount), Kind: client.KindTopup})
		}
		users = append(users, u)
	}
	return treasury, users
}

func mustTransfer(t testing.TB, c *client.Client, req client.CreateTransferRequest) *client.Transfer {
	t.Helper()
	tr, err := c.CreateTransfer(t.Context(), req)
	if err != nil {
		t.Fatalf("CreateTransfer(%+v): %v", req, err)
	}
	return tr
}

func mustGetAccount(t testing.TB, c *client.Client, id string) *client.Account {
	t.Helper()
	a, err := c.GetAccount(t.Context(), id)
	if err != nil {
		t.Fatalf("GetAccount(%s): %v", id, err)
	}
	return a
}

// wantBalance checks an account's posted and available balances.
func wantBalance(t testing.TB, c *client.Client, id, posted, available string) {
	t.Helper()
	a := mustGetAccount(t, c, id)
	if got := a.Balance.Posted.String(); got != posted {
		t.Errorf("%s posted = %s, want %s", id, got, posted)
	}
	if got := a.Balance.Available.String(); got != available {
		t.Errorf("%s available = %s, want %s", id, got, available)
	}
}

// wantCode checks that err is an *Error of code, matched by the code's sentinel.
func wantCode(t testing.TB, err error, sentinel error, code client.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", code)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%v, %v) = false", err, sentinel)
	}
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %T %v, want *client.Error", err, err)
	}
	if e.Code != code {
		t.Errorf("Code = %q, want %q", e.Code, code)
	}
	if e.Status < 400 || e.RequestID == "" || e.Title == "" {
		t.Errorf("Error = %+v: want a status, a title and a request id", e)
	}
}

// transferCount counts the transfers touching account, through every page.
func transferCount(t testing.TB, c *client.Client, account string) int {
	t.Helper()
	n := 0
	for _, err := range c.Transfers(t.Context(), client.ListTransfersParams{Account: account}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// headSeq returns the journal head's seq.
func headSeq(t testing.TB, c *client.Client) uint64 {
	t.Helper()
	h, err := c.JournalHead(context.WithoutCancel(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	return h.Seq
}
