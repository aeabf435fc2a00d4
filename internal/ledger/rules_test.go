package ledger_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// t0 is 2026-01-01T00:00:00Z in Unix nanoseconds, the fixtures' engine time at start.
const t0 = int64(1_767_225_600) * int64(time.Second)

// fixture is a State with a clock that moves 1 ms per Apply. newFixture opens:
//
//	treasury      USD allow_negative
//	alice, bob    USD (alice holds 1000)
//	carol         EUR
//	eur-treasury  EUR allow_negative
type fixture struct {
	t   *testing.T
	st  *ledger.State
	now int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, st: ledger.NewState(), now: t0}
	f.mustOK(false,
		openAcct("treasury", "USD", true), openAcct("alice", "USD", false),
		openAcct("bob", "USD", false), openAcct("carol", "EUR", false),
		openAcct("eur-treasury", "EUR", true),
		xfer("treasury", "alice", 1000))
	return f
}

// apply runs one Command 1 ms after the previous Apply and checks the invariants.
func (f *fixture) apply(atomic bool, reqs ...ledger.Request) ledger.Batch {
	f.t.Helper()
	f.now += int64(time.Millisecond)
	return f.applyAt(f.now, ledger.Command{Requests: reqs, Atomic: atomic})
}

func (f *fixture) applyAt(now int64, cmds ...ledger.Command) ledger.Batch {
	f.t.Helper()
	b := f.st.Apply(now, cmds)
	if err := f.st.CheckInvariants(); err != nil {
		f.t.Fatalf("CheckInvariants: %v", err)
	}
	if len(b.Results) != len(cmds) {
		f.t.Fatalf("Apply: got %d result lists, want %d", len(b.Results), len(cmds))
	}
	for i := range cmds {
		if len(b.Results[i]) != len(cmds[i].Requests) {
			f.t.Fatalf("Apply: command %d: got %d results, want %d", i, len(b.Results[i]), len(cmds[i].Requests))
		}
	}
	return b
}

func (f *fixture) mustOK(atomic bool, reqs ...ledger.Request) ledger.Batch {
	f.t.Helper()
	b := f.apply(atomic, reqs...)
	for i, r := range b.Results[0] {
		if r.Code != ledger.CodeOK {
			f.t.Fatalf("request %d (op %d): got code %q (%s), want OK", i, reqs[i].Op, r.Code, r.Detail)
		}
	}
	return b
}

// do applies one request and returns its result.
func (f *fixture) do(r ledger.Request) ledger.Result {
	f.t.Helper()
	return f.apply(false, r).Results[0][0]
}

func (f *fixture) ok(r ledger.Request) ledger.Result {
	f.t.Helper()
	res := f.do(r)
	if res.Code != ledger.CodeOK {
		f.t.Fatalf("op %d: got code %q (%s), want OK", r.Op, res.Code, res.Detail)
	}
	return res
}

// wantCode applies r and checks its code; a rejection must change nothing.
func (f *fixture) wantCode(r ledger.Request, want ledger.Code) ledger.Result {
	f.t.Helper()
	before := snapshot(f.st)
	b := f.apply(false, r)
	res := b.Results[0][0]
	if res.Code != want {
		f.t.Errorf("op %d: got code %q (%s), want %q", r.Op, res.Code, res.Detail, want)
	}
	if want != ledger.CodeOK {
		if res.Detail == "" {
			f.t.Errorf("code %q: got an empty detail, want a sentence", res.Code)
		}
		if res.Transfer != nil || res.Account != nil || res.Asset != nil || res.Existing {
			f.t.Errorf("code %q: got a result object, want none", res.Code)
		}
		if len(b.Changes) != 0 || len(b.Touched) != 0 {
			f.t.Errorf("code %q: got %d changes and %d touched accounts, want none", res.Code, len(b.Changes), len(b.Touched))
		}
		if after := snapshot(f.st); !reflect.DeepEqual(before, after) {
			f.t.Errorf("code %q: the state changed:\n got %+v\nwant %+v", res.Code, after, before)
		}
	}
	return res
}

func (f *fixture) acct(id string) ledger.Account {
	f.t.Helper()
	a, ok := f.st.Account(id)
	if !ok {
		f.t.Fatalf("account %s: not found", id)
	}
	return a
}

// wantBal checks an account's debits_posted, credits_posted, pending_debits, pending_credits.
func (f *fixture) wantBal(id string, dp, cp, dpend, cpend uint64) {
	f.t.Helper()
	a := f.acct(id)
	u := ledger.AmountFromUint64
	got := [4]ledger.Amount{a.DebitsPosted, a.CreditsPosted, a.DebitsPending, a.CreditsPending}
	want := [4]ledger.Amount{u(dp), u(cp), u(dpend), u(cpend)}
	if got != want {
		f.t.Errorf("%s debits_posted, credits_posted, pending_debits, pending_credits: got %s %s %s %s, want %d %d %d %d",
			id, got[0], got[1], got[2], got[3], dp, cp, dpend, cpend)
	}
}

func (f *fixture) wantAvailable(id, posted, available string) {
	f.t.Helper()
	a := f.acct(id)
	if got := a.Posted().String(); got != posted {
		f.t.Errorf("%s posted: got %s, want %s", id, got, posted)
	}
	if got := a.Available().String(); got != available {
		f.t.Errorf("%s available: got %s, want %s", id, got, available)
	}
}

func (f *fixture) transfer(id string) *ledger.Transfer {
	f.t.Helper()
	tr, ok := f.st.Transfer(id)
	if !ok {
		f.t.Fatalf("transfer %s: not found", id)
	}
	return tr
}

// state is everything a client can see of a State, for before/after comparisons.
type state struct {
	Assets   []ledger.Asset
	Accounts map[string]ledger.Account
	Holds    map[string]ledger.Transfer
	Expiry   int64
}

func snapshot(st *ledger.State) state {
	s := state{Assets: st.Assets(), Accounts: map[string]ledger.Account{}, Holds: map[string]ledger.Transfer{},
		Expiry: st.NextExpiry()}
	st.EachAccount(func(a *ledger.Account) { s.Accounts[a.ID] = *a })
	for _, h := range st.Holds() {
		s.Holds[h.ID] = *h
	}
	return s
}

// Request builders.

func openAcct(id, asset string, allowNegative bool) ledger.Request {
	return ledger.Request{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{
		ID: id, Owner: "user:" + id, Asset: asset, AllowNegative: allowNegative}}
}

func xfer(src, dst string, amount uint64) ledger.Request {
	return xferAmount(src, dst, ledger.AmountFromUint64(amount))
}

func xferAmount(src, dst string, amount ledger.Amount) ledger.Request {
	return ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
		Source: src, Destination: dst, Amount: amount}}
}

func holdReq(src, dst string, amount uint64, timeoutSeconds uint32) ledger.Request {
	r := xfer(src, dst, amount)
	r.Transfer.Hold, r.Transfer.HoldTimeout = true, timeoutSeconds
	return r
}

func withID(r ledger.Request, id string) ledger.Request {
	r.Transfer.ID = id
	return r
}

func postAll(id string) ledger.Request {
	return ledger.Request{Op: ledger.OpPost, TransferID: id}
}

func postAmount(id string, amount uint64, final bool) ledger.Request {
	return ledger.Request{Op: ledger.OpPost, TransferID: id, Amount: ledger.AmountFromUint64(amount),
		AmountSet: true, NotFinal: !final}
}

func increase(id string, amount uint64) ledger.Request {
	return ledger.Request{Op: ledger.OpIncrease, TransferID: id, Amount: ledger.AmountFromUint64(amount)}
}

func void(id string) ledger.Request { return ledger.Request{Op: ledger.OpVoid, TransferID: id} }

func freeze(id string) ledger.Request { return ledger.Request{Op: ledger.OpFreeze, AccountID: id} }

func unfreeze(id string) ledger.Request { return ledger.Request{Op: ledger.OpUnfreeze, AccountID: id} }

func createAsset(code string, scale uint8) ledger.Request {
	return ledger.Request{Op: ledger.OpCreateAsset, Asset: ledger.Asset{Code: code, Scale: scale}}
}

func wantStatus(t *testing.T, tr *ledger.Transfer, status ledger.TransferStatus, amount, posted uint64) {
	t.Helper()
	if tr.Status != status {
		t.Errorf("transfer %s status: got %s, want %s", tr.ID, tr.Status, status)
	}
	if got := tr.Amount; got != ledger.AmountFromUint64(amount) {
		t.Errorf("transfer %s amount: got %s, want %d", tr.ID, got, amount)
	}
	if got := tr.AmountPosted; got != ledger.AmountFromUint64(posted) {
		t.Errorf("transfer %s amount_posted: got %s, want %d", tr.ID, got, posted)
	}
}

func wantChange(t *testing.T, b ledger.Batch, i int, op ledger.ChangeOp, amount uint64) *ledger.Change {
	t.Helper()
	if i >= len(b.Changes) {
		t.Fatalf("changes: got %d, want more than %d", len(b.Changes), i)
	}
	c := &b.Changes[i]
	if c.Op != op {
		t.Errorf("change %d op: got %s, want %s", i, c.Op, op)
	}
	if c.Transfer != nil && c.Amount != ledger.AmountFromUint64(amount) {
		t.Errorf("change %d amount: got %s, want %d", i, c.Amount, amount)
	}
	return c
}

// Accounts.

