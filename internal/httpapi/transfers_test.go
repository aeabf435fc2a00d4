package httpapi_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// maxAmount is 2^128−1, the largest amount api.md allows.
const maxAmount = "340282366920938463463374607431768211455"

func TestTransfers(t *testing.T) {
	s := newStack(t)
	writer := s.newKey(t, "writer", "write")
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.openAccount(t, "bob", "USD", false)
	s.openAccount(t, "eve-eur", "EUR", false)
	s.openAccount(t, "treasury-eur", "EUR", true)

	var t1 transfer
	s.do(t, "POST", "/v1/transfers", writer, obj{"source": "treasury", "destination": "alice", "amount": "1000"}).
		want(t, 201).into(t, &t1)
	if !serverTranID.MatchString(t1.ID) || t1.Status != "posted" || t1.Amount != "1000" || t1.AmountPosted != "1000" ||
		t1.Asset != "USD" || t1.Kind != "p2p" || t1.Reference != "" || t1.Metadata == nil || len(t1.Metadata) != 0 ||
		t1.ExpiresAt != nil || t1.PostedAt == nil || *t1.PostedAt != t1.CreatedAt {
		t.Errorf("posted transfer: %+v", t1)
	}
	s.wantBalance(t, "alice", balance{"1000", "1000", "0", "0"})
	s.wantBalance(t, "treasury", balance{"-1000", "-1000", "0", "0"})
	if a := s.account(t, "treasury"); a.DebitsPosted != "1000" || a.CreditsPosted != "0" {
		t.Errorf("treasury totals: %+v", a)
	}

	full := obj{"id": "order-42", "source": "alice", "destination": "bob", "amount": "250", "asset": "USD",
		"kind": "p2m", "reference": "order-42", "metadata": obj{"note": "café ☕", "k": ""}}
	r := s.do(t, "POST", "/v1/transfers", writer, full).want(t, 201)
	var t2 transfer
	r.into(t, &t2)
	if t2.ID != "order-42" || t2.Kind != "p2m" || t2.Reference != "order-42" || t2.Metadata["note"] != "café ☕" ||
		t2.Source != "alice" || t2.Destination != "bob" || !(t2.CreatedAt > t1.CreatedAt) {
		t.Errorf("transfer with every field: %+v", t2)
	}
	if got := s.transfer(t, "order-42"); !reflect.DeepEqual(got, t2) {
		t.Errorf("GET: %+v, want %+v", got, t2)
	}
	s.unchanged(t, func() {
		again := s.do(t, "POST", "/v1/transfers", writer, full).want(t, 200)
		if string(again.Body) != string(r.Body) {
			t.Errorf("the same transfer again: got %s, want %s", again.Body, r.Body)
		}
		for field, v := range map[string]any{"amount": "251", "reference": "order-43", "destination": "treasury",
			"kind": "p2p", "metadata": obj{"note": "other"}} {
			changed := obj{}
			for k, e := range full {
				changed[k] = e
			}
			changed[field] = v
			s.do(t, "POST", "/v1/transfers", writer, changed).wantProblem(t, 409, "transfer_exists")
		}
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "alice", "destination": "bob", "amount": "1000000"}).
			wantProblem(t, 422, "insufficient_funds")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "alice", "destination": "bob", "amount": "751"}).
			wantProblem(t, 422, "insufficient_funds")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "alice", "destination": "alice", "amount": "1"}).
			wantProblem(t, 422, "same_account")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "alice", "destination": "eve-eur", "amount": "1"}).
			wantProblem(t, 422, "asset_mismatch")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "alice", "destination": "bob", "amount": "1", "asset": "EUR"}).
			wantProblem(t, 422, "asset_mismatch")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "treasury-eur", "destination": "eve-eur", "amount": "1", "asset": "USD"}).
			wantProblem(t, 422, "asset_mismatch")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "alice", "destination": "nobody", "amount": "1"}).
			wantProblem(t, 404, "account_not_found")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "nobody", "destination": "alice", "amount": "1"}).
			wantProblem(t, 404, "account_not_found")
		s.do(t, "POST", "/v1/transfers", writer, obj{"id": "tr_0000000000000", "source": "alice", "destination": "bob", "amount": "1"}).
			wantProblem(t, 400, "invalid_request")
		s.do(t, "POST", "/v1/transfers", writer, obj{"id": t1.ID, "source": "treasury", "destination": "alice", "amount": "1000"}).
			wantProblem(t, 400, "invalid_request") // even a server id that exists
	})
	s.pay(t, "alice", "bob", "750") // exactly the available balance
	s.wantBalance(t, "alice", balance{"0", "0", "0", "0"})
	s.wantBalance(t, "bob", balance{"1000", "1000", "0", "0"})
	// Ids that only look like the server's form are the client's.
	for _, id := range []string{"tr_abc", "tr_000000000000i", "tr_00000000000000", "TR_0000000000000"} {
		s.do(t, "POST", "/v1/transfers", writer, obj{"id": id, "source": "treasury", "destination": "alice", "amount": "1"}).want(t, 201)
	}
	s.do(t, "POST", "/v1/transfers", writer, obj{"source": "treasury-eur", "destination": "eve-eur", "amount": "5", "asset": "EUR"}).want(t, 201)
	s.do(t, "GET", "/v1/transfers/nope", writer, nil).wantProblem(t, 404, "transfer_not_found")
}

