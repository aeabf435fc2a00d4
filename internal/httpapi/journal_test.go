package httpapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// servedRecord is a journal record as GET /v1/journal serves it: its exact bytes and the
// journal.Record read back from them.
type servedRecord struct {
	raw []byte
	rec *journal.Record
}

type recordJSON struct {
	Changes   []changeJSON `json:"changes"`
	Hash      string       `json:"hash"`
	PrevHash  string       `json:"prev_hash"`
	Seq       uint64       `json:"seq"`
	Timestamp string       `json:"timestamp"`
}

type changeJSON struct {
	Op        string    `json:"op"`
	Timestamp string    `json:"timestamp"`
	Amount    *string   `json:"amount"`
	Transfer  *transfer `json:"transfer"`
	Account   *account  `json:"account"`
	Asset     *struct {
		Code  string `json:"code"`
		Scale uint8  `json:"scale"`
	} `json:"asset"`
}

// readJournal fetches the whole journal with pages of limit, following next_cursor as
// `after`, and checks the chain: seqs from 1 without gaps, prev_hash links, and each hash
// recomputed both as docs/journal.md defines it (SHA-256 of the served bytes without "hash")
// and with journal.RecordHash over the record read back from the served JSON, which must
// re-encode to exactly the served bytes.
func readJournal(t *testing.T, s *stack, key string, limit int) []servedRecord {
	t.Helper()
	var out []servedRecord
	after := "0"
	for {
		var p page[json.RawMessage]
		s.do(t, "GET", fmt.Sprintf("/v1/journal?after=%s&limit=%d", after, limit), key, nil).want(t, 200).into(t, &p)
		for _, raw := range p.Items {
			out = append(out, servedRecord{raw: raw, rec: readRecord(t, raw)})
		}
		if len(p.Items) > limit {
			t.Fatalf("journal page of %d records for limit %d", len(p.Items), limit)
		}
		if p.NextCursor == "" {
			if len(p.Items) == limit {
				t.Errorf("a full journal page has no next_cursor")
			}
			break
		}
		if last := out[len(out)-1].rec.Seq; p.NextCursor != strconv.FormatUint(last, 10) {
			t.Fatalf("next_cursor %q, want the last seq %d", p.NextCursor, last)
		}
		after = p.NextCursor
	}
	var prev journal.Hash
	var lastTime int64
	for i, sr := range out {
		r := sr.rec
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i+1, r.Seq)
		}
		if r.PrevHash != prev {
			t.Errorf("record %d: prev_hash %s, want %s", r.Seq, r.PrevHash, prev)
		}
		if got := journal.AppendRecordJSON(nil, r); !bytes.Equal(got, sr.raw) {
			t.Errorf("record %d: re-encodes to\n%s\nnot the served\n%s", r.Seq, got, sr.raw)
		}
		if got := journal.RecordHash(r); got != r.Hash {
			t.Errorf("record %d: RecordHash %s, served hash %s", r.Seq, got, r.Hash)
		}
		if got := auditorHash(t, sr.raw, r.Hash); got != r.Hash {
			t.Errorf("record %d: SHA-256 of the served bytes without hash is %s, served %s", r.Seq, got, r.Hash)
		}
		if len(r.Changes) == 0 {
			t.Errorf("record %d has no changes", r.Seq)
		}
		for _, c := range r.Changes {
			if c.Time <= lastTime || c.Time < r.Timestamp {
				t.Errorf("record %d: change time %d after %d (record time %d)", r.Seq, c.Time, lastTime, r.Timestamp)
			}
			lastTime = c.Time
		}
		prev = r.Hash
	}
	var h head
	s.do(t, "GET", "/v1/journal/head", key, nil).want(t, 200).into(t, &h)
	want := head{Seq: 0, Hash: strings.Repeat("0", 64)}
	if len(out) > 0 {
		last := out[len(out)-1].rec
		want = head{Seq: last.Seq, Hash: last.Hash.String()}
	}
	if h != want {
		t.Errorf("head %+v, want %+v", h, want)
	}
	return out
}

