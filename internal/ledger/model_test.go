package ledger_test

import (
	"flag"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

var (
	modelSeed = flag.Int64("seed", 0, "TestModel: random seed; 0 picks one from the clock (it is logged)")
	modelOps  = flag.Int("ops", 4000, "TestModel: number of random requests to apply")
)

// TestModel applies random batches of requests to a State and to a slow reference model
// written from api.md (big.Int balances, no ledger internals), and compares every result,
// change, balance and hold after each batch. Replay a failure with
//
//	go test ./internal/ledger -run TestModel -seed=N
func TestModel(t *testing.T) {
	seed := *modelSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (replay: go test ./internal/ledger -run TestModel -seed=%d)", seed, seed)
	h := newHarness(t, seed)
	h.setup()
	for h.ops < *modelOps && !t.Failed() {
		h.step()
	}
	if t.Failed() {
		t.Fatalf("seed %d: failed in batch %d (replay: go test ./internal/ledger -run TestModel -seed=%d)", seed, h.batches, seed)
	}
	codes := slices.Sorted(maps.Keys(h.codes))
	var sb strings.Builder
	for _, c := range codes {
		name := string(c)
		if c == ledger.CodeOK {
			name = "ok"
		}
		fmt.Fprintf(&sb, " %s=%d", name, h.codes[c])
	}
	t.Logf("%d requests in %d batches, %d accounts, %d transfers, %d expired, %d existing, %d rolled back; codes:%s",
		h.ops, h.batches, len(h.m.accounts), len(h.m.transfers), h.expired, h.existing, h.rolledBack, sb.String())
}

// The reference model. Its values are never changed in place: an edit replaces the map entry
// with a new struct and every sum is a new big.Int, so maps.Clone is a snapshot (atomic
// commands run on a clone and keep it only if every request succeeds).

type mAccount struct {
	id, asset            string
	allowNeg, frozen     bool
	dp, cp, dpend, cpend *big.Int
}

type mTransfer struct {
	id, src, dst, asset, kind, ref string
	md                             map[string]string
	hold                           bool
	timeout                        uint32
	amount, posted                 *big.Int
	status                         ledger.TransferStatus
	createdAt, expiresAt           int64
}

type model struct {
	assets    map[string]bool
	accounts  map[string]*mAccount
	transfers map[string]*mTransfer
}

func (m *model) clone() *model {
	return &model{assets: maps.Clone(m.assets), accounts: maps.Clone(m.accounts), transfers: maps.Clone(m.transfers)}
}

func (m *model) editAccount(id string) *mAccount {
	c := *m.accounts[id]
	m.accounts[id] = &c
	return &c
}

func (m *model) editTransfer(id string) *mTransfer {
	c := *m.transfers[id]
	m.transfers[id] = &c
	return &c
}

func add(a, b *big.Int) *big.Int { return new(big.Int).Add(a, b) }
func sub(a, b *big.Int) *big.Int { return new(big.Int).Sub(a, b) }

var (
	bigZero   = big.NewInt(0)
	bigNegMax = new(big.Int).Neg(bigMax)
	idRE      = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	serverRE  = regexp.MustCompile(`^tr_[0-9a-hjkmnp-tv-z]{13}$`) // Crockford base 32, lower case
	assetRE   = regexp.MustCompile(`^[A-Z0-9]{2,16}$`)
	kinds     = []string{"p2p", "p2m", "b2c", "topup", "withdrawal", "fee", "fx", "adjustment"}
	acctKinds = []string{"user", "merchant", "system", "fee", "fx", "settlement"}
)

func (a *mAccount) posted() *big.Int    { return sub(a.cp, a.dp) }
func (a *mAccount) available() *big.Int { return sub(a.posted(), a.dpend) }
func over(x *big.Int) bool              { return x.Cmp(bigMax) > 0 }

func badMetadata(md map[string]string) bool {
	if len(md) > 32 {
		return true
	}
	for k, v := range md {
		if len(k) == 0 || len(k) > 64 || len(v) > 512 {
			return true
		}
	}
	return false
}

// outcome is what the model expects of one request.
type outcome struct {
	code       ledger.Code
	existing   bool
	rolledBack bool       // in an atomic command that failed elsewhere: no object
	transfer   *mTransfer // the transfer as the request leaves it
	account    *mAccount
	asset      string
	changes    []expChange
}

type expChange struct {
	op                 ledger.ChangeOp
	id                 string // transfer id, account id or asset code
	transfer           *mTransfer
	amount             *big.Int
	srcAfter, dstAfter *big.Int
}

func fail(c ledger.Code) outcome { return outcome{code: c} }

// transferChange records a transfer change with both accounts' posted balances after it.
func (m *model) transferChange(op ledger.ChangeOp, t *mTransfer, amount *big.Int) expChange {
	return expChange{op: op, id: t.id, transfer: t, amount: amount,
		srcAfter: m.accounts[t.src].posted(), dstAfter: m.accounts[t.dst].posted()}
}

// createTransfer follows api.md POST /v1/transfers. id and createdAt are the server's choice,
// taken from the real result.
func (m *model) createTransfer(r *ledger.TransferRequest, bt int64, id string, createdAt int64) outcome {
	amount := bigOf(r.Amount)
	switch {
	case r.ID != "" && (!idRE.MatchString(r.ID) || serverRE.MatchString(r.ID)),
		!idRE.MatchString(r.Source), !idRE.MatchString(r.Destination),
		amount.Sign() == 0,
		r.Kind != "" && !slices.Contains(kinds, string(r.Kind)),
		len(r.Reference) > 256,
		r.HoldTimeout > 10*365*24*3600,
		badMetadata(r.Metadata):
		return fail(ledger.CodeInvalidRequest)
	}
	kind := string(r.Kind)
	if kind == "" {
		kind = "p2p"
	}
	if old := m.transfers[r.ID]; r.ID != "" && old != nil {
		same := old.src == r.Source && old.dst == r.Destination && (r.Asset == "" || r.Asset == old.asset) &&
			old.kind == kind && old.ref == r.Reference && len(old.md) == len(r.Metadata) &&
			maps.Equal(old.md, r.Metadata) && old.hold == r.Hold && old.timeout == r.HoldTimeout &&
			old.amount.Cmp(amount) == 0
		if !same {
			return fail(ledger.CodeTransferExists)
		}
		return outcome{existing: true, transfer: old}
	}
	if r.Source == r.Destination {
		return fail(ledger.CodeSameAccount)
	}
	src, dst := m.accounts[r.Source], m.accounts[r.Destination]
	switch {
	case src == nil || dst == nil:
		return fail(ledger.CodeAccountNotFound)
	case src.asset != dst.asset || r.Asset != "" && r.Asset != src.asset:
		return fail(ledger.CodeAssetMismatch)
	case src.frozen || dst.frozen:
		return fail(ledger.CodeAccountFrozen)
	}
	left := sub(src.available(), amount)
	if !src.allowNeg && left.Sign() < 0 {
		return fail(ledger.CodeInsufficientFunds)
	}
	if left.Cmp(bigNegMax) < 0 {
		return fail(ledger.CodeAmountOverflow)
	}
	if r.Hold && (over(add(src.dpend, amount)) || over(add(dst.cpend, amount))) ||
		!r.Hold && (over(add(src.dp, amount)) || over(add(dst.cp, amount))) {
		return fail(ledger.CodeAmountOverflow)
	}
	if r.ID != "" {
		id = r.ID
	}
	t := &mTransfer{id: id, src: r.Source, dst: r.Destination, asset: src.asset, kind: kind, ref: r.Reference,
		md: r.Metadata, hold: r.Hold, timeout: r.HoldTimeout, amount: amount, posted: bigZero,
		status: ledger.TransferPosted, createdAt: createdAt}
	s, d := m.editAccount(r.Source), m.editAccount(r.Destination)
	if r.Hold {
		t.status = ledger.TransferPending
		if r.HoldTimeout > 0 {
			t.expiresAt = createdAt + int64(r.HoldTimeout)*int64(time.Second)
		}
		s.dpend, d.cpend = add(s.dpend, amount), add(d.cpend, amount)
	} else {
		t.posted = amount
		s.dp, d.cp = add(s.dp, amount), add(d.cp, amount)
	}
	m.transfers[id] = t
	return outcome{transfer: t, changes: []expChange{m.transferChange(ledger.ChangeCreate, t, amount)}}
}

// pendingTransfer finds the hold a post, increase or void names.
func (m *model) pendingTransfer(id string, bt int64) (*mTransfer, ledger.Code) {
	t := m.transfers[id]
	switch {
	case t == nil:
		return nil, ledger.CodeTransferNotFound
	case t.status == ledger.TransferExpired:
		return nil, ledger.CodeHoldExpired
	case t.status != ledger.TransferPending:
		return nil, ledger.CodeTransferNotPending
	case t.expiresAt != 0 && bt >= t.expiresAt:
		return nil, ledger.CodeHoldExpired
	}
	return t, ledger.CodeOK
}

func (m *model) post(r *ledger.Request, bt int64) outcome {
	t, c := m.pendingTransfer(r.TransferID, bt)
	if c != ledger.CodeOK {
		return fail(c)
	}
	held := sub(t.amount, t.posted)
	amount := held
	if r.AmountSet {
		amount = bigOf(r.Amount)
	} else if r.NotFinal {
		return fail(ledger.CodeInvalidRequest)
	}
	src, dst := m.accounts[t.src], m.accounts[t.dst]
	switch {
	case amount.Sign() == 0:
		return fail(ledger.CodeInvalidRequest)
	case amount.Cmp(held) > 0:
		return fail(ledger.CodeAmountExceedsHold)
	case src.frozen || dst.frozen:
		return fail(ledger.CodeAccountFrozen)
	case over(add(src.dp, amount)) || over(add(dst.cp, amount)):
		return fail(ledger.CodeAmountOverflow)
	}
	release := held
	if r.NotFinal {
		release = amount
	}
	s, d := m.editAccount(t.src), m.editAccount(t.dst)
	s.dp, d.cp = add(s.dp, amount), add(d.cp, amount)
	s.dpend, d.cpend = sub(s.dpend, release), sub(d.cpend, release)
	nt := m.editTransfer(t.id)
	nt.posted = add(nt.posted, amount)
	if !r.NotFinal {
		nt.status = ledger.TransferPosted
	}
	return outcome{transfer: nt, changes: []expChange{m.transferChange(ledger.ChangePost, nt, amount)}}
}

func (m *model) increase(r *ledger.Request, bt int64) outcome {
	t, c := m.pendingTransfer(r.TransferID, bt)
	if c != ledger.CodeOK {
		return fail(c)
	}
	amount := bigOf(r.Amount)
	src, dst := m.accounts[t.src], m.accounts[t.dst]
	if amount.Sign() == 0 {
		return fail(ledger.CodeInvalidRequest)
	}
	if src.frozen || dst.frozen {
		return fail(ledger.CodeAccountFrozen)
	}
	left := sub(src.available(), amount)
	if !src.allowNeg && left.Sign() < 0 {
		return fail(ledger.CodeInsufficientFunds)
	}
	if left.Cmp(bigNegMax) < 0 || over(add(src.dpend, amount)) || over(add(dst.cpend, amount)) ||
		over(add(t.amount, amount)) {
		return fail(ledger.CodeAmountOverflow)
	}
	s, d := m.editAccount(t.src), m.editAccount(t.dst)
	s.dpend, d.cpend = add(s.dpend, amount), add(d.cpend, amount)
	nt := m.editTransfer(t.id)
	nt.amount = add(nt.amount, amount)
	return outcome{transfer: nt, changes: []expChange{m.transferChange(ledger.ChangeIncrease, nt, amount)}}
}

// end voids or expires a hold, releasing what it still holds.
func (m *model) end(t *mTransfer, status ledger.TransferStatus) expChange {
	held := sub(t.amount, t.posted)
	s, d := m.editAccount(t.src), m.editAccount(t.dst)
	s.dpend, d.cpend = sub(s.dpend, held), sub(d.cpend, held)
	nt := m.editTransfer(t.id)
	nt.status = status
	op := ledger.ChangeVoid
	if status == ledger.TransferExpired {
		op = ledger.ChangeExpire
	}
	return m.transferChange(op, nt, held)
}

func (m *model) void(r *ledger.Request, bt int64) outcome {
	t, c := m.pendingTransfer(r.TransferID, bt)
	if c != ledger.CodeOK {
		return fail(c)
	}
	ch := m.end(t, ledger.TransferVoided)
	return outcome{transfer: ch.transfer, changes: []expChange{ch}}
}

// expire ends every hold due at batch time bt, earliest expires_at first, ties by id.
func (m *model) expire(bt int64) []expChange {
	var due []*mTransfer
	for _, t := range m.transfers {
		if t.status == ledger.TransferPending && t.expiresAt != 0 && t.expiresAt <= bt {
			due = append(due, t)
		}
	}
	slices.SortFunc(due, func(a, b *mTransfer) int {
		if a.expiresAt != b.expiresAt {
			return int(min(max(a.expiresAt-b.expiresAt, -1), 1))
		}
		return strings.Compare(a.id, b.id)
	})
	var out []expChange
	for _, t := range due {
		out = append(out, m.end(t, ledger.TransferExpired))
	}
	return out
}

func (m *model) createAccount(r *ledger.AccountRequest, id string) outcome {
	kind := string(r.Kind)
	if kind == "" {
		kind = "user"
	}
	switch {
	case r.ID != "" && !idRE.MatchString(r.ID), !slices.Contains(acctKinds, kind), len(r.Owner) > 256,
		badMetadata(r.Metadata):
		return fail(ledger.CodeInvalidRequest)
	case !m.assets[r.Asset]:
		return fail(ledger.CodeAssetUnknown)
	case r.ID != "" && m.accounts[r.ID] != nil:
		return fail(ledger.CodeAccountExists)
	}
	if r.ID != "" {
		id = r.ID
	}
	a := &mAccount{id: id, asset: r.Asset, allowNeg: r.AllowNegative, dp: bigZero, cp: bigZero, dpend: bigZero, cpend: bigZero}
	m.accounts[id] = a
	return outcome{account: a, changes: []expChange{{op: ledger.ChangeAccountCreate, id: id}}}
}

func (m *model) setFrozen(id string, frozen bool) outcome {
	a := m.accounts[id]
	if a == nil {
		return fail(ledger.CodeAccountNotFound)
	}
	if a.frozen == frozen {
		return outcome{account: a}
	}
	na := m.editAccount(id)
	na.frozen = frozen
	op := ledger.ChangeAccountUnfreeze
	if frozen {
		op = ledger.ChangeAccountFreeze
	}
	return outcome{account: na, changes: []expChange{{op: op, id: id}}}
}

func (m *model) createAsset(a ledger.Asset) outcome {
	switch {
	case !assetRE.MatchString(a.Code) || a.Scale > 18:
		return fail(ledger.CodeInvalidRequest)
	case m.assets[a.Code]:
		return fail(ledger.CodeAssetExists)
	}
	m.assets[a.Code] = true
	return outcome{asset: a.Code, changes: []expChange{{op: ledger.ChangeAssetCreate, id: a.Code}}}
}

// apply runs one request on the model. real is the State's result, used only for what the
// server chooses: ids it makes and creation times.
func (m *model) apply(r *ledger.Request, bt int64, real ledger.Result, placeholder string) outcome {
	switch r.Op {
	case ledger.OpTransfer:
		id, at := placeholder, bt
		if real.Transfer != nil {
			id, at = real.Transfer.ID, real.Transfer.CreatedAt
		}
		return m.createTransfer(&r.Transfer, bt, id, at)
	case ledger.OpPost:
		return m.post(r, bt)
	case ledger.OpIncrease:
		return m.increase(r, bt)
	case ledger.OpVoid:
		return m.void(r, bt)
	case ledger.OpCreateAccount:
		id := placeholder
		if real.Account != nil {
			id = real.Account.ID
		}
		return m.createAccount(&r.Account, id)
	case ledger.OpFreeze:
		return m.setFrozen(r.AccountID, true)
	case ledger.OpUnfreeze:
		return m.setFrozen(r.AccountID, false)
	case ledger.OpCreateAsset:
		return m.createAsset(r.Asset)
	}
	return fail(ledger.CodeInvalidRequest)
}

// The harness: generator, comparison and the stand-in for a store.

type harness struct {
	t                    *testing.T
	rng                  *rand.Rand
	st                   *ledger.State
	m                    *model
	now                  int64
	last                 int64 // the latest change time seen
	ops                  int
	batches              int
	expired              int
	existing, rolledBack int
	codes                map[ledger.Code]int

	store    map[string]*ledger.Transfer // the latest committed version of every transfer
	accounts []string                    // account ids in creation order, for the generator
	xfers    []string                    // transfer ids in creation order
	sent     []ledger.TransferRequest    // transfer requests with a client id, for repeats
	placeN   int
}

func newHarness(t *testing.T, seed int64) *harness {
	m := &model{assets: map[string]bool{}, accounts: map[string]*mAccount{}, transfers: map[string]*mTransfer{}}
	for _, code := range []string{"USD", "EUR", "GBP", "CNY", "HKD", "JPY", "BTC", "ETH", "USDT"} {
		m.assets[code] = true
	}
	return &harness{t: t, rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		st: ledger.NewState(), m: m, now: t0, codes: map[ledger.Code]int{}, store: map[string]*ledger.Transfer{}}
}

// setup opens funding accounts and users through the same path as every other batch.
func (h *harness) setup() {
	var reqs []ledger.Request
	for _, id := range []string{"tusd0", "tusd1", "teur0"} {
		reqs = append(reqs, openAcct(id, map[bool]string{true: "USD", false: "EUR"}[strings.Contains(id, "usd")], true))
	}
	for i := range 8 {
		reqs = append(reqs, openAcct(fmt.Sprintf("a%d", i), []string{"USD", "EUR"}[i%2], false))
	}
	h.run([]ledger.Command{{Requests: reqs}})
}

func (h *harness) step() {
	cmds := make([]ledger.Command, 1+h.rng.IntN(4))
	for i := range cmds {
		n := 1
		if h.rng.IntN(100) < 35 {
			n = 2 + h.rng.IntN(7)
		}
		var ids []string // client ids of holds made earlier in this command
		reqs := make([]ledger.Request, n)
		for j := range reqs {
			reqs[j] = h.genRequest(&ids)
		}
		cmds[i] = ledger.Command{Requests: reqs, Atomic: h.rng.IntN(2) == 0}
		h.ops += n
	}
	next := int64(0) // the model's earliest expiry, to land on it exactly now and then
	for _, id := range h.xfers {
		if t := h.m.transfers[id]; t.status == ledger.TransferPending && t.expiresAt != 0 && (next == 0 || t.expiresAt < next) {
			next = t.expiresAt
		}
	}
	switch r := h.rng.IntN(100); {
	case r < 8 && next > h.now:
		h.now = next - h.rng.Int64N(2) // at expires_at, or 1 ns before
	case r < 45:
		h.now += h.rng.Int64N(int64(time.Millisecond))
	case r < 85:
		h.now += h.rng.Int64N(int64(1500 * time.Millisecond))
	case r < 95:
		h.now += int64(time.Second) + h.rng.Int64N(int64(5*time.Second))
	default:
		h.now -= h.rng.Int64N(int64(10 * time.Second)) // the clock goes back
	}
	h.run(cmds)
	if h.rng.IntN(10) == 0 {
		h.st.ForgetRecent() // as the engine does once every change is durable
	}
}

// run applies cmds to the State and the model and compares everything.
func (h *harness) run(cmds []ledger.Command) {
	t := h.t
	h.batches++
	h.prefetch(cmds)
	lastBefore := h.st.LastTime()
	b := h.st.Apply(h.now, cmds)
	bt := max(h.now, lastBefore+1)
	if b.Time != bt {
		t.Errorf("batch %d time: got %d, want %d (now %d, last %d)", h.batches, b.Time, bt, h.now, lastBefore)
	}
	if len(b.Results) != len(cmds) {
		t.Fatalf("batch %d: got %d result lists, want %d", h.batches, len(b.Results), len(cmds))
	}

	want := h.m.expire(bt)
	h.expired += len(want)
	for i := range cmds {
		if len(b.Results[i]) != len(cmds[i].Requests) {
			t.Fatalf("batch %d command %d: got %d results, want %d", h.batches, i, len(b.Results[i]), len(cmds[i].Requests))
		}
		outs := h.runCommand(&cmds[i], bt, b.Results[i])
		for j, o := range outs {
			h.checkResult(fmt.Sprintf("batch %d command %d (atomic %v) request %d: %s", h.batches, i, cmds[i].Atomic, j,
				describeRequest(&cmds[i].Requests[j])), b.Results[i][j], o)
			h.codes[o.code]++
			if o.existing {
				h.existing++
			}
			if o.rolledBack {
				h.rolledBack++
			}
			want = append(want, o.changes...)
		}
	}
	h.checkChanges(b, want)
	h.checkState(b, want)
}

// prefetch does what the engine does before Apply: load every finished transfer the batch
// names that the State has forgotten.
func (h *harness) prefetch(cmds []ledger.Command) {
	for _, c := range cmds {
		for _, r := range c.Requests {
			id := r.TransferID
			if r.Op == ledger.OpTransfer {
				id = r.Transfer.ID
			}
			if id == "" {
				continue
			}
			if _, ok := h.st.Transfer(id); ok {
				continue
			}
			if tr, ok := h.store[id]; ok {
				if !tr.Final() {
					h.t.Fatalf("transfer %s is pending in the store but unknown to the State", id)
				}
				h.st.Remember(tr)
			}
		}
	}
}

func (h *harness) runCommand(c *ledger.Command, bt int64, real []ledger.Result) []outcome {
	outs := make([]outcome, len(c.Requests))
	if !c.Atomic {
		for i := range c.Requests {
			outs[i] = h.m.apply(&c.Requests[i], bt, real[i], h.placeholder())
		}
		return outs
	}
	m := h.m.clone()
	for i := range c.Requests {
		outs[i] = m.apply(&c.Requests[i], bt, real[i], h.placeholder())
		if outs[i].code != ledger.CodeOK {
			for j := range outs {
				if j != i {
					outs[j] = outcome{rolledBack: true}
				}
			}
			outs[i].changes = nil
			return outs
		}
	}
	*h.m = *m
	return outs
}

func (h *harness) placeholder() string {
	h.placeN++
	return fmt.Sprintf("?unknown-%d", h.placeN)
}

func (h *harness) checkResult(where string, got ledger.Result, want outcome) {
	t := h.t
	t.Helper()
	if got.Code != want.code {
		t.Errorf("%s: got code %q (%s), want %q", where, got.Code, got.Detail, want.code)
		return
	}
	if got.Existing != want.existing {
		t.Errorf("%s: got existing %v, want %v", where, got.Existing, want.existing)
	}
	if want.code != ledger.CodeOK || want.rolledBack {
		if got.Transfer != nil || got.Account != nil || got.Asset != nil {
			t.Errorf("%s: got a result object, want none", where)
		}
		return
	}
	switch {
	case want.transfer != nil:
		if got.Transfer == nil {
			t.Errorf("%s: got no transfer, want %s", where, want.transfer.id)
			return
		}
		h.compareTransfer(where, got.Transfer, want.transfer)
	case want.account != nil:
		if got.Account == nil || got.Account.ID != want.account.id {
			t.Errorf("%s: got account %+v, want %s", where, got.Account, want.account.id)
			return
		}
		h.compareAccount(where, got.Account, want.account)
	case want.asset != "":
		if got.Asset == nil || got.Asset.Code != want.asset {
			t.Errorf("%s: got asset %+v, want %s", where, got.Asset, want.asset)
		}
	}
}

func (h *harness) compareTransfer(where string, got *ledger.Transfer, want *mTransfer) {
	t := h.t
	t.Helper()
	if got.ID != want.id || got.Source != want.src || got.Destination != want.dst || got.Asset != want.asset ||
		string(got.Kind) != want.kind || got.Reference != want.ref || got.Hold != want.hold ||
		got.HoldTimeout != want.timeout || got.CreatedAt != want.createdAt {
		t.Errorf("%s: transfer got %+v, want %+v", where, *got, *want)
	}
	if got.Status != want.status || bigOf(got.Amount).Cmp(want.amount) != 0 || bigOf(got.AmountPosted).Cmp(want.posted) != 0 ||
		got.ExpiresAt != want.expiresAt {
		t.Errorf("%s: transfer %s got status %s amount %s posted %s expires_at %d, want %s %s %s %d", where, got.ID,
			got.Status, got.Amount, got.AmountPosted, got.ExpiresAt, want.status, want.amount, want.posted, want.expiresAt)
	}
}

func (h *harness) compareAccount(where string, got *ledger.Account, want *mAccount) {
	h.t.Helper()
	status := ledger.StatusActive
	if want.frozen {
		status = ledger.StatusFrozen
	}
	if got.ID != want.id || got.Asset != want.asset || got.AllowNegative != want.allowNeg || got.Status != status ||
		bigOf(got.DebitsPosted).Cmp(want.dp) != 0 || bigOf(got.CreditsPosted).Cmp(want.cp) != 0 ||
		bigOf(got.DebitsPending).Cmp(want.dpend) != 0 || bigOf(got.CreditsPending).Cmp(want.cpend) != 0 {
		h.t.Errorf("%s: account got %s %s neg=%v %s dp=%s cp=%s dpend=%s cpend=%s, want %s %s neg=%v %s dp=%s cp=%s dpend=%s cpend=%s",
			where, got.ID, got.Asset, got.AllowNegative, got.Status, got.DebitsPosted, got.CreditsPosted,
			got.DebitsPending, got.CreditsPending, want.id, want.asset, want.allowNeg, status, want.dp, want.cp,
			want.dpend, want.cpend)
	}
}

func bigOfBalance(b ledger.Balance) *big.Int {
	v := bigOf(b.Mag)
	if b.Neg {
		v.Neg(v)
	}
	return v
}

// checkChanges compares the batch's changes with the model's, in order, and records them in
// the store. Times strictly increase across batches; a transfer id is created once.
func (h *harness) checkChanges(b ledger.Batch, want []expChange) {
	t := h.t
	t.Helper()
	if len(b.Changes) != len(want) {
		var got, exp []string
		for _, c := range b.Changes {
			got = append(got, c.Op.String())
		}
		for _, c := range want {
			exp = append(exp, c.op.String()+" "+c.id)
		}
		t.Errorf("batch %d: got %d changes %v, want %d %v", h.batches, len(b.Changes), got, len(want), exp)
		return
	}
	for i, c := range b.Changes {
		w := want[i]
		where := fmt.Sprintf("batch %d change %d (%s %s)", h.batches, i, w.op, w.id)
		if c.Time <= h.last || c.Time < b.Time {
			t.Errorf("%s: got time %d, want after %d and at or after the batch time %d", where, c.Time, h.last, b.Time)
		}
		h.last = c.Time
		if c.Op != w.op {
			t.Errorf("%s: got op %s", where, c.Op)
			continue
		}
		switch {
		case w.transfer != nil:
			if c.Transfer == nil {
				t.Errorf("%s: got no transfer", where)
				continue
			}
			h.compareTransfer(where, c.Transfer, w.transfer)
			if bigOf(c.Amount).Cmp(w.amount) != 0 {
				t.Errorf("%s: got amount %s, want %s", where, c.Amount, w.amount)
			}
			if bigOfBalance(c.SourceAfter).Cmp(w.srcAfter) != 0 || bigOfBalance(c.DestinationAfter).Cmp(w.dstAfter) != 0 {
				t.Errorf("%s: got balances after %s %s, want %s %s", where, c.SourceAfter, c.DestinationAfter, w.srcAfter, w.dstAfter)
			}
			if c.Posts() != (c.Op == ledger.ChangePost || c.Op == ledger.ChangeCreate && !w.transfer.hold) {
				t.Errorf("%s: got Posts() %v", where, c.Posts())
			}
			switch c.Op {
			case ledger.ChangeCreate:
				if _, dup := h.store[c.Transfer.ID]; dup {
					t.Errorf("%s: transfer id %s created twice", where, c.Transfer.ID)
				}
				if c.Transfer.CreatedAt != c.Time {
					t.Errorf("%s: got created_at %d, want the change time %d", where, c.Transfer.CreatedAt, c.Time)
				}
				h.xfers = append(h.xfers, c.Transfer.ID)
			case ledger.ChangePost:
				if c.Transfer.PostedAt != c.Time {
					t.Errorf("%s: got posted_at %d, want the change time %d", where, c.Transfer.PostedAt, c.Time)
				}
			}
			h.store[c.Transfer.ID] = c.Transfer
		case c.Op == ledger.ChangeAssetCreate:
			if c.Asset == nil || c.Asset.Code != w.id {
				t.Errorf("%s: got asset %+v", where, c.Asset)
			}
		default:
			if c.Account == nil || c.Account.ID != w.id {
				t.Errorf("%s: got account %+v", where, c.Account)
				continue
			}
			if c.Op == ledger.ChangeAccountCreate {
				if c.Account.CreatedAt != c.Time {
					t.Errorf("%s: got created_at %d, want %d", where, c.Account.CreatedAt, c.Time)
				}
				h.accounts = append(h.accounts, w.id)
			}
		}
	}
}

// checkState compares every account and hold with the model and checks the invariants.
func (h *harness) checkState(b ledger.Batch, changes []expChange) {
	t := h.t
	t.Helper()
	where := fmt.Sprintf("after batch %d", h.batches)
	if err := h.st.CheckInvariants(); err != nil {
		t.Errorf("%s: CheckInvariants: %v", where, err)
	}
	if got, want := h.st.AccountCount(), len(h.m.accounts); got != want {
		t.Errorf("%s: got %d accounts, want %d", where, got, want)
	}
	for _, id := range slices.Sorted(maps.Keys(h.m.accounts)) {
		a, ok := h.st.Account(id)
		if !ok {
			t.Errorf("%s: account %s missing", where, id)
			continue
		}
		h.compareAccount(where, &a, h.m.accounts[id])
	}
	pending := 0
	for _, mt := range h.m.transfers {
		if mt.status == ledger.TransferPending {
			pending++
			tr, ok := h.st.Transfer(mt.id)
			if !ok {
				t.Errorf("%s: hold %s missing", where, mt.id)
				continue
			}
			h.compareTransfer(where, tr, mt)
		} else if tr, ok := h.store[mt.id]; !ok {
			t.Errorf("%s: transfer %s never committed", where, mt.id)
		} else if tr.Status != mt.status {
			t.Errorf("%s: transfer %s got status %s, want %s", where, mt.id, tr.Status, mt.status)
		}
	}
	if got := len(h.st.Holds()); got != pending {
		t.Errorf("%s: got %d holds, want %d", where, got, pending)
	}
	next := int64(0)
	for _, mt := range h.m.transfers {
		if mt.status == ledger.TransferPending && mt.expiresAt != 0 && (next == 0 || mt.expiresAt < next) {
			next = mt.expiresAt
		}
	}
	if got := h.st.NextExpiry(); got != next {
		t.Errorf("%s: NextExpiry got %d, want %d", where, got, next)
	}

	// The balance invariants, computed here from the accounts as a client sees them.
	sums := map[string]*big.Int{}
	pend := map[string]*big.Int{}
	h.st.EachAccount(func(a *ledger.Account) {
		if sums[a.Asset] == nil {
			sums[a.Asset], pend[a.Asset] = new(big.Int), new(big.Int)
		}
		sums[a.Asset].Add(sums[a.Asset], bigOfBalance(a.Posted()))
		pend[a.Asset].Add(pend[a.Asset], sub(bigOf(a.DebitsPending), bigOf(a.CreditsPending)))
		avail := bigOfBalance(a.Available())
		if !a.AllowNegative && avail.Sign() < 0 {
			t.Errorf("%s: account %s available %s, want at least 0", where, a.ID, avail)
		}
		if avail.Cmp(bigNegMax) < 0 {
			t.Errorf("%s: account %s available %s, below −(2^128−1)", where, a.ID, avail)
		}
	})
	for asset, s := range sums {
		if s.Sign() != 0 || pend[asset].Sign() != 0 {
			t.Errorf("%s: asset %s posted sum %s, pending debits − credits %s, want 0 and 0", where, asset, s, pend[asset])
		}
	}

	// Touched has every account the batch changed, as it is now.
	touched := map[string]bool{}
	for _, a := range b.Touched {
		touched[a.ID] = true
		if now, ok := h.st.Account(a.ID); !ok || !accountsEqual(&now, a) {
			t.Errorf("%s: touched %s got %+v, want the account as it is", where, a.ID, *a)
		}
	}
	for _, c := range changes {
		ids := []string{c.id}
		switch {
		case c.transfer != nil:
			ids = []string{c.transfer.src, c.transfer.dst}
		case c.op == ledger.ChangeAssetCreate:
			ids = nil
		}
		for _, id := range ids {
			if !touched[id] {
				t.Errorf("%s: account %s changed (%s) but is not in Touched", where, id, c.op)
			}
		}
	}
}

func accountsEqual(a, b *ledger.Account) bool {
	return a.ID == b.ID && a.Status == b.Status && a.DebitsPosted == b.DebitsPosted && a.CreditsPosted == b.CreditsPosted &&
		a.DebitsPending == b.DebitsPending && a.CreditsPending == b.CreditsPending
}

func describeRequest(r *ledger.Request) string {
	switch r.Op {
	case ledger.OpTransfer:
		tr := r.Transfer
		return fmt.Sprintf("transfer id=%q %s→%s %s asset=%q kind=%q hold=%v timeout=%d", tr.ID, tr.Source,
			tr.Destination, tr.Amount, tr.Asset, tr.Kind, tr.Hold, tr.HoldTimeout)
	case ledger.OpPost:
		return fmt.Sprintf("post %s amount=%s set=%v notfinal=%v", r.TransferID, r.Amount, r.AmountSet, r.NotFinal)
	case ledger.OpIncrease:
		return fmt.Sprintf("increase %s by %s", r.TransferID, r.Amount)
	case ledger.OpVoid:
		return "void " + r.TransferID
	case ledger.OpCreateAccount:
		return fmt.Sprintf("account id=%q asset=%s neg=%v", r.Account.ID, r.Account.Asset, r.Account.AllowNegative)
	case ledger.OpFreeze:
		return "freeze " + r.AccountID
	case ledger.OpUnfreeze:
		return "unfreeze " + r.AccountID
	case ledger.OpCreateAsset:
		return fmt.Sprintf("asset %s %d", r.Asset.Code, r.Asset.Scale)
	}
	return fmt.Sprintf("op %d", r.Op)
}

// The generator. It reads the model only through the harness's creation-ordered id lists, so
// a seed always makes the same requests.

func (h *harness) pct(p int) bool { return h.rng.IntN(100) < p }

func (h *harness) genAmount() *big.Int {
	switch r := h.rng.IntN(1000); {
	case r < 15:
		return big.NewInt(0)
	case r < 700:
		return big.NewInt(1 + h.rng.Int64N(500))
	case r < 960:
		return big.NewInt(1 + h.rng.Int64N(50_000))
	case r < 990: // up to 2^127: a few of these overflow any account
		v := new(big.Int).Lsh(big.NewInt(1+h.rng.Int64N(1<<62)), 65)
		return v.Add(v, new(big.Int).SetUint64(h.rng.Uint64()))
	default:
		return new(big.Int).Set(bigMax)
	}
}

// huge returns an amount between 2^125 and 2^128−1.
func (h *harness) huge() *big.Int {
	v := new(big.Int).Rsh(bigMax, uint(h.rng.IntN(4)))
	return v.Sub(v, big.NewInt(h.rng.Int64N(1000)))
}

// below returns a random amount in [1, n] (n > 0), or 0 when n is 0.
func (h *harness) below(n *big.Int) *big.Int {
	if n.Sign() == 0 {
		return big.NewInt(0)
	}
	if n.IsUint64() {
		return big.NewInt(0).SetUint64(1 + h.rng.Uint64N(n.Uint64()))
	}
	v := new(big.Int).Mul(n, big.NewInt(1+h.rng.Int64N(1000)))
	v.Quo(v, big.NewInt(1000))
	if v.Sign() == 0 {
		v.SetInt64(1)
	}
	return v
}

func (h *harness) pickAccount() string {
	switch {
	case len(h.accounts) == 0 || h.pct(3):
		return "ghost"
	case h.pct(1):
		return "bad id"
	}
	return h.accounts[h.rng.IntN(len(h.accounts))]
}

// pickPeer returns an account of the same asset as id, most of the time.
func (h *harness) pickPeer(id string, wantNeg bool) string {
	a := h.m.accounts[id]
	if a == nil || h.pct(8) {
		return h.pickAccount()
	}
	var same []string
	for _, other := range h.accounts {
		if o := h.m.accounts[other]; o.asset == a.asset && other != id && (!wantNeg || o.allowNeg) {
			same = append(same, other)
		}
	}
	if len(same) == 0 {
		return h.pickAccount()
	}
	return same[h.rng.IntN(len(same))]
}

func (h *harness) pickTransfer(cmdIDs []string) string {
	switch r := h.rng.IntN(100); {
	case r < 75:
		var pending []string
		for _, id := range h.xfers {
			if t := h.m.transfers[id]; t != nil && t.status == ledger.TransferPending {
				pending = append(pending, id)
			}
		}
		if len(pending) > 0 {
			return pending[h.rng.IntN(len(pending))]
		}
	case r < 85:
		if len(h.xfers) > 0 {
			return h.xfers[h.rng.IntN(len(h.xfers))]
		}
	case r < 95:
		if len(cmdIDs) > 0 {
			return cmdIDs[h.rng.IntN(len(cmdIDs))]
		}
	}
	return fmt.Sprintf("t%d", h.rng.IntN(400)) // a client id that may or may not exist
}

func (h *harness) genRequest(cmdIDs *[]string) ledger.Request {
	switch r := h.rng.IntN(100); {
	case r < 6:
		return h.genAccount()
	case r < 8:
		id := h.pickAccount()
		if h.pct(50) {
			for _, a := range h.accounts { // unfreeze the first frozen one, if any
				if h.m.accounts[a].frozen {
					id = a
					break
				}
			}
			return unfreeze(id)
		}
		return freeze(id)
	case r < 9:
		codes := []string{"XAU", "XAG", "PT", "USD", "bad", "TOOLONGASSETCODE1"}
		return createAsset(codes[h.rng.IntN(len(codes))], uint8(h.rng.IntN(20)))
	case r < 50:
		return h.genTransfer(cmdIDs)
	case r < 68:
		return h.genPost(cmdIDs)
	case r < 76:
		amount := h.genAmount()
		if h.pct(15) {
			amount = h.huge()
		}
		return ledger.Request{Op: ledger.OpIncrease, TransferID: h.pickTransfer(*cmdIDs), Amount: amountOf(h.t, amount)}
	case r < 84:
		return void(h.pickTransfer(*cmdIDs))
	case r < 87: // near the limits: huge amounts between allow_negative accounts
		src := h.pickNegative()
		req := xferAmount(src, h.pickPeer(src, true), amountOf(h.t, h.huge()))
		req.Transfer.Hold = h.pct(50)
		return req
	default: // funding: from an allow_negative account to another of its asset
		src := h.pickNegative()
		return xfer(src, h.pickPeer(src, false), uint64(100+h.rng.IntN(5000)))
	}
}

func (h *harness) pickNegative() string {
	var neg []string
	for _, id := range h.accounts {
		if h.m.accounts[id].allowNeg {
			neg = append(neg, id)
		}
	}
	if len(neg) == 0 {
		return h.pickAccount()
	}
	return neg[h.rng.IntN(len(neg))]
}

func (h *harness) genAccount() ledger.Request {
	id := fmt.Sprintf("a%d", h.rng.IntN(len(h.accounts)+20))
	switch r := h.rng.IntN(100); {
	case r < 15:
		id = ""
	case r < 17:
		id = "bad id"
	}
	assets := []string{"USD", "USD", "USD", "EUR", "EUR", "EUR", "XAU", "NOPE"}
	req := openAcct(id, assets[h.rng.IntN(len(assets))], h.pct(20))
	switch r := h.rng.IntN(100); {
	case r < 8:
		req.Account.Kind = ledger.AccountKind(acctKinds[h.rng.IntN(len(acctKinds))])
	case r < 9:
		req.Account.Kind = "bogus"
	case r < 10:
		req.Account.Metadata = map[string]string{"": "empty key"}
	case r < 13:
		req.Account.Metadata = map[string]string{"tier": "kyc2"}
	}
	return req
}

func (h *harness) genTransfer(cmdIDs *[]string) ledger.Request {
	if len(h.sent) > 0 && h.pct(8) { // a client retries, or reuses an id for something else
		tr := h.sent[h.rng.IntN(len(h.sent))]
		if h.pct(30) {
			tr.Amount = amountOf(h.t, h.genAmount())
		}
		return ledger.Request{Op: ledger.OpTransfer, Transfer: tr}
	}
	src := h.pickAccount()
	tr := ledger.TransferRequest{Source: src, Destination: h.pickPeer(src, false), Amount: amountOf(h.t, h.genAmount())}
	if h.pct(2) {
		tr.Destination = src
	}
	if h.pct(40) {
		tr.Hold = true
		if h.pct(70) {
			tr.HoldTimeout = uint32(1 + h.rng.IntN(5))
		}
	}
	switch r := h.rng.IntN(100); {
	case r < 35:
		tr.ID = fmt.Sprintf("t%d", h.rng.IntN(400))
	case r < 37:
		tr.ID = "tr_0123456789abc" // the server's form
	}
	switch r := h.rng.IntN(100); {
	case r < 8:
		if a := h.m.accounts[src]; a != nil {
			tr.Asset = a.asset
		}
	case r < 10:
		tr.Asset = "EUR"
	}
	switch r := h.rng.IntN(100); {
	case r < 15:
		tr.Kind = ledger.TransferKind(kinds[h.rng.IntN(len(kinds))])
	case r < 16:
		tr.Kind = "bogus"
	}
	switch r := h.rng.IntN(100); {
	case r < 10:
		tr.Reference = fmt.Sprintf("order-%d", h.rng.IntN(100))
	case r < 11:
		tr.Reference = strings.Repeat("r", 257)
	case r < 15:
		tr.Metadata = map[string]string{"k": fmt.Sprint(h.rng.IntN(3))}
	case r < 16:
		tr.Metadata = map[string]string{"v": strings.Repeat("x", 513)}
	}
	if tr.ID != "" {
		h.sent = append(h.sent, tr)
		if tr.Hold {
			*cmdIDs = append(*cmdIDs, tr.ID)
		}
	}
	return ledger.Request{Op: ledger.OpTransfer, Transfer: tr}
}

func (h *harness) genPost(cmdIDs *[]string) ledger.Request {
	id := h.pickTransfer(*cmdIDs)
	held := big.NewInt(1000)
	if t := h.m.transfers[id]; t != nil && t.status == ledger.TransferPending {
		held = sub(t.amount, t.posted)
	}
	switch r := h.rng.IntN(100); {
	case r < 30:
		return postAll(id)
	case r < 60:
		return ledger.Request{Op: ledger.OpPost, TransferID: id, Amount: amountOf(h.t, h.below(held)), AmountSet: true}
	case r < 90:
		return ledger.Request{Op: ledger.OpPost, TransferID: id, Amount: amountOf(h.t, h.below(held)), AmountSet: true, NotFinal: true}
	case r < 93:
		return ledger.Request{Op: ledger.OpPost, TransferID: id, NotFinal: true}
	default:
		more := add(held, big.NewInt(1+h.rng.Int64N(10)))
		if over(more) {
			more = bigMax
		}
		return ledger.Request{Op: ledger.OpPost, TransferID: id, Amount: amountOf(h.t, more), AmountSet: true, NotFinal: h.pct(50)}
	}
}