func TestCreateAccountDefaults(t *testing.T) {
	f := newFixture(t)
	r := openAcct("dave", "USD", false)
	r.Account.Metadata = nil
	b := f.mustOK(false, r)
	a := b.Results[0][0].Account
	if a == nil {
		t.Fatalf("result account: got nil, want the account")
	}
	if a.ID != "dave" || a.Owner != "user:dave" || a.Asset != "USD" {
		t.Errorf("id, owner, asset: got %s %s %s, want dave user:dave USD", a.ID, a.Owner, a.Asset)
	}
	if a.Kind != ledger.KindUser {
		t.Errorf("kind: got %q, want %q", a.Kind, ledger.KindUser)
	}
	if a.Status != ledger.StatusActive {
		t.Errorf("status: got %q, want %q", a.Status, ledger.StatusActive)
	}
	if a.AllowNegative {
		t.Errorf("allow_negative: got true, want false")
	}
	if a.Metadata == nil || len(a.Metadata) != 0 {
		t.Errorf("metadata: got %#v, want an empty map", a.Metadata)
	}
	if a.CreatedAt != b.Time {
		t.Errorf("created_at: got %d, want the batch time %d", a.CreatedAt, b.Time)
	}
	if len(b.Changes) != 1 || b.Changes[0].Op != ledger.ChangeAccountCreate || b.Changes[0].Account.ID != "dave" ||
		b.Changes[0].Time != a.CreatedAt {
		t.Errorf("changes: got %+v, want one account_create of dave at created_at", b.Changes)
	}
	f.wantBal("dave", 0, 0, 0, 0)
	f.wantAvailable("dave", "0", "0")
	if got := f.acct("dave"); !reflect.DeepEqual(got, *a) {
		t.Errorf("Account(dave): got %+v, want %+v", got, *a)
	}

	for _, k := range ledger.AccountKinds {
		r := openAcct("kind-"+string(k), "EUR", true)
		r.Account.Kind = k
		if got := f.ok(r).Account; got.Kind != k || !got.AllowNegative {
			t.Errorf("kind %s: got kind %s allow_negative %v, want %s true", k, got.Kind, got.AllowNegative, k)
		}
	}
	r = openAcct("kind-bad", "USD", false)
	r.Account.Kind = "users"
	f.wantCode(r, ledger.CodeInvalidRequest)
}

func TestCreateAccountExists(t *testing.T) {
	f := newFixture(t)
	f.wantCode(openAcct("alice", "USD", false), ledger.CodeAccountExists)
	f.wantCode(openAcct("alice", "EUR", true), ledger.CodeAccountExists)
	// Two of one id in one batch: the second one fails.
	b := f.apply(false, openAcct("erin", "USD", false), openAcct("erin", "USD", false))
	if got := b.Results[0][1].Code; got != ledger.CodeAccountExists {
		t.Errorf("second erin: got %q, want %q", got, ledger.CodeAccountExists)
	}
}

func TestCreateAccountAssetUnknown(t *testing.T) {
	f := newFixture(t)
	for _, asset := range []string{"XAU", "usd", ""} {
		f.wantCode(openAcct("gold", asset, false), ledger.CodeAssetUnknown)
	}
}

func TestCreateAccountID(t *testing.T) {
	f := newFixture(t)
	bad := []string{"a b", "a/b", "é", "a\x00", "a@b", "a+b", strings.Repeat("x", 65), " alice"}
	for _, id := range bad {
		f.wantCode(openAcct(id, "USD", false), ledger.CodeInvalidRequest)
	}
	good := []string{"x", strings.Repeat("x", 64), "A-Za_z0.9:x", "acc_0123456789abc"}
	for _, id := range good {
		if got := f.ok(openAcct(id, "USD", false)).Account.ID; got != id {
			t.Errorf("id: got %q, want %q", got, id)
		}
	}
}

func TestCreateAccountServerIDs(t *testing.T) {
	f := newFixture(t)
	reqs := make([]ledger.Request, 50)
	for i := range reqs {
		reqs[i] = openAcct("", "USD", false)
	}
	b := f.mustOK(false, reqs...)
	seen := map[string]bool{}
	for _, r := range b.Results[0] {
		id := r.Account.ID
		if !ledger.ValidID(id) {
			t.Errorf("server account id %q: not a valid id", id)
		}
		if seen[id] || id == "alice" {
			t.Errorf("server account id %q: given twice", id)
		}
		seen[id] = true
	}

	// A client may have taken the id the server would make next: it must pick another.
	probe := ledger.NewState()
	at := t0 + 5*int64(time.Second)
	would := probe.Apply(at, []ledger.Command{{Requests: []ledger.Request{openAcct("", "USD", false)}}}).Results[0][0].Account.ID
	st := ledger.NewState()
	st.Apply(at-1, []ledger.Command{{Requests: []ledger.Request{openAcct(would, "USD", false)}}})
	res := st.Apply(at, []ledger.Command{{Requests: []ledger.Request{openAcct("", "USD", false)}}}).Results[0][0]
	if res.Code != ledger.CodeOK || res.Account.ID == would || !ledger.ValidID(res.Account.ID) {
		t.Errorf("server id after a client took %q: got %q (%q), want another valid id", would, res.Account.ID, res.Code)
	}
	if st.AccountCount() != 2 {
		t.Errorf("accounts: got %d, want 2", st.AccountCount())
	}
}

func TestCreateAccountLimits(t *testing.T) {
	f := newFixture(t)
	keys := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m["k"+strings.Repeat("0", 3)+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
		}
		return m
	}
	tests := []struct {
		name  string
		md    map[string]string
		owner string
		want  ledger.Code
	}{
		{"32 keys", keys(32), "", ledger.CodeOK},
		{"33 keys", keys(33), "", ledger.CodeInvalidRequest},
		{"64-byte key", map[string]string{strings.Repeat("k", 64): "v"}, "", ledger.CodeOK},
		{"65-byte key", map[string]string{strings.Repeat("k", 65): "v"}, "", ledger.CodeInvalidRequest},
		{"empty key", map[string]string{"": "v"}, "", ledger.CodeInvalidRequest},
		{"512-byte value", map[string]string{"k": strings.Repeat("v", 512)}, "", ledger.CodeOK},
		{"513-byte value", map[string]string{"k": strings.Repeat("v", 513)}, "", ledger.CodeInvalidRequest},
		{"empty value", map[string]string{"k": ""}, "", ledger.CodeOK},
		{"256-byte owner", nil, strings.Repeat("o", 256), ledger.CodeOK},
		{"257-byte owner", nil, strings.Repeat("o", 257), ledger.CodeInvalidRequest},
	}
	for i, tt := range tests {
		r := openAcct("limits-"+string(rune('a'+i)), "USD", false)
		r.Account.Metadata, r.Account.Owner = tt.md, tt.owner
		res := f.wantCode(r, tt.want)
		if tt.want == ledger.CodeOK && res.Code == ledger.CodeOK && len(tt.md) > 0 && !maps.Equal(res.Account.Metadata, tt.md) {
			t.Errorf("%s: got metadata %v, want %v", tt.name, res.Account.Metadata, tt.md)
		}
	}
	// Transfers have the same metadata limits.
	for _, tt := range tests[:8] {
		r := xfer("alice", "bob", 1)
		r.Transfer.Metadata = tt.md
		f.wantCode(r, tt.want)
	}
}

// Assets.

func TestCreateAsset(t *testing.T) {
	f := newFixture(t)
	b := f.mustOK(false, createAsset("XAU", 3))
	if got := b.Results[0][0].Asset; got == nil || *got != (ledger.Asset{Code: "XAU", Scale: 3}) {
		t.Errorf("result asset: got %v, want XAU 3", got)
	}
	if len(b.Changes) != 1 || b.Changes[0].Op != ledger.ChangeAssetCreate {
		t.Errorf("changes: got %+v, want one asset_create", b.Changes)
	}
	if a, ok := f.st.Asset("XAU"); !ok || a.Scale != 3 {
		t.Errorf("Asset(XAU): got %v %v, want scale 3", a, ok)
	}
	codes := []string{}
	for _, a := range f.st.Assets() {
		codes = append(codes, a.Code)
	}
	if !slices.IsSorted(codes) || len(codes) != len(ledger.PreloadedAssets)+1 {
		t.Errorf("Assets: got %v, want the preloaded ones and XAU, sorted", codes)
	}
	f.ok(openAcct("gold", "XAU", false))

	f.wantCode(createAsset("USD", 2), ledger.CodeAssetExists)
	f.wantCode(createAsset("XAU", 4), ledger.CodeAssetExists)
	f.ok(createAsset("ATTO", 18))
	for _, code := range []string{"U", "usd", "US-D", "US D", strings.Repeat("A", 17), "", "ÉUR"} {
		f.wantCode(createAsset(code, 2), ledger.CodeInvalidRequest)
	}
	f.ok(createAsset(strings.Repeat("Z", 16), 0))
	f.ok(createAsset("X1", 0))
	f.wantCode(createAsset("WEI19", 19), ledger.CodeInvalidRequest)
	f.wantCode(createAsset("WEI255", 255), ledger.CodeInvalidRequest)
}

// Transfers.

func TestTransferPosted(t *testing.T) {
	f := newFixture(t)
	b := f.mustOK(false, xfer("alice", "bob", 250))
	tr := b.Results[0][0].Transfer
	wantStatus(t, tr, ledger.TransferPosted, 250, 250)
	if !ledger.IsServerTransferID(tr.ID) {
		t.Errorf("id: got %q, want a server id", tr.ID)
	}
	if tr.Kind != ledger.TransferP2P || tr.Asset != "USD" || tr.Hold || tr.ExpiresAt != 0 {
		t.Errorf("kind, asset, hold, expires_at: got %s %s %v %d, want p2p USD false 0", tr.Kind, tr.Asset, tr.Hold, tr.ExpiresAt)
	}
	if tr.Metadata == nil {
		t.Errorf("metadata: got nil, want an empty map")
	}
	if tr.CreatedAt != b.Time || tr.PostedAt != tr.CreatedAt {
		t.Errorf("created_at, posted_at: got %d %d, want both %d", tr.CreatedAt, tr.PostedAt, b.Time)
	}
	c := wantChange(t, b, 0, ledger.ChangeCreate, 250)
	if !c.Posts() || c.SourceAfter.String() != "750" || c.DestinationAfter.String() != "250" {
		t.Errorf("change: got posts %v, after %s %s, want true 750 250", c.Posts(), c.SourceAfter, c.DestinationAfter)
	}
	f.wantBal("alice", 250, 1000, 0, 0)
	f.wantBal("bob", 0, 250, 0, 0)
	f.wantAvailable("alice", "750", "750")
	f.wantAvailable("treasury", "-1000", "-1000")
	if len(f.st.Holds()) != 0 {
		t.Errorf("holds: got %d, want 0", len(f.st.Holds()))
	}

	for _, k := range ledger.TransferKinds {
		r := xfer("treasury", "bob", 1)
		r.Transfer.Kind = k
		if got := f.ok(r).Transfer.Kind; got != k {
			t.Errorf("kind: got %s, want %s", got, k)
		}
	}
}