func TestAmountOverflow(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "t1", "ETH", true)
	s.openAccount(t, "t2", "ETH", true)
	s.openAccount(t, "t3", "ETH", true)
	s.openAccount(t, "whale", "ETH", false)
	s.pay(t, "t1", "whale", maxAmount)
	s.wantBalance(t, "whale", balance{maxAmount, maxAmount, "0", "0"})
	s.wantBalance(t, "t1", balance{"-" + maxAmount, "-" + maxAmount, "0", "0"})
	s.unchanged(t, func() {
		// t1 is at its floor, −(2^128−1); the whale's credits_posted at 2^128−1.
		s.do(t, "POST", "/v1/transfers", s.admin, obj{"source": "t1", "destination": "t2", "amount": "1"}).
			wantProblem(t, 422, "amount_overflow")
		s.do(t, "POST", "/v1/transfers", s.admin, obj{"source": "t2", "destination": "whale", "amount": "1"}).
			wantProblem(t, 422, "amount_overflow")
		s.do(t, "POST", "/v1/transfers", s.admin, obj{"source": "t2", "destination": "whale", "amount": maxAmount}).
			wantProblem(t, 422, "amount_overflow")
		s.do(t, "POST", "/v1/transfers", s.admin, obj{"source": "t1", "destination": "t2", "amount": "1", "hold": obj{}}).
			wantProblem(t, 422, "amount_overflow")
	})
	// A hold of everything the whale has, then an increase past 2^128−1 pending.
	h := s.hold(t, "whale", "t2", maxAmount, 0)
	s.unchanged(t, func() {
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/increase", s.admin, obj{"amount": "1"}).
			wantProblem(t, 422, "insufficient_funds")
		// t2's pending_credits are at 2^128−1.
		s.do(t, "POST", "/v1/transfers", s.admin, obj{"source": "t3", "destination": "t2", "amount": "1", "hold": obj{}}).
			wantProblem(t, 422, "amount_overflow")
	})
	s.wantBalance(t, "whale", balance{maxAmount, "0", maxAmount, "0"})
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/void", s.admin, nil).want(t, 200)
	s.wantBalance(t, "whale", balance{maxAmount, maxAmount, "0", "0"})
}