// auditorHash is what docs/journal.md tells an auditor to do: the served record is already
// canonical, so drop its "hash" member and hash the rest.
func auditorHash(t *testing.T, raw []byte, served journal.Hash) journal.Hash {
	t.Helper()
	member := []byte(`,"hash":"` + served.String() + `"`)
	i := bytes.LastIndex(raw, member)
	if i < 0 {
		t.Fatalf("no hash member in %s", raw)
	}
	return sha256.Sum256(append(append([]byte(nil), raw[:i]...), raw[i+len(member):]...))
}

func readRecord(t *testing.T, raw []byte) *journal.Record {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var rj recordJSON
	if err := dec.Decode(&rj); err != nil {
		t.Fatalf("record %s: %v", raw, err)
	}
	r := &journal.Record{Seq: rj.Seq, PrevHash: hexHash(t, rj.PrevHash), Hash: hexHash(t, rj.Hash),
		Timestamp: nanos(t, rj.Timestamp)}
	for _, cj := range rj.Changes {
		op, ok := ledger.ParseChangeOp(cj.Op)
		if !ok {
			t.Fatalf("record %d: op %q", r.Seq, cj.Op)
		}
		c := ledger.Change{Op: op, Time: nanos(t, cj.Timestamp)}
		if cj.Amount != nil {
			c.Amount = amount(t, *cj.Amount)
		}
		if cj.Transfer != nil {
			c.Transfer = ledgerTransfer(t, cj.Transfer)
		}
		if cj.Account != nil {
			c.Account = ledgerAccount(t, cj.Account)
		}
		if cj.Asset != nil {
			c.Asset = &ledger.Asset{Code: cj.Asset.Code, Scale: cj.Asset.Scale}
		}
		r.Changes = append(r.Changes, c)
	}
	return r
}

func ledgerTransfer(t *testing.T, tr *transfer) *ledger.Transfer {
	t.Helper()
	lt := &ledger.Transfer{ID: tr.ID, Source: tr.Source, Destination: tr.Destination, Amount: amount(t, tr.Amount),
		Asset: tr.Asset, Kind: ledger.TransferKind(tr.Kind), Status: ledger.TransferStatus(tr.Status),
		Reference: tr.Reference, Metadata: tr.Metadata, CreatedAt: nanos(t, tr.CreatedAt),
		AmountPosted: amount(t, tr.AmountPosted)}
	if tr.PostedAt != nil {
		lt.PostedAt = nanos(t, *tr.PostedAt)
	}
	if tr.ExpiresAt != nil {
		lt.ExpiresAt = nanos(t, *tr.ExpiresAt)
	}
	return lt
}

func ledgerAccount(t *testing.T, a *account) *ledger.Account {
	t.Helper()
	return &ledger.Account{ID: a.ID, Owner: a.Owner, Asset: a.Asset, Kind: ledger.AccountKind(a.Kind),
		AllowNegative: a.AllowNegative, Status: ledger.AccountStatus(a.Status), Metadata: a.Metadata,
		CreatedAt: nanos(t, a.CreatedAt), DebitsPosted: amount(t, a.DebitsPosted),
		CreditsPosted: amount(t, a.CreditsPosted), DebitsPending: amount(t, a.Balance.PendingDebits),
		CreditsPending: amount(t, a.Balance.PendingCredits)}
}

func hexHash(t *testing.T, s string) journal.Hash {
	t.Helper()
	var h journal.Hash
	if b, err := hex.DecodeString(s); err != nil || len(b) != len(h) || hex.EncodeToString(b) != s {
		t.Fatalf("hash %q", s)
	} else {
		copy(h[:], b)
	}
	return h
}

func nanos(t *testing.T, s string) int64 {
	t.Helper()
	if !timestampRE.MatchString(s) {
		t.Fatalf("timestamp %q is not RFC 3339 UTC with nine fraction digits", s)
	}
	ns, err := journal.ParseTime(s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return ns
}

func amount(t *testing.T, s string) ledger.Amount {
	t.Helper()
	a, err := ledger.ParseAmount(s)
	if err != nil {
		t.Fatalf("amount %q: %v", s, err)
	}
	return a
}

func bigOf(t *testing.T, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("number %q", s)
	}
	return v
}