func TestTransferInvalid(t *testing.T) {
	f := newFixture(t)
	mod := func(m func(*ledger.TransferRequest)) ledger.Request {
		r := xfer("alice", "bob", 10)
		m(&r.Transfer)
		return r
	}
	tests := []struct {
		name string
		r    ledger.Request
	}{
		{"zero amount", xfer("alice", "bob", 0)},
		{"zero hold", holdReq("alice", "bob", 0, 60)},
		{"bad kind", mod(func(r *ledger.TransferRequest) { r.Kind = "gift" })},
		{"long reference", mod(func(r *ledger.TransferRequest) { r.Reference = strings.Repeat("r", 257) })},
		{"bad id", mod(func(r *ledger.TransferRequest) { r.ID = "a b" })},
		{"long id", mod(func(r *ledger.TransferRequest) { r.ID = strings.Repeat("i", 65) })},
		{"server id", mod(func(r *ledger.TransferRequest) { r.ID = "tr_0123456789abc" })},
		{"bad source", mod(func(r *ledger.TransferRequest) { r.Source = "" })},
		{"bad destination", mod(func(r *ledger.TransferRequest) { r.Destination = "b/b" })},
		{"timeout above ten years", mod(func(r *ledger.TransferRequest) {
			r.Hold, r.HoldTimeout = true, ledger.HoldTimeoutMax+1
		})},
		{"33 metadata keys", mod(func(r *ledger.TransferRequest) {
			r.Metadata = map[string]string{}
			for i := range 33 {
				r.Metadata[strings.Repeat("k", i+1)] = ""
			}
		})},
		{"unknown op", ledger.Request{Op: 0}},
		{"unknown op 200", ledger.Request{Op: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.t = t
			f.wantCode(tt.r, ledger.CodeInvalidRequest)
		})
	}
	f.t = t
	f.ok(mod(func(r *ledger.TransferRequest) { r.Reference = strings.Repeat("r", 256) }))
	f.ok(mod(func(r *ledger.TransferRequest) { r.Hold, r.HoldTimeout = true, ledger.HoldTimeoutMax }))
}

func TestTransferInsufficientFunds(t *testing.T) {
	f := newFixture(t)
	f.wantCode(xfer("alice", "bob", 1001), ledger.CodeInsufficientFunds)
	f.wantCode(xferAmount("alice", "bob", ledger.AmountMax), ledger.CodeInsufficientFunds)
	f.wantCode(xfer("bob", "alice", 1), ledger.CodeInsufficientFunds)
	f.ok(xfer("alice", "bob", 1000))
	f.wantBal("alice", 1000, 1000, 0, 0)
	f.wantCode(xfer("alice", "bob", 1), ledger.CodeInsufficientFunds)
	f.wantAvailable("alice", "0", "0")
}

func TestTransferAllowNegative(t *testing.T) {
	f := newFixture(t)
	f.mustOK(false, openAcct("mint", "USD", true), openAcct("sink", "USD", false), openAcct("mint2", "USD", true))
	f.ok(xfer("mint", "sink", 1))
	f.wantAvailable("mint", "-1", "-1")
	// Down to −(2^128−1) and no further.
	max1, _ := ledger.AmountMax.Sub(ledger.AmountFromUint64(1))
	f.ok(xferAmount("mint", "bob", max1))
	f.wantAvailable("mint", "-"+maxDigits, "-"+maxDigits)
	f.wantCode(xfer("mint", "bob", 1), ledger.CodeAmountOverflow)
	// A hold would take available past −(2^128−1) too: api.md's floor, and Available must stay printable.
	f.wantCode(holdReq("mint", "bob", 1, 0), ledger.CodeAmountOverflow)
	f.wantAvailable("mint", "-"+maxDigits, "-"+maxDigits)

	// Credits received may be held again, down to the floor; debits_posted is at its maximum.
	f.ok(xfer("bob", "mint", 5))
	f.wantAvailable("mint", "-340282366920938463463374607431768211450", "-340282366920938463463374607431768211450")
	f.ok(holdReq("mint", "alice", 3, 0))
	f.wantAvailable("mint", "-340282366920938463463374607431768211450", "-340282366920938463463374607431768211453")
	f.wantCode(holdReq("mint", "alice", 3, 0), ledger.CodeAmountOverflow)
	f.wantCode(xfer("mint", "alice", 1), ledger.CodeAmountOverflow)
	id := f.ok(holdReq("mint", "alice", 1, 0)).Transfer.ID
	f.wantCode(increase(id, 2), ledger.CodeAmountOverflow)
	f.ok(increase(id, 1))
	f.wantAvailable("mint", "-340282366920938463463374607431768211450", "-"+maxDigits)

	// A posted debit counts what the account holds.
	f.ok(holdReq("mint2", "sink", 10, 0))
	f.ok(openAcct("sink2", "USD", false))
	f.wantCode(xferAmount("mint2", "sink2", max1), ledger.CodeAmountOverflow) // debits_posted fits, available does not
	max10, _ := ledger.AmountMax.Sub(ledger.AmountFromUint64(10))
	f.ok(xferAmount("mint2", "sink2", max10))
	f.wantAvailable("mint2", "-340282366920938463463374607431768211445", "-"+maxDigits)

	// The destination's credits can overflow too, posted and pending.
	f.mustOK(false, openAcct("mint3", "USD", true), openAcct("full", "USD", false))
	f.ok(xferAmount("mint3", "full", ledger.AmountMax))
	f.wantCode(xfer("treasury", "full", 1), ledger.CodeAmountOverflow)
	f.ok(holdReq("treasury", "full", 1, 0)) // pending credits are a separate total
	big := xferAmount("treasury", "full", ledger.AmountMax)
	big.Transfer.Hold = true
	f.wantCode(big, ledger.CodeAmountOverflow)
	f.st.EachAccount(func(a *ledger.Account) { _ = a.Available() }) // never panics
}

func TestTransferSameAccount(t *testing.T) {
	f := newFixture(t)
	f.wantCode(xfer("alice", "alice", 1), ledger.CodeSameAccount)
	f.wantCode(holdReq("treasury", "treasury", 1, 0), ledger.CodeSameAccount)
}

func TestTransferAccountNotFound(t *testing.T) {
	f := newFixture(t)
	f.wantCode(xfer("nobody", "bob", 1), ledger.CodeAccountNotFound)
	f.wantCode(xfer("alice", "nobody", 1), ledger.CodeAccountNotFound)
	f.wantCode(holdReq("alice", "nobody", 1, 10), ledger.CodeAccountNotFound)
}

func TestTransferAssetMismatch(t *testing.T) {
	f := newFixture(t)
	f.wantCode(xfer("alice", "carol", 1), ledger.CodeAssetMismatch) // USD → EUR
	f.wantCode(xfer("eur-treasury", "bob", 1), ledger.CodeAssetMismatch)
	r := xfer("alice", "bob", 1)
	for _, asset := range []string{"EUR", "usd", "XYZ"} {
		r.Transfer.Asset = asset
		f.wantCode(r, ledger.CodeAssetMismatch)
	}
	r.Transfer.Asset = "USD"
	if got := f.ok(r).Transfer.Asset; got != "USD" {
		t.Errorf("asset: got %s, want USD", got)
	}
	f.ok(xfer("eur-treasury", "carol", 7))
}

func TestAccountFrozen(t *testing.T) {
	f := newFixture(t)
	b := f.mustOK(false, freeze("bob"))
	if a := b.Results[0][0].Account; a == nil || a.Status != ledger.StatusFrozen {
		t.Fatalf("freeze result: got %+v, want bob frozen", a)
	}
	if len(b.Changes) != 1 || b.Changes[0].Op != ledger.ChangeAccountFreeze || b.Changes[0].Account.Status != ledger.StatusFrozen {
		t.Errorf("changes: got %+v, want one account_freeze", b.Changes)
	}
	if len(b.Touched) != 1 || b.Touched[0].ID != "bob" || b.Touched[0].Status != ledger.StatusFrozen {
		t.Errorf("touched: got %+v, want bob frozen", b.Touched)
	}
	f.wantCode(xfer("alice", "bob", 1), ledger.CodeAccountFrozen) // as destination
	f.wantCode(xfer("bob", "alice", 1), ledger.CodeAccountFrozen) // as source
	f.wantCode(holdReq("alice", "bob", 1, 0), ledger.CodeAccountFrozen)
	f.wantCode(holdReq("bob", "alice", 1, 0), ledger.CodeAccountFrozen)

	// Freezing a frozen account changes nothing and journals nothing.
	b = f.mustOK(false, freeze("bob"))
	if len(b.Changes) != 0 || b.Results[0][0].Account.Status != ledger.StatusFrozen {
		t.Errorf("second freeze: got %d changes, status %s, want 0 frozen", len(b.Changes), b.Results[0][0].Account.Status)
	}

	b = f.mustOK(false, unfreeze("bob"))
	if a := b.Results[0][0].Account; a.Status != ledger.StatusActive {
		t.Errorf("unfreeze: got %s, want active", a.Status)
	}
	if len(b.Changes) != 1 || b.Changes[0].Op != ledger.ChangeAccountUnfreeze {
		t.Errorf("changes: got %+v, want one account_unfreeze", b.Changes)
	}
	if b = f.mustOK(false, unfreeze("bob")); len(b.Changes) != 0 {
		t.Errorf("second unfreeze: got %d changes, want 0", len(b.Changes))
	}
	f.ok(xfer("alice", "bob", 1))
	f.ok(xfer("bob", "alice", 1))

	f.wantCode(freeze("nobody"), ledger.CodeAccountNotFound)
	f.wantCode(unfreeze("nobody"), ledger.CodeAccountNotFound)
}