func TestListTransfers(t *testing.T) {
	s := newStack(t)
	reader := s.newKey(t, "reader", "read")
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.openAccount(t, "bob", "USD", false)
	s.openAccount(t, "carol", "USD", false)
	var created, aliceIDs []string
	add := func(tr transfer, alice bool) {
		created = append(created, tr.ID)
		if alice {
			aliceIDs = append(aliceIDs, tr.ID)
		}
	}
	add(s.pay(t, "treasury", "alice", "100"), true)
	add(s.pay(t, "treasury", "bob", "100"), false)
	add(s.pay(t, "alice", "bob", "10"), true)
	add(s.hold(t, "bob", "alice", "5", 0), true)
	add(s.pay(t, "bob", "carol", "1"), false)
	var c transfer
	s.do(t, "POST", "/v1/transfers", s.admin, obj{"id": "a-client-id", "source": "carol", "destination": "alice", "amount": "1"}).
		want(t, 201).into(t, &c)
	add(c, true)
	slices.Reverse(created)
	slices.Reverse(aliceIDs)

	ids := func(ts []transfer) []string {
		var out []string
		for _, tr := range ts {
			out = append(out, tr.ID)
		}
		return out
	}
	for _, limit := range []int{1, 2, 1000} {
		if got := ids(all[transfer](t, s, reader, "/v1/transfers", limit)); !slices.Equal(got, created) {
			t.Errorf("all transfers, limit %d: got %v, want %v (newest first)", limit, got, created)
		}
		if got := ids(all[transfer](t, s, reader, "/v1/transfers?account=alice", limit)); !slices.Equal(got, aliceIDs) {
			t.Errorf("alice's transfers, limit %d: got %v, want %v (newest first)", limit, got, aliceIDs)
		}
	}
	if got := all[transfer](t, s, reader, "/v1/transfers?account=treasury", 10); len(got) != 2 {
		t.Errorf("treasury's transfers: %v", ids(got))
	}
	// The list shows each transfer as of its latest change.
	h := s.transfer(t, aliceIDs[1]) // the hold
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/void", s.admin, nil).want(t, 200)
	for _, tr := range all[transfer](t, s, reader, "/v1/transfers?account=alice", 50) {
		if tr.ID == h.ID && tr.Status != "voided" {
			t.Errorf("the list shows %s as %s, want voided", tr.ID, tr.Status)
		}
	}
	s.do(t, "GET", "/v1/transfers?account=nobody", reader, nil).wantProblem(t, 404, "account_not_found")
	checkPaging(t, s, reader, "/v1/transfers")
	checkPaging(t, s, reader, "/v1/transfers?account=alice")
}