// totals are an account's four totals, rebuilt from the journal.
type totals struct{ debits, credits, pendingDebits, pendingCredits *big.Int }

// rebuild replays the journal as an auditor would, with docs/journal.md's table of what
// each op moves, and returns every account's totals.
func rebuild(t *testing.T, recs []servedRecord) map[string]*totals {
	t.Helper()
	accts := map[string]*totals{}
	get := func(id string) *totals {
		a := accts[id]
		if a == nil {
			t.Fatalf("journal: a change names account %s before its account_create", id)
		}
		return a
	}
	transfers := map[string]*ledger.Transfer{}
	add := func(v *big.Int, a ledger.Amount) { v.Add(v, bigOf(t, a.String())) }
	sub := func(v *big.Int, a ledger.Amount) { v.Sub(v, bigOf(t, a.String())) }
	for _, sr := range recs {
		for _, c := range sr.rec.Changes {
			switch c.Op {
			case ledger.ChangeAccountCreate:
				accts[c.Account.ID] = &totals{new(big.Int), new(big.Int), new(big.Int), new(big.Int)}
			case ledger.ChangeCreate:
				src, dst := get(c.Transfer.Source), get(c.Transfer.Destination)
				if c.Transfer.Status == ledger.TransferPosted {
					add(src.debits, c.Amount)
					add(dst.credits, c.Amount)
				} else {
					add(src.pendingDebits, c.Amount)
					add(dst.pendingCredits, c.Amount)
				}
			case ledger.ChangePost:
				src, dst := get(c.Transfer.Source), get(c.Transfer.Destination)
				add(src.debits, c.Amount)
				add(dst.credits, c.Amount)
				release := c.Amount
				if c.Transfer.Status == ledger.TransferPosted {
					before := transfers[c.Transfer.ID]
					release, _ = before.Amount.Sub(before.AmountPosted)
				}
				sub(src.pendingDebits, release)
				sub(dst.pendingCredits, release)
			case ledger.ChangeIncrease:
				add(get(c.Transfer.Source).pendingDebits, c.Amount)
				add(get(c.Transfer.Destination).pendingCredits, c.Amount)
			case ledger.ChangeVoid, ledger.ChangeExpire:
				sub(get(c.Transfer.Source).pendingDebits, c.Amount)
				sub(get(c.Transfer.Destination).pendingCredits, c.Amount)
			}
			if c.Transfer != nil {
				transfers[c.Transfer.ID] = c.Transfer
			}
		}
	}
	return accts
}

// checkRebuild compares the journal's account totals with what GET /v1/accounts serves.
func checkRebuild(t *testing.T, s *stack, recs []servedRecord) {
	t.Helper()
	rebuilt := rebuild(t, recs)
	served := all[account](t, s, s.admin, "/v1/accounts", 1000)
	if len(served) != len(rebuilt) {
		t.Errorf("the journal creates %d accounts, the API lists %d", len(rebuilt), len(served))
	}
	for _, a := range served {
		r := rebuilt[a.ID]
		if r == nil {
			t.Errorf("account %s is not in the journal", a.ID)
			continue
		}
		got := fmt.Sprintln(a.DebitsPosted, a.CreditsPosted, a.Balance.PendingDebits, a.Balance.PendingCredits)
		want := fmt.Sprintln(r.debits, r.credits, r.pendingDebits, r.pendingCredits)
		if got != want {
			t.Errorf("account %s: served totals %s, the journal says %s", a.ID, got, want)
		}
	}
}