func TestAccountClosed(t *testing.T) {
	// No request closes an account yet; a store may load a closed one.
	st := ledger.NewState()
	st.Restore(nil, []*ledger.Account{
		{ID: "shut", Asset: "USD", Kind: ledger.KindUser, Status: ledger.StatusClosed, Metadata: map[string]string{}},
		{ID: "open", Asset: "USD", Kind: ledger.KindUser, Status: ledger.StatusActive, Metadata: map[string]string{},
			CreditsPosted: ledger.AmountFromUint64(10)},
		{ID: "src", Asset: "USD", Kind: ledger.KindSystem, Status: ledger.StatusActive, Metadata: map[string]string{},
			DebitsPosted: ledger.AmountFromUint64(10), AllowNegative: true},
	}, nil, t0)
	f := &fixture{t: t, st: st, now: t0}
	f.wantCode(xfer("open", "shut", 1), ledger.CodeAccountClosed)
	f.wantCode(xfer("shut", "open", 1), ledger.CodeAccountClosed)
	f.wantCode(freeze("shut"), ledger.CodeAccountClosed)
	f.wantCode(unfreeze("shut"), ledger.CodeAccountClosed)
	f.ok(xfer("open", "src", 1))
}

func TestTransferIDReuse(t *testing.T) {
	f := newFixture(t)
	r := withID(xfer("alice", "bob", 100), "order-1")
	r.Transfer.Reference, r.Transfer.Metadata = "ref", map[string]string{"a": "b"}
	first := f.ok(r)
	if first.Existing {
		t.Errorf("first: got existing, want created")
	}
	before := snapshot(f.st)
	same := []ledger.Request{r}
	explicit := r
	explicit.Transfer.Asset, explicit.Transfer.Kind = "USD", ledger.TransferP2P // the defaults, spelt out
	same = append(same, explicit)
	for _, r := range same {
		b := f.apply(false, r)
		res := b.Results[0][0]
		if res.Code != ledger.CodeOK || !res.Existing || res.Transfer == nil {
			t.Fatalf("repeat: got code %q existing %v, want OK existing", res.Code, res.Existing)
		}
		if !reflect.DeepEqual(*res.Transfer, *first.Transfer) {
			t.Errorf("repeat: got %+v, want %+v", *res.Transfer, *first.Transfer)
		}
		if len(b.Changes) != 0 || len(b.Touched) != 0 {
			t.Errorf("repeat: got %d changes, %d touched, want none", len(b.Changes), len(b.Touched))
		}
	}
	if after := snapshot(f.st); !reflect.DeepEqual(before, after) {
		t.Errorf("repeat changed the state")
	}
	// Even when the balance would no longer cover it.
	f.ok(xfer("alice", "bob", 900))
	if res := f.do(r); !res.Existing {
		t.Errorf("repeat after spending: got code %q existing %v, want existing", res.Code, res.Existing)
	}

	diff := []func(*ledger.TransferRequest){
		func(r *ledger.TransferRequest) { r.Amount = ledger.AmountFromUint64(101) },
		func(r *ledger.TransferRequest) { r.Destination = "treasury" },
		func(r *ledger.TransferRequest) { r.Source = "treasury" },
		func(r *ledger.TransferRequest) { r.Reference = "other" },
		func(r *ledger.TransferRequest) { r.Metadata = map[string]string{"a": "c"} },
		func(r *ledger.TransferRequest) { r.Metadata = nil },
		func(r *ledger.TransferRequest) { r.Kind = ledger.TransferFee },
		func(r *ledger.TransferRequest) { r.Asset = "EUR" },
		func(r *ledger.TransferRequest) { r.Hold = true },
		func(r *ledger.TransferRequest) { r.Hold, r.HoldTimeout = true, 60 },
	}
	for i, m := range diff {
		d := r
		m(&d.Transfer)
		if res := f.wantCode(d, ledger.CodeTransferExists); res.Code != ledger.CodeTransferExists {
			t.Errorf("change %d: got %q, want transfer_exists", i, res.Code)
		}
	}

	// A pending hold's id, and a repeat inside the batch that created it.
	h := withID(holdReq("treasury", "bob", 5, 60), "hold-1")
	b := f.apply(false, h, h)
	if b.Results[0][0].Existing || !b.Results[0][1].Existing || b.Results[0][1].Transfer.Status != ledger.TransferPending {
		t.Errorf("hold twice: got existing %v %v, want false true", b.Results[0][0].Existing, b.Results[0][1].Existing)
	}
	if len(b.Changes) != 1 {
		t.Errorf("hold twice: got %d changes, want 1", len(b.Changes))
	}
	if res := f.do(h); !res.Existing {
		t.Errorf("hold repeat: got code %q, want existing", res.Code)
	}
	// A client id may look like a server id with a different length or outside the alphabet.
	for _, id := range []string{"tr_0123456789ab", "tr_0123456789abcd", "tr_0123456789abu", "TR_0123456789abc", "tr-0123456789abc"} {
		f.ok(withID(xfer("treasury", "bob", 1), id))
	}
}

func TestTransferServerIDs(t *testing.T) {
	f := newFixture(t)
	reqs := make([]ledger.Request, 200)
	for i := range reqs {
		reqs[i] = xfer("treasury", "bob", 1)
	}
	b := f.mustOK(false, reqs...)
	var ids []string
	for _, r := range b.Results[0] {
		if !ledger.IsServerTransferID(r.Transfer.ID) {
			t.Errorf("id %q: got a non-server id", r.Transfer.ID)
		}
		ids = append(ids, r.Transfer.ID)
	}
	if !slices.IsSorted(ids) {
		t.Errorf("server ids: got %v, want them sorted in creation order", ids)
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("server ids: got duplicates")
	}
	// A later batch at an earlier clock still sorts after.
	later := f.applyAt(f.now-int64(time.Hour), ledger.Command{Requests: []ledger.Request{xfer("treasury", "bob", 1)}})
	if id := later.Results[0][0].Transfer.ID; id <= ids[len(ids)-1] {
		t.Errorf("id after the clock went back: got %s, want after %s", id, ids[len(ids)-1])
	}
	// The id is the server's business: asking for it by that name is refused.
	f.wantCode(withID(xfer("treasury", "bob", 1), ids[0]), ledger.CodeInvalidRequest)
}

// Holds.

func TestHoldPending(t *testing.T) {
	f := newFixture(t)
	b := f.mustOK(false, withID(holdReq("alice", "bob", 300, 0), "h1"))
	tr := b.Results[0][0].Transfer
	wantStatus(t, tr, ledger.TransferPending, 300, 0)
	if !tr.Hold || tr.ExpiresAt != 0 || tr.PostedAt != 0 || tr.Held() != ledger.AmountFromUint64(300) {
		t.Errorf("hold, expires_at, posted_at, held: got %v %d %d %s, want true 0 0 300", tr.Hold, tr.ExpiresAt, tr.PostedAt, tr.Held())
	}
	c := wantChange(t, b, 0, ledger.ChangeCreate, 300)
	if c.Posts() || c.SourceAfter.String() != "1000" || c.DestinationAfter.String() != "0" {
		t.Errorf("change: got posts %v after %s %s, want false 1000 0", c.Posts(), c.SourceAfter, c.DestinationAfter)
	}
	f.wantBal("alice", 0, 1000, 300, 0)
	f.wantBal("bob", 0, 0, 0, 300)
	f.wantAvailable("alice", "1000", "700")
	f.wantAvailable("bob", "0", "0") // pending credits are not available
	if hs := f.st.Holds(); len(hs) != 1 || hs[0].ID != "h1" {
		t.Errorf("holds: got %v, want h1", hs)
	}
	if got := f.st.NextExpiry(); got != 0 {
		t.Errorf("NextExpiry: got %d, want 0 (the hold never expires)", got)
	}
	// Available counts what is held.
	f.wantCode(holdReq("alice", "bob", 701, 0), ledger.CodeInsufficientFunds)
	f.wantCode(xfer("alice", "bob", 701), ledger.CodeInsufficientFunds)
	f.ok(holdReq("alice", "bob", 700, 0))
	f.wantCode(xfer("alice", "bob", 1), ledger.CodeInsufficientFunds)
	f.wantCode(holdReq("alice", "bob", 1, 0), ledger.CodeInsufficientFunds)
	f.wantAvailable("alice", "1000", "0")
	// Pending credits cannot be spent.
	f.wantCode(xfer("bob", "alice", 1), ledger.CodeInsufficientFunds)
	// allow_negative sources hold without funds.
	f.ok(holdReq("treasury", "bob", 5000, 0))
	f.wantAvailable("treasury", "-1000", "-6000")
}