func TestHolds(t *testing.T) {
	s := newStack(t)
	writer := s.newKey(t, "writer", "write")
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.openAccount(t, "bob", "USD", false)
	s.pay(t, "treasury", "alice", "1000")

	h := s.hold(t, "alice", "bob", "100", 600)
	created, _ := timeParse(h.CreatedAt)
	if h.ExpiresAt == nil || *h.ExpiresAt != created.Add(600*time.Second).UTC().Format("2006-01-02T15:04:05.000000000Z") ||
		h.AmountPosted != "0" || h.PostedAt != nil || h.Amount != "100" {
		t.Errorf("hold: %+v", h)
	}
	s.wantBalance(t, "alice", balance{"1000", "900", "100", "0"})
	s.wantBalance(t, "bob", balance{"0", "0", "0", "100"})
	for _, body := range []obj{{"timeout_seconds": 0}, {}} {
		var n transfer
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "alice", "destination": "bob", "amount": "1", "hold": body}).
			want(t, 201).into(t, &n)
		if n.Status != "pending" || n.ExpiresAt != nil {
			t.Errorf("hold that never expires: %+v", n)
		}
		s.do(t, "POST", "/v1/transfers/"+n.ID+"/void", writer, nil).want(t, 200)
	}

	post := func(id string, body any, want int) transfer {
		t.Helper()
		var tr transfer
		s.do(t, "POST", "/v1/transfers/"+id+"/post", writer, body).want(t, want).into(t, &tr)
		return tr
	}
	// Multi-capture: 30, then 20, each leaving the rest held.
	p := post(h.ID, obj{"amount": "30", "final": false}, 200)
	if p.Status != "pending" || p.AmountPosted != "30" || p.PostedAt == nil || p.Amount != "100" {
		t.Errorf("first capture: %+v", p)
	}
	s.wantBalance(t, "alice", balance{"970", "900", "70", "0"})
	s.wantBalance(t, "bob", balance{"30", "30", "0", "70"})
	p = post(h.ID, obj{"amount": "20", "final": false}, 200)
	if p.Status != "pending" || p.AmountPosted != "50" {
		t.Errorf("second capture: %+v", p)
	}
	// Increase: 50 more held, expires_at unchanged.
	var inc transfer
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/increase", writer, obj{"amount": "50"}).want(t, 200).into(t, &inc)
	if inc.Status != "pending" || inc.Amount != "150" || inc.AmountPosted != "50" || *inc.ExpiresAt != *h.ExpiresAt {
		t.Errorf("increase: %+v", inc)
	}
	s.wantBalance(t, "alice", balance{"950", "850", "100", "0"})
	s.unchanged(t, func() {
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", writer, obj{"amount": "101"}).wantProblem(t, 422, "amount_exceeds_hold")
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", writer, obj{"amount": "101", "final": false}).
			wantProblem(t, 422, "amount_exceeds_hold")
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/increase", writer, obj{"amount": "851"}).wantProblem(t, 422, "insufficient_funds")
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", writer, obj{"amount": "0"}).wantProblem(t, 400, "invalid_request")
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", writer, obj{"final": false}).wantProblem(t, 400, "invalid_request")
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/increase", writer, obj{"amount": "0"}).wantProblem(t, 400, "invalid_request")
		s.do(t, "POST", "/v1/transfers/nope/post", writer, obj{"amount": "1"}).wantProblem(t, 404, "transfer_not_found")
		s.do(t, "POST", "/v1/transfers/nope/increase", writer, obj{"amount": "1"}).wantProblem(t, 404, "transfer_not_found")
		s.do(t, "POST", "/v1/transfers/nope/void", writer, nil).wantProblem(t, 404, "transfer_not_found")
	})
	// The final post takes everything still held.
	p = post(h.ID, nil, 200)
	if p.Status != "posted" || p.AmountPosted != "150" || p.Amount != "150" {
		t.Errorf("final post: %+v", p)
	}
	s.wantBalance(t, "alice", balance{"850", "850", "0", "0"})
	s.wantBalance(t, "bob", balance{"150", "150", "0", "0"})
	// Posted is final.
	s.unchanged(t, func() {
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", writer, nil).wantProblem(t, 409, "transfer_not_pending")
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/void", writer, nil).wantProblem(t, 409, "transfer_not_pending")
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/increase", writer, obj{"amount": "1"}).wantProblem(t, 409, "transfer_not_pending")
	})

	// A partial final post releases the rest.
	h2 := s.hold(t, "alice", "bob", "100", 0)
	if p := post(h2.ID, `{"amount":"60"}`, 200); p.Status != "posted" || p.AmountPosted != "60" || p.Amount != "100" {
		t.Errorf("partial final post: %+v", p)
	}
	s.wantBalance(t, "alice", balance{"790", "790", "0", "0"})

	// A void after a partial post keeps what was posted.
	h3 := s.hold(t, "alice", "bob", "100", 0)
	post(h3.ID, obj{"amount": "40", "final": false}, 200)
	var v transfer
	s.do(t, "POST", "/v1/transfers/"+h3.ID+"/void", writer, nil).want(t, 200).into(t, &v)
	if v.Status != "voided" || v.AmountPosted != "40" || v.Amount != "100" {
		t.Errorf("void after a capture: %+v", v)
	}
	s.wantBalance(t, "alice", balance{"750", "750", "0", "0"})
	s.unchanged(t, func() {
		s.do(t, "POST", "/v1/transfers/"+h3.ID+"/void", writer, nil).wantProblem(t, 409, "transfer_not_pending")
		s.do(t, "POST", "/v1/transfers/"+h3.ID+"/post", writer, nil).wantProblem(t, 409, "transfer_not_pending")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "alice", "destination": "bob", "amount": "751", "hold": obj{}}).
			wantProblem(t, 422, "insufficient_funds")
	})
	// Void with an empty JSON object is the same as no body.
	h4 := s.hold(t, "alice", "bob", "1", 0)
	s.do(t, "POST", "/v1/transfers/"+h4.ID+"/void", writer, "{}").want(t, 200)
}