func TestJournal(t *testing.T) {
	s := newStack(t)
	reader := s.newKey(t, "auditor", "read")
	initial := readJournal(t, s, reader, 1000)

	s.do(t, "POST", "/v1/assets", s.admin, obj{"code": "XAU", "scale": 3}).want(t, 201)
	s.openAccount(t, "treasury", "USD", true)
	s.do(t, "POST", "/v1/accounts", s.admin, obj{"id": "alice", "asset": "USD",
		"metadata": obj{"note": "café ☕ 😀", "ctl": "a\"b\\c\n\t\u007f</>"}}).want(t, 201)
	s.openAccount(t, "bob", "USD", false)
	s.pay(t, "treasury", "alice", "1000")
	h := s.hold(t, "alice", "bob", "100", 0)
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", s.admin, obj{"amount": "10", "final": false}).want(t, 200)
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/increase", s.admin, obj{"amount": "5"}).want(t, 200)
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", s.admin, obj{"amount": "20"}).want(t, 200)
	h2 := s.hold(t, "alice", "bob", "7", 0)
	s.do(t, "POST", "/v1/transfers/"+h2.ID+"/void", s.admin, nil).want(t, 200)
	s.do(t, "POST", "/v1/accounts/bob/freeze", s.admin, nil).want(t, 200)
	s.do(t, "POST", "/v1/accounts/bob/unfreeze", s.admin, nil).want(t, 200)
	s.do(t, "POST", "/v1/transfers/batch", s.admin, obj{"atomic": true, "transfers": []obj{
		{"source": "treasury", "destination": "bob", "amount": "3", "metadata": obj{"k": "\u2028"}},
		{"source": "bob", "destination": "alice", "amount": "3", "reference": "ref"},
	}}).want(t, 201)
	h3 := s.hold(t, "alice", "bob", "1", 1)
	eventually(t, 15*time.Second, "a hold to expire", func() bool { return s.transfer(t, h3.ID).Status == "expired" })

	var recs []servedRecord
	for _, limit := range []int{1, 3, 1000} {
		recs = readJournal(t, s, reader, limit)
	}
	ops := map[string]bool{}
	for _, sr := range recs[len(initial):] {
		for _, c := range sr.rec.Changes {
			ops[c.Op.String()] = true
		}
	}
	for _, op := range []string{"create", "post", "increase", "void", "expire", "account_create", "account_freeze",
		"account_unfreeze", "asset_create"} {
		if !ops[op] {
			t.Errorf("the journal has no %s change", op)
		}
	}
	if len(initial) > 0 && initial[0].rec.PrevHash != (journal.Hash{}) {
		t.Errorf("the first record's prev_hash is not 64 zeros")
	}
	checkRebuild(t, s, recs)

	// A rejected write adds nothing.
	s.unchanged(t, func() {
		s.do(t, "POST", "/v1/transfers", s.admin, obj{"source": "bob", "destination": "alice", "amount": "1000000"}).
			wantProblem(t, 422, "insufficient_funds")
	})
	last := recs[len(recs)-1].rec.Seq
	var p page[json.RawMessage]
	s.do(t, "GET", fmt.Sprintf("/v1/journal?after=%d", last), reader, nil).want(t, 200).into(t, &p)
	if len(p.Items) != 0 || p.NextCursor != "" {
		t.Errorf("after the head: %+v", p)
	}
	s.do(t, "GET", fmt.Sprintf("/v1/journal?after=%d&limit=1", last-1), reader, nil).want(t, 200).into(t, &p)
	if len(p.Items) != 1 || p.NextCursor != strconv.FormatUint(last, 10) {
		t.Errorf("the last record: %d items, next %q", len(p.Items), p.NextCursor)
	}
	s.do(t, "GET", "/v1/journal?after=99999999", reader, nil).want(t, 200)
	for _, q := range []string{"after=x", "after=-1", "after=1.5", "after=", "after=18446744073709551616",
		"limit=0", "limit=1001", "limit=x"} {
		s.do(t, "GET", "/v1/journal?"+q, reader, nil).wantProblem(t, 400, "invalid_request")
	}

	// The chain survives a restart.
	s = s.restart(t)
	again := readJournal(t, s, reader, 1000)
	if len(again) != len(recs) || !bytes.Equal(again[len(again)-1].raw, recs[len(recs)-1].raw) {
		t.Errorf("after a restart the journal has %d records, was %d", len(again), len(recs))
	}
}

// TestJournalEmpty: the head of an empty journal. A fresh store may preload assets as
// records, so this only checks the head matches whatever the journal holds.
func TestJournalEmpty(t *testing.T) {
	s := newStack(t)
	recs := readJournal(t, s, s.admin, 1)
	if len(recs) == 0 {
		if h := s.head(t); h.Seq != 0 || h.Hash != strings.Repeat("0", 64) {
			t.Errorf("empty journal head: %+v", h)
		}
	}
}