func TestHoldExpiresAt(t *testing.T) {
	f := newFixture(t)
	tr := f.ok(holdReq("alice", "bob", 10, 600)).Transfer
	if want := tr.CreatedAt + 600*int64(time.Second); tr.ExpiresAt != want {
		t.Errorf("expires_at: got %d, want %d", tr.ExpiresAt, want)
	}
	if tr.HoldTimeout != 600 {
		t.Errorf("hold timeout: got %d, want 600", tr.HoldTimeout)
	}
	if got := f.st.NextExpiry(); got != tr.ExpiresAt {
		t.Errorf("NextExpiry: got %d, want %d", got, tr.ExpiresAt)
	}
}

func TestPostFull(t *testing.T) {
	f := newFixture(t)
	id := f.ok(holdReq("alice", "bob", 300, 60)).Transfer.ID
	b := f.mustOK(false, postAll(id))
	tr := b.Results[0][0].Transfer
	wantStatus(t, tr, ledger.TransferPosted, 300, 300)
	if tr.PostedAt != b.Time || tr.CreatedAt >= tr.PostedAt {
		t.Errorf("posted_at: got %d, want %d after created_at %d", tr.PostedAt, b.Time, tr.CreatedAt)
	}
	c := wantChange(t, b, 0, ledger.ChangePost, 300)
	if !c.Posts() || c.SourceAfter.String() != "700" || c.DestinationAfter.String() != "300" {
		t.Errorf("change: got posts %v after %s %s, want true 700 300", c.Posts(), c.SourceAfter, c.DestinationAfter)
	}
	f.wantBal("alice", 300, 1000, 0, 0)
	f.wantBal("bob", 0, 300, 0, 0)
	if len(f.st.Holds()) != 0 || f.st.NextExpiry() != 0 {
		t.Errorf("holds, next expiry: got %d %d, want none", len(f.st.Holds()), f.st.NextExpiry())
	}
	if got := f.transfer(id); got.Status != ledger.TransferPosted {
		t.Errorf("Transfer(%s): got %s, want posted", id, got.Status)
	}
	// Nothing expires it later.
	f.applyAt(f.now + int64(time.Hour))
	f.wantBal("alice", 300, 1000, 0, 0)
}

func TestPostPartialFinal(t *testing.T) {
	f := newFixture(t)
	id := f.ok(holdReq("alice", "bob", 300, 0)).Transfer.ID
	b := f.mustOK(false, postAmount(id, 200, true))
	wantStatus(t, b.Results[0][0].Transfer, ledger.TransferPosted, 300, 200)
	wantChange(t, b, 0, ledger.ChangePost, 200)
	f.wantBal("alice", 200, 1000, 0, 0)
	f.wantBal("bob", 0, 200, 0, 0)
	f.wantAvailable("alice", "800", "800")
}

func TestMultiCapture(t *testing.T) {
	f := newFixture(t)
	id := f.ok(holdReq("alice", "bob", 300, 60)).Transfer.ID
	exp := f.transfer(id).ExpiresAt

	b := f.mustOK(false, postAmount(id, 100, false))
	tr := b.Results[0][0].Transfer
	wantStatus(t, tr, ledger.TransferPending, 300, 100)
	if tr.Held() != ledger.AmountFromUint64(200) || tr.PostedAt != b.Time || tr.ExpiresAt != exp {
		t.Errorf("held, posted_at, expires_at: got %s %d %d, want 200 %d %d", tr.Held(), tr.PostedAt, tr.ExpiresAt, b.Time, exp)
	}
	wantChange(t, b, 0, ledger.ChangePost, 100)
	f.wantBal("alice", 100, 1000, 200, 0)
	f.wantBal("bob", 0, 100, 0, 200)

	b = f.mustOK(false, postAmount(id, 50, false))
	wantStatus(t, b.Results[0][0].Transfer, ledger.TransferPending, 300, 150)
	f.wantBal("alice", 150, 1000, 150, 0)
	f.wantCode(postAmount(id, 151, true), ledger.CodeAmountExceedsHold)
	f.wantCode(postAmount(id, 151, false), ledger.CodeAmountExceedsHold)

	b = f.mustOK(false, postAmount(id, 100, true))
	wantStatus(t, b.Results[0][0].Transfer, ledger.TransferPosted, 300, 250)
	wantChange(t, b, 0, ledger.ChangePost, 100)
	f.wantBal("alice", 250, 1000, 0, 0)
	f.wantBal("bob", 0, 250, 0, 0)
	if len(f.st.Holds()) != 0 {
		t.Errorf("holds: got %d, want 0", len(f.st.Holds()))
	}

	// final: false needs an amount.
	id = f.ok(holdReq("alice", "bob", 10, 0)).Transfer.ID
	f.wantCode(ledger.Request{Op: ledger.OpPost, TransferID: id, NotFinal: true}, ledger.CodeInvalidRequest)
	f.wantCode(postAmount(id, 0, true), ledger.CodeInvalidRequest)
	f.wantCode(postAmount(id, 0, false), ledger.CodeInvalidRequest)
	// Three posts in one batch.
	b = f.mustOK(true, postAmount(id, 3, false), postAmount(id, 3, false), postAll(id))
	wantStatus(t, b.Results[0][2].Transfer, ledger.TransferPosted, 10, 10)
	if len(b.Changes) != 3 || b.Changes[2].Amount != ledger.AmountFromUint64(4) {
		t.Errorf("changes: got %d, want 3, the last posting 4", len(b.Changes))
	}
}

func TestAmountExceedsHold(t *testing.T) {
	f := newFixture(t)
	id := f.ok(holdReq("alice", "bob", 300, 0)).Transfer.ID
	f.wantCode(postAmount(id, 301, true), ledger.CodeAmountExceedsHold)
	r := ledger.Request{Op: ledger.OpPost, TransferID: id, Amount: ledger.AmountMax, AmountSet: true}
	f.wantCode(r, ledger.CodeAmountExceedsHold)
	f.ok(postAmount(id, 300, true))
}

func TestNotPending(t *testing.T) {
	f := newFixture(t)
	posted := f.ok(xfer("alice", "bob", 1)).Transfer.ID // never a hold
	h1 := f.ok(holdReq("alice", "bob", 10, 60)).Transfer.ID
	f.ok(postAll(h1))
	h2 := f.ok(holdReq("alice", "bob", 10, 0)).Transfer.ID
	f.ok(void(h2))
	for _, id := range []string{posted, h1, h2} {
		f.wantCode(postAll(id), ledger.CodeTransferNotPending)
		f.wantCode(postAmount(id, 1, false), ledger.CodeTransferNotPending)
		f.wantCode(increase(id, 1), ledger.CodeTransferNotPending)
		f.wantCode(void(id), ledger.CodeTransferNotPending)
	}
	for _, r := range []ledger.Request{postAll("nope"), increase("nope", 1), void("nope")} {
		f.wantCode(r, ledger.CodeTransferNotFound)
	}
}

func TestHoldExpiry(t *testing.T) {
	f := newFixture(t)
	tr := f.ok(withID(holdReq("alice", "bob", 300, 10), "h")).Transfer
	f.ok(postAmount("h", 100, false))

	// One nanosecond before expires_at the hold is still there.
	b := f.applyAt(tr.ExpiresAt-1, ledger.Command{Requests: []ledger.Request{postAmount("h", 1, false)}})
	if got := b.Results[0][0].Code; got != ledger.CodeOK {
		t.Fatalf("post just before expiry: got %q, want OK", got)
	}
	f.wantBal("alice", 101, 1000, 199, 0)

	// At expires_at it expires first thing in the batch, before any request.
	b = f.applyAt(tr.ExpiresAt, ledger.Command{Requests: []ledger.Request{postAll("h"), increase("h", 1), void("h")}})
	for i, res := range b.Results[0] {
		if res.Code != ledger.CodeHoldExpired {
			t.Errorf("request %d after expiry: got %q, want hold_expired", i, res.Code)
		}
	}
	if len(b.Changes) != 1 {
		t.Fatalf("changes: got %d, want one expire", len(b.Changes))
	}
	c := wantChange(t, b, 0, ledger.ChangeExpire, 199)
	wantStatus(t, c.Transfer, ledger.TransferExpired, 300, 101) // what was posted stays posted
	if c.Time != b.Time || b.Time != tr.ExpiresAt {
		t.Errorf("expire time: got %d, batch %d, want %d", c.Time, b.Time, tr.ExpiresAt)
	}
	f.wantBal("alice", 101, 1000, 0, 0)
	f.wantBal("bob", 0, 101, 0, 0)
	if got := f.transfer("h").Status; got != ledger.TransferExpired {
		t.Errorf("Transfer(h): got %s, want expired", got)
	}
	if len(f.st.Holds()) != 0 || f.st.NextExpiry() != 0 {
		t.Errorf("holds, next expiry: got %d %d, want none", len(f.st.Holds()), f.st.NextExpiry())
	}
	f.now = tr.ExpiresAt
	f.wantCode(postAll("h"), ledger.CodeHoldExpired)
	f.wantCode(void("h"), ledger.CodeHoldExpired)
	f.wantCode(increase("h", 5), ledger.CodeHoldExpired)
	// Its id still names it.
	f.wantCode(withID(holdReq("alice", "bob", 300, 11), "h"), ledger.CodeTransferExists)
	if res := f.do(withID(holdReq("alice", "bob", 300, 10), "h")); !res.Existing {
		t.Errorf("repeat of an expired hold: got %q, want existing", res.Code)
	}

	// An empty Apply also expires.
	tr = f.ok(holdReq("alice", "bob", 5, 1)).Transfer
	b = f.applyAt(tr.ExpiresAt + int64(time.Hour))
	if len(b.Changes) != 1 || b.Changes[0].Op != ledger.ChangeExpire || b.Time != tr.ExpiresAt+int64(time.Hour) {
		t.Errorf("empty Apply: got %+v, want one expire", b.Changes)
	}
	if len(b.Touched) != 2 {
		t.Errorf("touched: got %d, want alice and bob", len(b.Touched))
	}
}