// TestHoldExpiry waits, by polling with a deadline, for the server to expire a hold, also
// across a restart.
func TestHoldExpiry(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.openAccount(t, "bob", "USD", false)
	s.pay(t, "treasury", "alice", "1000")
	h := s.hold(t, "alice", "bob", "100", 1)
	captured := s.hold(t, "alice", "bob", "100", 1)
	s.do(t, "POST", "/v1/transfers/"+captured.ID+"/post", s.admin, obj{"amount": "30", "final": false}).want(t, 200)
	s.wantBalance(t, "alice", balance{"970", "800", "170", "0"})
	expired := func(id string) func() bool {
		return func() bool { return s.transfer(t, id).Status == "expired" }
	}
	released := func(name string, want balance) func() bool {
		return func() bool { return s.account(t, name).Balance == want }
	}
	eventually(t, 15*time.Second, "the hold to expire", expired(h.ID))
	eventually(t, 15*time.Second, "the captured hold to expire", expired(captured.ID))
	// A transfer's new status is visible a few microseconds before the balances and the
	// journal head of the same commit: wait for the head to catch up with the journal.
	eventually(t, 15*time.Second, "the journal head to catch up", func() bool {
		h := s.head(t)
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		s.do(t, "GET", fmt.Sprintf("/v1/journal?after=%d", h.Seq), s.admin, nil).want(t, 200).into(t, &page)
		return len(page.Items) == 0
	})
	if c := s.transfer(t, captured.ID); c.AmountPosted != "30" {
		t.Errorf("an expired hold lost its capture: %+v", c)
	}
	s.unchanged(t, func() {
		for _, id := range []string{h.ID, captured.ID} {
			s.do(t, "POST", "/v1/transfers/"+id+"/post", s.admin, nil).wantProblem(t, 409, "hold_expired")
			s.do(t, "POST", "/v1/transfers/"+id+"/void", s.admin, nil).wantProblem(t, 409, "hold_expired")
			s.do(t, "POST", "/v1/transfers/"+id+"/increase", s.admin, obj{"amount": "1"}).wantProblem(t, 409, "hold_expired")
		}
	})
	s.wantBalance(t, "alice", balance{"970", "970", "0", "0"})
	// A hold that expires after a restart of the stack.
	survivor := s.hold(t, "alice", "bob", "10", 2)
	s = s.restart(t)
	eventually(t, 15*time.Second, "the hold to expire after a restart", expired(survivor.ID))
	eventually(t, 15*time.Second, "the survivor's funds to be released", released("alice", balance{"970", "970", "0", "0"}))
	eventually(t, 15*time.Second, "bob's pending credit to be released", released("bob", balance{"30", "30", "0", "0"}))
	s.do(t, "POST", "/v1/transfers/"+survivor.ID+"/post", s.admin, nil).wantProblem(t, 409, "hold_expired")
}

type batchResults struct {
	Results []struct {
		Transfer *transfer `json:"transfer"`
		Error    *struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		} `json:"error"`
	} `json:"results"`
}