func TestExpiryOrderAndNextExpiry(t *testing.T) {
	f := newFixture(t)
	if got := f.st.NextExpiry(); got != 0 {
		t.Errorf("NextExpiry with no holds: got %d, want 0", got)
	}
	// Created in one batch: same timeout, expires_at 1 ns apart; ids in reverse order.
	b := f.mustOK(true,
		withID(holdReq("treasury", "bob", 1, 30), "z"), withID(holdReq("treasury", "bob", 2, 30), "y"),
		withID(holdReq("treasury", "bob", 3, 10), "x"), withID(holdReq("treasury", "bob", 4, 0), "w"),
		withID(holdReq("treasury", "bob", 5, 20), "v"))
	res := b.Results[0]
	if got, want := f.st.NextExpiry(), res[2].Transfer.ExpiresAt; got != want {
		t.Errorf("NextExpiry: got %d, want x's %d", got, want)
	}
	f.ok(void("x"))
	if got, want := f.st.NextExpiry(), res[4].Transfer.ExpiresAt; got != want {
		t.Errorf("NextExpiry after voiding x: got %d, want v's %d", got, want)
	}
	b = f.applyAt(res[0].Transfer.ExpiresAt + 1)
	var ids []string
	for _, c := range b.Changes {
		if c.Op != ledger.ChangeExpire {
			t.Errorf("change: got %s, want expire", c.Op)
		}
		ids = append(ids, c.Transfer.ID)
	}
	if want := []string{"v", "z", "y"}; !slices.Equal(ids, want) {
		t.Errorf("expired: got %v, want %v (by expires_at)", ids, want)
	}
	if got := f.st.NextExpiry(); got != 0 {
		t.Errorf("NextExpiry: got %d, want 0 (w never expires)", got)
	}
	f.wantBal("bob", 0, 0, 0, 4)

	// Equal expires_at: expired in id order. A batch's first change is at its time, so holds
	// made one second apart with timeouts one second shorter all expire at once.
	f2 := newFixture(t)
	base := t0 + int64(time.Minute)
	for i, id := range []string{"m", "c", "q", "a"} {
		b := f2.applyAt(base+int64(i)*int64(time.Second),
			ledger.Command{Requests: []ledger.Request{withID(holdReq("treasury", "bob", 1, uint32(5-i)), id)}})
		if tr := b.Results[0][0].Transfer; tr == nil || tr.ExpiresAt != base+5*int64(time.Second) {
			t.Fatalf("hold %s: got %+v, want expires_at %d", id, tr, base+5*int64(time.Second))
		}
	}
	b = f2.applyAt(base + 5*int64(time.Second))
	ids = ids[:0]
	for _, c := range b.Changes {
		ids = append(ids, c.Transfer.ID)
	}
	if want := []string{"a", "c", "m", "q"}; !slices.Equal(ids, want) {
		t.Errorf("expired: got %v, want %v (same expires_at, by id)", ids, want)
	}
}

func TestIncrease(t *testing.T) {
	f := newFixture(t)
	tr := f.ok(holdReq("alice", "bob", 300, 600)).Transfer
	b := f.mustOK(false, increase(tr.ID, 200))
	nt := b.Results[0][0].Transfer
	wantStatus(t, nt, ledger.TransferPending, 500, 0)
	if nt.ExpiresAt != tr.ExpiresAt || nt.CreatedAt != tr.CreatedAt {
		t.Errorf("expires_at, created_at: got %d %d, want %d %d (unchanged)", nt.ExpiresAt, nt.CreatedAt, tr.ExpiresAt, tr.CreatedAt)
	}
	c := wantChange(t, b, 0, ledger.ChangeIncrease, 200)
	if c.Posts() {
		t.Errorf("increase posts: got true, want false")
	}
	f.wantBal("alice", 0, 1000, 500, 0)
	f.wantBal("bob", 0, 0, 0, 500)
	f.wantCode(increase(tr.ID, 501), ledger.CodeInsufficientFunds) // available is 500
	f.wantCode(increase(tr.ID, 0), ledger.CodeInvalidRequest)
	f.ok(increase(tr.ID, 500))
	f.wantAvailable("alice", "1000", "0")
	f.wantCode(increase(tr.ID, 1), ledger.CodeInsufficientFunds)

	// After a partial post the increase adds to what is held.
	f.ok(postAmount(tr.ID, 400, false))
	f.ok(xfer("treasury", "alice", 50))
	b = f.mustOK(false, increase(tr.ID, 50))
	wantStatus(t, b.Results[0][0].Transfer, ledger.TransferPending, 1050, 400)
	f.wantBal("alice", 400, 1050, 650, 0)
	f.ok(postAll(tr.ID))
	f.wantBal("alice", 1050, 1050, 0, 0)
	f.wantBal("bob", 0, 1050, 0, 0)

	// allow_negative sources increase past zero.
	id := f.ok(holdReq("treasury", "bob", 1, 0)).Transfer.ID
	f.ok(increase(id, 1_000_000))
	f.wantAvailable("treasury", "-1050", "-1001051")
	// And not past 2^128−1.
	f.wantCode(ledger.Request{Op: ledger.OpIncrease, TransferID: id, Amount: ledger.AmountMax}, ledger.CodeAmountOverflow)
}

func TestVoid(t *testing.T) {
	f := newFixture(t)
	id := f.ok(holdReq("alice", "bob", 300, 60)).Transfer.ID
	b := f.mustOK(false, void(id))
	wantStatus(t, b.Results[0][0].Transfer, ledger.TransferVoided, 300, 0)
	wantChange(t, b, 0, ledger.ChangeVoid, 300)
	f.wantBal("alice", 0, 1000, 0, 0)
	f.wantBal("bob", 0, 0, 0, 0)
	if f.st.NextExpiry() != 0 || len(f.st.Holds()) != 0 {
		t.Errorf("a voided hold is still pending")
	}
	// Nothing expires it later.
	if b := f.applyAt(f.now + int64(time.Hour)); len(b.Changes) != 0 {
		t.Errorf("after void: got %d changes at expiry time, want 0", len(b.Changes))
	}

	// A void after partial posts keeps what was posted.
	id = f.ok(holdReq("alice", "bob", 300, 0)).Transfer.ID
	f.ok(postAmount(id, 100, false))
	b = f.mustOK(false, void(id))
	wantStatus(t, b.Results[0][0].Transfer, ledger.TransferVoided, 300, 100)
	wantChange(t, b, 0, ledger.ChangeVoid, 200)
	f.wantBal("alice", 100, 1000, 0, 0)
	f.wantBal("bob", 0, 100, 0, 0)
}

func TestFrozenHold(t *testing.T) {
	for _, who := range []string{"alice", "bob"} {
		t.Run("frozen "+who, func(t *testing.T) {
			f := newFixture(t)
			h1 := f.ok(holdReq("alice", "bob", 100, 0)).Transfer.ID
			h2 := f.ok(holdReq("alice", "bob", 100, 0)).Transfer.ID
			h3 := f.ok(holdReq("alice", "bob", 100, 5)).Transfer
			f.ok(freeze(who))
			f.wantCode(postAll(h1), ledger.CodeAccountFrozen)
			f.wantCode(postAmount(h1, 1, false), ledger.CodeAccountFrozen)
			f.wantCode(increase(h1, 1), ledger.CodeAccountFrozen)
			b := f.mustOK(false, void(h1))
			wantStatus(t, b.Results[0][0].Transfer, ledger.TransferVoided, 100, 0)
			f.wantBal("alice", 0, 1000, 200, 0)
			// Expiry releases a frozen account's hold too.
			b = f.applyAt(h3.ExpiresAt)
			if len(b.Changes) != 1 || b.Changes[0].Op != ledger.ChangeExpire {
				t.Errorf("expiry of a frozen account's hold: got %+v, want one expire", b.Changes)
			}
			f.wantBal("alice", 0, 1000, 100, 0)
			f.now = h3.ExpiresAt
			f.ok(unfreeze(who))
			f.ok(postAll(h2))
			f.wantBal("alice", 100, 1000, 0, 0)
		})
	}
}

// Batches.

func TestAtomicBatchFailure(t *testing.T) {
	f := newFixture(t)
	f.ok(withID(holdReq("alice", "bob", 100, 60), "old-hold"))
	before := snapshot(f.st)
	b := f.apply(true,
		xfer("alice", "bob", 500),
		openAcct("dave", "USD", false),
		xfer("bob", "dave", 500),
		withID(holdReq("treasury", "dave", 5, 30), "new-hold"),
		postAmount("old-hold", 40, false),
		void("old-hold"),
		createAsset("XAU", 3),
		freeze("carol"),
		xfer("alice", "bob", 461), // alice has 460 left: 500 sent, 40 posted, 60 released
		xfer("alice", "bob", 1),
	)
	res := b.Results[0]
	for i, r := range res {
		want := ledger.CodeOK
		if i == 8 {
			want = ledger.CodeInsufficientFunds
		}
		if r.Code != want {
			t.Errorf("result %d: got %q, want %q", i, r.Code, want)
		}
		if i != 8 && (r.Transfer != nil || r.Account != nil || r.Asset != nil || r.Existing) {
			t.Errorf("result %d: got an object %+v, want none: nothing was applied", i, r)
		}
	}
	if len(b.Changes) != 0 {
		t.Errorf("changes: got %d, want 0", len(b.Changes))
	}
	if after := snapshot(f.st); !reflect.DeepEqual(before, after) {
		t.Errorf("the failed batch changed the state:\n got %+v\nwant %+v", after, before)
	}
	if _, ok := f.st.Transfer("new-hold"); ok {
		t.Errorf("Transfer(new-hold): got found, want the rolled-back hold gone")
	}
	if _, ok := f.st.Asset("XAU"); ok {
		t.Errorf("Asset(XAU): got found, want rolled back")
	}
	for _, a := range b.Touched {
		if got := f.acct(a.ID); !reflect.DeepEqual(got, *a) {
			t.Errorf("touched %s: got %+v, want the account as it is %+v", a.ID, *a, got)
		}
	}
	// The rolled-back hold leaves no expiry behind, and its id is free.
	if got := f.st.NextExpiry(); got != f.transfer("old-hold").ExpiresAt {
		t.Errorf("NextExpiry: got %d, want old-hold's", got)
	}
	f.applyAt(f.now + int64(time.Minute))
	f.mustOK(false, openAcct("dave", "USD", false), withID(holdReq("treasury", "dave", 5, 0), "new-hold"))
	if got := f.transfer("new-hold"); got.ExpiresAt != 0 || got.Status != ledger.TransferPending {
		t.Errorf("new-hold: got %s expires %d, want pending, never expires", got.Status, got.ExpiresAt)
	}
	f.applyAt(f.now + int64(time.Hour))
	if got := f.transfer("new-hold").Status; got != ledger.TransferPending {
		t.Errorf("new-hold after an hour: got %s, want pending", got)
	}
}

func TestAtomicBatchSuccess(t *testing.T) {
	f := newFixture(t)
	b := f.apply(true, xfer("treasury", "bob", 100), xfer("bob", "alice", 100), holdReq("alice", "bob", 1100, 0))
	for i, r := range b.Results[0] {
		if r.Code != ledger.CodeOK || r.Transfer == nil {
			t.Errorf("result %d: got %q %v, want OK with the transfer", i, r.Code, r.Transfer)
		}
	}
	if len(b.Changes) != 3 {
		t.Fatalf("changes: got %d, want 3", len(b.Changes))
	}
	for i, c := range b.Changes {
		if c.Transfer != b.Results[0][i].Transfer {
			t.Errorf("change %d: got %s, want the transfer of result %d", i, c.Transfer.ID, i)
		}
	}
	f.wantBal("bob", 100, 100, 0, 1100)
	f.wantBal("alice", 0, 1100, 1100, 0)
}

func TestBatchSpendsEarlierCredit(t *testing.T) {
	for _, atomic := range []bool{true, false} {
		f := newFixture(t)
		b := f.apply(atomic, xfer("treasury", "bob", 70), xfer("bob", "alice", 70), xfer("alice", "bob", 1070))
		for i, r := range b.Results[0] {
			if r.Code != ledger.CodeOK {
				t.Errorf("atomic %v: result %d: got %q, want OK", atomic, i, r.Code)
			}
		}
		f.wantBal("bob", 70, 1140, 0, 0)
		f.wantBal("alice", 1070, 1070, 0, 0)
	}
}

func TestNonAtomicBatch(t *testing.T) {
	f := newFixture(t)
	b := f.apply(false,
		xfer("alice", "bob", 600),
		xfer("alice", "bob", 600), // alice has 400 left
		xfer("alice", "nobody", 1),
		xfer("alice", "bob", 400),
		void("nope"),
		xfer("alice", "bob", 1),
	)
	want := []ledger.Code{ledger.CodeOK, ledger.CodeInsufficientFunds, ledger.CodeAccountNotFound,
		ledger.CodeOK, ledger.CodeTransferNotFound, ledger.CodeInsufficientFunds}
	for i, r := range b.Results[0] {
		if r.Code != want[i] {
			t.Errorf("result %d: got %q, want %q", i, r.Code, want[i])
		}
		if (r.Code == ledger.CodeOK) != (r.Transfer != nil) {
			t.Errorf("result %d: got transfer %v with code %q", i, r.Transfer, r.Code)
		}
	}
	if len(b.Changes) != 2 {
		t.Errorf("changes: got %d, want 2", len(b.Changes))
	}
	f.wantBal("alice", 1000, 1000, 0, 0)
	f.wantBal("bob", 0, 1000, 0, 0)

	// Several commands in one Apply: an atomic failure does not undo the others.
	f2 := newFixture(t)
	b = f2.applyAt(f2.now+1,
		ledger.Command{Requests: []ledger.Request{xfer("alice", "bob", 10)}},
		ledger.Command{Atomic: true, Requests: []ledger.Request{xfer("alice", "bob", 20), xfer("bob", "alice", 1000)}},
		ledger.Command{Atomic: true, Requests: []ledger.Request{xfer("alice", "bob", 30)}},
	)
	if b.Results[0][0].Code != ledger.CodeOK || b.Results[1][1].Code != ledger.CodeInsufficientFunds || b.Results[2][0].Code != ledger.CodeOK {
		t.Errorf("codes: got %q %q %q, want OK insufficient_funds OK", b.Results[0][0].Code, b.Results[1][1].Code, b.Results[2][0].Code)
	}
	if len(b.Changes) != 2 {
		t.Errorf("changes: got %d, want 2", len(b.Changes))
	}
	f2.wantBal("alice", 40, 1000, 0, 0)
}

// Time.

func TestTimestampsIncrease(t *testing.T) {
	f := newFixture(t)
	last := f.st.LastTime()
	check := func(b ledger.Batch, now int64) {
		t.Helper()
		if b.Time <= last && len(b.Changes) > 0 {
			t.Errorf("batch time: got %d, want after %d", b.Time, last)
		}
		if now > last && b.Time != now {
			t.Errorf("batch time: got %d, want now %d", b.Time, now)
		}
		for _, c := range b.Changes {
			if c.Time <= last {
				t.Errorf("change time: got %d, want after %d", c.Time, last)
			}
			if c.Time < b.Time {
				t.Errorf("change time: got %d, want at or after the batch time %d", c.Time, b.Time)
			}
			last = c.Time
		}
		if got := f.st.LastTime(); len(b.Changes) > 0 && got != last {
			t.Errorf("LastTime: got %d, want %d", got, last)
		}
	}
	reqs := []ledger.Request{xfer("treasury", "bob", 1), holdReq("treasury", "bob", 1, 1), openAcct("", "USD", false)}
	for _, now := range []int64{f.now + 1, f.now + 1, f.now, f.now - int64(time.Hour), 0, -5, f.now + int64(time.Second), f.now + int64(time.Second) + 1} {
		b := f.applyAt(now, ledger.Command{Requests: reqs})
		check(b, now)
		for _, r := range b.Results[0] {
			var at int64
			if r.Transfer != nil {
				at = r.Transfer.CreatedAt
			} else {
				at = r.Account.CreatedAt
			}
			if at < b.Time {
				t.Errorf("created_at: got %d, want at or after %d", at, b.Time)
			}
		}
	}
}

func TestApplyDeterministic(t *testing.T) {
	run := func() []ledger.Batch {
		st := ledger.NewState()
		var out []ledger.Batch
		now := t0
		step := func(reqs ...ledger.Request) {
			now += int64(time.Second)
			out = append(out, st.Apply(now, []ledger.Command{{Requests: reqs}}))
		}
		step(openAcct("t", "USD", true), openAcct("a", "USD", false), openAcct("b", "USD", false),
			openAcct("c", "USD", false), openAcct("d", "USD", false), openAcct("", "EUR", false))
		step(xfer("t", "a", 100), xfer("t", "b", 100), xfer("t", "c", 100), xfer("t", "d", 100))
		step(holdReq("a", "b", 10, 2), holdReq("c", "d", 10, 2), holdReq("b", "a", 10, 2), holdReq("d", "c", 10, 3),
			holdReq("a", "c", 1, 0))
		step(xfer("a", "d", 1))
		step()
		step(xfer("b", "c", 1), xfer("c", "a", 1), xfer("d", "b", 1))
		return out
	}
	want := run()
	for range 20 {
		if got := run(); !reflect.DeepEqual(got, want) {
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("batch %d differs between two runs:\n got %s\nwant %s", i, describe(got[i]), describe(want[i]))
				}
			}
		}
	}
}

// describe prints a Batch with its pointers followed.
func describe(b ledger.Batch) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "time %d\n", b.Time)
	for _, c := range b.Changes {
		fmt.Fprintf(&sb, "  change %s at %d amount %s", c.Op, c.Time, c.Amount)
		if c.Transfer != nil {
			fmt.Fprintf(&sb, " transfer %+v", *c.Transfer)
		}
		if c.Account != nil {
			fmt.Fprintf(&sb, " account %+v", *c.Account)
		}
		sb.WriteString("\n")
	}
	for i, rs := range b.Results {
		for j, r := range rs {
			fmt.Fprintf(&sb, "  result %d.%d: code %q existing %v\n", i, j, r.Code, r.Existing)
		}
	}
	sb.WriteString("  touched:")
	for _, a := range b.Touched {
		sb.WriteString(" " + a.ID)
	}
	return sb.String()
}

// Rejections.

// TestRejectionChangesNothing runs one rejected request per code and checks that the state a
// client can see is the same before and after (wantCode compares snapshots).
func TestRejectionChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.mustOK(false, openAcct("mint", "USD", true), openAcct("full", "USD", false))
	f.ok(xferAmount("mint", "full", ledger.AmountMax))
	f.ok(withID(holdReq("alice", "bob", 100, 60), "h"))
	f.ok(withID(xfer("alice", "bob", 1), "p"))
	f.ok(withID(holdReq("alice", "bob", 10, 1), "e"))
	f.applyAt(f.now + 2*int64(time.Second))
	f.now += 2 * int64(time.Second)
	f.ok(freeze("carol"))
	expectedCodes := []struct {
		r    ledger.Request
		want ledger.Code
	}{
		{xfer("alice", "bob", 0), ledger.CodeInvalidRequest},
		{createAsset("USD", 2), ledger.CodeAssetExists},
		{openAcct("x", "NOPE", false), ledger.CodeAssetUnknown},
		{openAcct("alice", "USD", false), ledger.CodeAccountExists},
		{xfer("alice", "nobody", 1), ledger.CodeAccountNotFound},
		{xfer("eur-treasury", "carol", 1), ledger.CodeAccountFrozen},
		{xfer("alice", "bob", 10_000), ledger.CodeInsufficientFunds},
		{xfer("alice", "carol", 1), ledger.CodeAssetMismatch},
		{xfer("alice", "alice", 1), ledger.CodeSameAccount},
		{xfer("treasury", "full", 1), ledger.CodeAmountOverflow},
		{withID(xfer("alice", "bob", 2), "p"), ledger.CodeTransferExists},
		{postAll("nope"), ledger.CodeTransferNotFound},
		{void("p"), ledger.CodeTransferNotPending},
		{postAll("e"), ledger.CodeHoldExpired},
		{postAmount("h", 101, true), ledger.CodeAmountExceedsHold},
		{freeze("nobody"), ledger.CodeAccountNotFound},
	}
	for _, tt := range expectedCodes {
		f.wantCode(tt.r, tt.want)
	}
}