func TestBatch(t *testing.T) {
	s := newStack(t)
	writer := s.newKey(t, "writer", "write")
	for _, id := range []string{"carol", "dave", "erin", "frank", "gina"} {
		s.openAccount(t, id, "USD", false)
	}
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "euro", "EUR", false)
	tr := func(src, dst, amount string) obj { return obj{"source": src, "destination": dst, "amount": amount} }

	// Atomic: a later transfer spends what an earlier one credited.
	var ok struct {
		Transfers []transfer `json:"transfers"`
	}
	hold := tr("erin", "carol", "10")
	hold["hold"] = obj{"timeout_seconds": 0}
	s.do(t, "POST", "/v1/transfers/batch", writer, obj{"atomic": true, "transfers": []obj{
		tr("treasury", "carol", "100"), tr("carol", "dave", "60"), tr("dave", "erin", "60"), hold,
	}}).want(t, 201).into(t, &ok)
	if len(ok.Transfers) != 4 || ok.Transfers[0].Destination != "carol" || ok.Transfers[1].Destination != "dave" ||
		ok.Transfers[2].Destination != "erin" || ok.Transfers[3].Status != "pending" {
		t.Fatalf("atomic batch: %+v", ok.Transfers)
	}
	for i := 1; i < len(ok.Transfers); i++ {
		if !(ok.Transfers[i].CreatedAt > ok.Transfers[i-1].CreatedAt) {
			t.Errorf("batch transfers are not in order: %+v", ok.Transfers)
		}
	}
	s.wantBalance(t, "carol", balance{"40", "40", "0", "10"})
	s.wantBalance(t, "dave", balance{"0", "0", "0", "0"})
	s.wantBalance(t, "erin", balance{"60", "50", "10", "0"})

	// Atomic failure: nothing applies, and errors name the failing index.
	before := map[string]account{}
	for _, id := range []string{"carol", "dave", "erin", "treasury"} {
		before[id] = s.account(t, id)
	}
	s.unchanged(t, func() {
		p := s.do(t, "POST", "/v1/transfers/batch", writer, obj{"atomic": true, "transfers": []obj{
			tr("treasury", "carol", "10"), tr("carol", "dave", "1000"), tr("dave", "erin", "1"),
		}}).wantProblem(t, 422, "batch_failed")
		if len(p.Errors) != 1 || p.Errors[0].Index != 1 || p.Errors[0].Code != "insufficient_funds" || p.Errors[0].Detail == "" {
			t.Errorf("batch errors: %+v", p.Errors)
		}
		p = s.do(t, "POST", "/v1/transfers/batch", writer, obj{"atomic": true, "transfers": []any{
			tr("treasury", "carol", "10"), tr("carol", "euro", "1"), obj{"source": "carol", "destination": "dave", "amount": 5},
			tr("carol", "nobody", "1"), obj{"source": "carol", "destination": "dave", "amount": "1", "extra": true},
		}}).wantProblem(t, 422, "batch_failed")
		// Malformed items are reported by index; the rest is not even tried.
		var idx []int
		for _, e := range p.Errors {
			idx = append(idx, e.Index)
			if e.Code != "invalid_request" {
				t.Errorf("malformed item %d: code %s", e.Index, e.Code)
			}
		}
		if !slices.Equal(idx, []int{2, 4}) {
			t.Errorf("atomic batch with malformed items: errors %+v", p.Errors)
		}
		p = s.do(t, "POST", "/v1/transfers/batch", writer, obj{"atomic": true, "transfers": []any{
			tr("treasury", "carol", "10"), tr("carol", "euro", "1"),
		}}).wantProblem(t, 422, "batch_failed")
		if len(p.Errors) != 1 || p.Errors[0].Index != 1 || p.Errors[0].Code != "asset_mismatch" {
			t.Errorf("batch errors: %+v", p.Errors)
		}
		// Sizes and shape.
		many := make([]obj, 8191)
		for i := range many {
			many[i] = tr("treasury", "carol", "1")
		}
		s.do(t, "POST", "/v1/transfers/batch", writer, obj{"atomic": true, "transfers": many}).
			wantProblem(t, 400, "batch_too_large")
		s.do(t, "POST", "/v1/transfers/batch", writer, obj{"atomic": false, "transfers": many}).
			wantProblem(t, 400, "batch_too_large")
		for _, body := range []string{
			`{"atomic":true,"transfers":[]}`,
			`{"atomic":true}`,
			`{"atomic":true,"transfers":null}`,
			`{"transfers":[{"source":"treasury","destination":"carol","amount":"1"}]}`,
			`{"atomic":null,"transfers":[{"source":"treasury","destination":"carol","amount":"1"}]}`,
			`{"atomic":"yes","transfers":[{"source":"treasury","destination":"carol","amount":"1"}]}`,
			`{"atomic":true,"transfers":{"source":"treasury","destination":"carol","amount":"1"}}`,
			`{"atomic":true,"transfers":[],"extra":1}`,
			`{"atomic":true,"Transfers":[{"source":"treasury","destination":"carol","amount":"1"}]}`,
			`[]`,
		} {
			s.do(t, "POST", "/v1/transfers/batch", writer, body).wantProblem(t, 400, "invalid_request")
		}
	})
	for id, a := range before {
		if got := s.account(t, id); !reflect.DeepEqual(got, a) {
			t.Errorf("a failed batch changed %s: %+v, was %+v", id, got, a)
		}
	}

	// Not atomic: each on its own, results in request order, mixing transfers and errors.
	var res batchResults
	s.do(t, "POST", "/v1/transfers/batch", writer, obj{"atomic": false, "transfers": []any{
		tr("treasury", "frank", "100"),
		tr("frank", "gina", "70"),
		tr("frank", "gina", "70"),
		obj{"source": "frank", "destination": "gina", "amount": "-1"},
		tr("gina", "frank", "10"),
		tr("gina", "euro", "1"),
	}}).want(t, 200).into(t, &res)
	want := []string{"", "", "insufficient_funds", "invalid_request", "", "asset_mismatch"}
	if len(res.Results) != len(want) {
		t.Fatalf("results: %+v", res.Results)
	}
	for i, r := range res.Results {
		switch {
		case want[i] == "" && (r.Transfer == nil || r.Error != nil || r.Transfer.Status != "posted"):
			t.Errorf("result %d: want a transfer, got %+v %+v", i, r.Transfer, r.Error)
		case want[i] != "" && (r.Error == nil || r.Transfer != nil || r.Error.Code != want[i] || r.Error.Detail == ""):
			t.Errorf("result %d: want error %s, got %+v %+v", i, want[i], r.Transfer, r.Error)
		}
	}
	s.wantBalance(t, "frank", balance{"40", "40", "0", "0"})
	s.wantBalance(t, "gina", balance{"60", "60", "0", "0"})

	// The largest batch: 8,190 transfers in one atomic commit.
	many := make([]obj, 8190)
	for i := range many {
		many[i] = tr("treasury", "dave", "1")
	}
	many[8189] = tr("dave", "carol", "8189")
	var big struct {
		Transfers []transfer `json:"transfers"`
	}
	s.do(t, "POST", "/v1/transfers/batch", writer, obj{"atomic": true, "transfers": many}).want(t, 201).into(t, &big)
	if len(big.Transfers) != 8190 || big.Transfers[8189].Source != "dave" {
		t.Errorf("the largest batch: %d transfers", len(big.Transfers))
	}
	s.wantBalance(t, "dave", balance{"0", "0", "0", "0"})
	s.wantBalance(t, "carol", balance{"8229", "8229", "0", "10"})

	// An atomic batch of only malformed items, and one item over the body limit of a
	// single request (a batch may be up to 16 MiB).
	p := s.do(t, "POST", "/v1/transfers/batch", writer, `{"atomic":true,"transfers":[{"amount":"1"}]}`).
		wantProblem(t, 422, "batch_failed")
	if len(p.Errors) != 1 || p.Errors[0].Index != 0 || p.Errors[0].Code != "invalid_request" {
		t.Errorf("errors: %+v", p.Errors)
	}
	long := tr("treasury", "carol", "1")
	long["metadata"] = obj{"k": strings.Repeat("v", 512)}
	huge := make([]obj, 2100) // > 1 MiB of body
	for i := range huge {
		huge[i] = long
	}
	s.do(t, "POST", "/v1/transfers/batch", writer, obj{"atomic": false, "transfers": huge}).want(t, 200)
}