// TestEveryApplyCode pins down which codes Apply can return: one scenario each. A new Code
// must be added either here or to edgeOnly.
func TestEveryApplyCode(t *testing.T) {
	edgeOnly := []ledger.Code{
		ledger.CodeRequestTooLarge, ledger.CodeUnauthenticated, ledger.CodeForbidden, ledger.CodeNotFound,
		ledger.CodeMethodNotAllowed, ledger.CodeUnsupportedMediaType, ledger.CodeOverloaded,
		ledger.CodeRateLimited, ledger.CodeNotLeader, ledger.CodeUnavailable, ledger.CodeInternal, ledger.CodeIdempotencyKeyReused,
		ledger.CodeIdempotencyInFlight, ledger.CodeBatchFailed, ledger.CodeBatchTooLarge,
		ledger.CodeWebhookNotFound, ledger.CodeWebhookURLForbidden, // internal/webhook's
	}
	scenarios := map[ledger.Code]func(f *fixture) ledger.Request{
		ledger.CodeInvalidRequest: func(f *fixture) ledger.Request { return xfer("alice", "bob", 0) },
		ledger.CodeAssetExists:    func(f *fixture) ledger.Request { return createAsset("EUR", 2) },
		ledger.CodeAssetUnknown:   func(f *fixture) ledger.Request { return openAcct("x", "XAU", false) },
		ledger.CodeAccountExists:  func(f *fixture) ledger.Request { return openAcct("bob", "USD", false) },
		ledger.CodeAccountNotFound: func(f *fixture) ledger.Request {
			return xfer("nobody", "bob", 1)
		},
		ledger.CodeAccountFrozen: func(f *fixture) ledger.Request {
			f.ok(freeze("bob"))
			return xfer("alice", "bob", 1)
		},
		ledger.CodeAccountClosed: func(f *fixture) ledger.Request {
			f.st.Restore(nil, []*ledger.Account{{ID: "shut", Asset: "USD", Kind: ledger.KindUser,
				Status: ledger.StatusClosed, Metadata: map[string]string{}}}, nil, 0)
			return xfer("alice", "shut", 1)
		},
		ledger.CodeInsufficientFunds: func(f *fixture) ledger.Request { return xfer("alice", "bob", 1001) },
		ledger.CodeAssetMismatch:     func(f *fixture) ledger.Request { return xfer("alice", "carol", 1) },
		ledger.CodeSameAccount:       func(f *fixture) ledger.Request { return xfer("bob", "bob", 1) },
		ledger.CodeAmountOverflow: func(f *fixture) ledger.Request {
			return xferAmount("treasury", "alice", ledger.AmountMax)
		},
		ledger.CodeTransferExists: func(f *fixture) ledger.Request {
			f.ok(withID(xfer("alice", "bob", 1), "t"))
			return withID(xfer("alice", "bob", 2), "t")
		},
		ledger.CodeTransferNotFound: func(f *fixture) ledger.Request { return void("t") },
		ledger.CodeTransferNotPending: func(f *fixture) ledger.Request {
			f.ok(withID(holdReq("alice", "bob", 1, 0), "t"))
			f.ok(void("t"))
			return void("t")
		},
		ledger.CodeHoldExpired: func(f *fixture) ledger.Request {
			f.ok(withID(holdReq("alice", "bob", 1, 1), "t"))
			f.now += int64(time.Second)
			f.applyAt(f.now) // expires it
			return postAll("t")
		},
		ledger.CodeAmountExceedsHold: func(f *fixture) ledger.Request {
			f.ok(withID(holdReq("alice", "bob", 1, 0), "t"))
			return postAmount("t", 2, true)
		},
	}
	for code, setup := range scenarios {
		t.Run(string(code), func(t *testing.T) {
			f := newFixture(t)
			f.wantCode(setup(f), code)
		})
	}
	covered := slices.Concat(edgeOnly, slices.Collect(maps.Keys(scenarios)))
	for _, c := range ledger.Codes {
		if !slices.Contains(covered, c) {
			t.Errorf("code %q: no scenario, want one here or in edgeOnly", c)
		}
	}
	if len(covered) != len(ledger.Codes) {
		t.Errorf("codes covered: got %d, want %d (ledger.Codes)", len(covered), len(ledger.Codes))
	}
}

func TestRememberForget(t *testing.T) {
	f := newFixture(t)
	f.ok(withID(xfer("alice", "bob", 5), "paid"))
	f.ok(withID(holdReq("alice", "bob", 5, 0), "voided"))
	f.ok(void("voided"))
	f.ok(withID(holdReq("alice", "bob", 5, 1), "expired"))
	f.ok(withID(holdReq("alice", "bob", 5, 0), "pending"))
	f.applyAt(f.now + 2*int64(time.Second))
	f.now += 2 * int64(time.Second)
	final := map[string]*ledger.Transfer{}
	for _, id := range []string{"paid", "voided", "expired"} {
		final[id] = f.transfer(id)
	}
	if got := f.st.RecentCount(); got != 4 { // and the fixture's first transfer
		t.Errorf("RecentCount: got %d, want 4", got)
	}

	f.st.ForgetRecent()
	if got := f.st.RecentCount(); got != 0 {
		t.Errorf("RecentCount after ForgetRecent: got %d, want 0", got)
	}
	for id := range final {
		if _, ok := f.st.Transfer(id); ok {
			t.Errorf("Transfer(%s) after ForgetRecent: got found, want the store to answer", id)
		}
	}
	if _, ok := f.st.Transfer("pending"); !ok {
		t.Errorf("Transfer(pending) after ForgetRecent: got not found, want holds kept")
	}
	f.wantCode(void("paid"), ledger.CodeTransferNotFound)

	for _, tr := range final {
		f.st.Remember(tr)
	}
	f.st.Remember(final["paid"]) // twice is fine
	if got := f.st.RecentCount(); got != 3 {
		t.Errorf("RecentCount after Remember: got %d, want 3", got)
	}
	f.wantCode(void("paid"), ledger.CodeTransferNotPending)
	f.wantCode(postAll("voided"), ledger.CodeTransferNotPending)
	f.wantCode(increase("expired", 1), ledger.CodeHoldExpired)
	before := snapshot(f.st)
	b := f.apply(false, withID(xfer("alice", "bob", 5), "paid"))
	if res := b.Results[0][0]; !res.Existing || res.Transfer != final["paid"] || len(b.Changes) != 0 {
		t.Errorf("repeat of a remembered transfer: got %q existing %v, want the remembered one", res.Code, res.Existing)
	}
	if !reflect.DeepEqual(before, snapshot(f.st)) {
		t.Errorf("repeat of a remembered transfer changed the state")
	}
	f.wantCode(withID(xfer("alice", "bob", 6), "paid"), ledger.CodeTransferExists)
	if err := f.st.CheckInvariants(); err != nil {
		t.Errorf("CheckInvariants: %v", err)
	}

	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("Remember(pending transfer): got no panic, want an invariant panic")
			}
		}()
		f.st.Remember(f.transfer("pending"))
	}()
}

// TestInvalidUTF8 checks text that is not UTF-8 is refused: the journal hashes text as JSON,
// where every invalid byte would read as U+FFFD and two different values could hash alike.
func TestInvalidUTF8(t *testing.T) {
	st := ledger.NewState()
	bad := "caf\xe9"
	cases := []ledger.Request{
		{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "a", Asset: "USD", Owner: bad}},
		{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "b", Asset: "USD", Metadata: map[string]string{"k": bad}}},
		{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "c", Asset: "USD", Metadata: map[string]string{bad: "v"}}},
		{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "d", Asset: "USD", Owner: "user:\x00x"}},
		{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "e", Asset: "USD", Metadata: map[string]string{"k": "a\x00"}}},
	}
	for i, r := range cases {
		b := st.Apply(int64(1000+i), []ledger.Command{{Requests: []ledger.Request{r}}})
		if got := b.Results[0][0].Code; got != ledger.CodeInvalidRequest || len(b.Changes) != 0 {
			t.Errorf("case %d: got %s with %d changes, want invalid_request and none", i, got, len(b.Changes))
		}
	}
	b := st.Apply(2000, []ledger.Command{{Requests: []ledger.Request{
		{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "x", Asset: "USD", AllowNegative: true}},
		{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "y", Asset: "USD"}},
	}}})
	if b.Results[0][1].Code != ledger.CodeOK {
		t.Fatal(b.Results[0][1].Code)
	}
	b = st.Apply(3000, []ledger.Command{{Requests: []ledger.Request{{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
		Source: "x", Destination: "y", Amount: ledger.AmountFromUint64(1), Reference: bad}}}}})
	if got := b.Results[0][0].Code; got != ledger.CodeInvalidRequest || len(b.Changes) != 0 {
		t.Errorf("transfer with a non-UTF-8 reference: got %s, want invalid_request", got)
	}
}
