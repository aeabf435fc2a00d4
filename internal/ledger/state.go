package ledger

import (
	"container/heap"
	"maps"
	"slices"
	"strconv"
)

// State is the in-memory ledger one writer owns: assets, accounts with their balances, and
// the pending holds. Finished transfers are history and live in the store; the engine loads
// any it needs (Remember) before Apply. State is not safe for concurrent use.
type State struct {
	assets   map[string]Asset
	accounts map[string]*Account
	holds    map[string]*Transfer // pending transfers
	expiries expiryHeap           // pending transfers with an expiry; stale entries skipped
	recent   map[string]*Transfer // finished transfers known to exist (a bounded cache)
	last     int64                // the latest time assigned to a change

	// Per-batch scratch.
	batchTime int64
	changes   []Change
	undo      []undoStep
	touched   map[string]*Account
	// touchedOrder lists touched in first-touch order: Batch.Touched is built from it, not by
	// ranging over the map, which is random in order and costs the map's high-water size.
	touchedOrder []*Account
}

// NewState returns a State holding only the preloaded assets.
func NewState() *State {
	s := &State{
		assets:   make(map[string]Asset),
		accounts: make(map[string]*Account),
		holds:    make(map[string]*Transfer),
		recent:   make(map[string]*Transfer),
		touched:  make(map[string]*Account),
	}
	for _, a := range PreloadedAssets {
		s.assets[a.Code] = a
	}
	return s
}

// Restore loads durable state into s: used by stores when they open. Accounts and holds are
// taken as they are (s keeps the pointers); last is the latest change time committed.
func (s *State) Restore(assets []Asset, accounts []*Account, holds []*Transfer, last int64) {
	for _, a := range assets {
		s.assets[a.Code] = a
	}
	for _, a := range accounts {
		s.accounts[a.ID] = a
	}
	for _, t := range holds {
		assert(t.Status == TransferPending, "restored holds are pending")
		s.holds[t.ID] = t
		if t.ExpiresAt != 0 {
			heap.Push(&s.expiries, expiry{at: t.ExpiresAt, id: t.ID})
		}
	}
	if last > s.last {
		s.last = last
	}
}

// LastTime is the time of the latest change applied.
func (s *State) LastTime() int64 { return s.last }

// Asset returns the asset with that code.
func (s *State) Asset(code string) (Asset, bool) {
	a, ok := s.assets[code]
	return a, ok
}

// Assets returns every asset, sorted by code.
func (s *State) Assets() []Asset {
	out := slices.Collect(maps.Values(s.assets))
	slices.SortFunc(out, func(a, b Asset) int {
		if a.Code < b.Code {
			return -1
		}
		if a.Code > b.Code {
			return 1
		}
		return 0
	})
	return out
}

// Account returns a copy of the account with that id.
func (s *State) Account(id string) (Account, bool) {
	a, ok := s.accounts[id]
	if !ok {
		return Account{}, false
	}
	return *a, true
}

// AccountCount is the number of accounts.
func (s *State) AccountCount() int { return len(s.accounts) }

// EachAccount calls f with every account; f must not keep or change it.
func (s *State) EachAccount(f func(*Account)) {
	for _, a := range s.accounts {
		f(a)
	}
}

// Holds returns the pending transfers.
func (s *State) Holds() []*Transfer { return slices.Collect(maps.Values(s.holds)) }

// HoldCount returns how many holds are pending.
func (s *State) HoldCount() int { return len(s.holds) }

// Transfer returns a transfer s knows: pending, or finished and remembered.
func (s *State) Transfer(id string) (*Transfer, bool) {
	if t, ok := s.holds[id]; ok {
		return t, true
	}
	t, ok := s.recent[id]
	return t, ok
}

// Remember tells s of a finished transfer loaded from the store, so that Apply can answer
// for its id. The engine calls it for every id a batch names that s does not know.
func (s *State) Remember(t *Transfer) {
	assert(t.Final(), "remembered transfers are final")
	if _, ok := s.holds[t.ID]; !ok {
		s.recent[t.ID] = t
	}
}

// RecentCount is the number of finished transfers s remembers.
func (s *State) RecentCount() int { return len(s.recent) }

// ForgetRecent drops the finished transfers s remembers. Call it only when every change
// applied so far is durable, so the store can answer for them.
func (s *State) ForgetRecent() { clear(s.recent) }

// NextExpiry returns the earliest expires_at among pending holds, or 0 if none.
func (s *State) NextExpiry() int64 {
	for len(s.expiries) > 0 {
		e := s.expiries[0]
		if t, ok := s.holds[e.id]; ok && t.ExpiresAt == e.at {
			return e.at
		}
		heap.Pop(&s.expiries) // stale: the hold finished or its creation was rolled back
	}
	return 0
}

// Batch is the outcome of one Apply.
type Batch struct {
	Time    int64      // the batch's engine time; every change is at or after it
	Changes []Change   // what to commit, in order; empty if nothing changed
	Results [][]Result // one slice per Command, one Result per Request
	Touched []*Account // copies of the accounts whose balances or status changed
}

// Apply applies cmds in order at engine time now, after expiring every hold due by then.
// It is deterministic: the same State, now and cmds give the same Batch. Rejected requests
// change nothing; a failed atomic Command changes nothing at all.
func (s *State) Apply(now int64, cmds []Command) Batch {
	if now <= s.last {
		now = s.last + 1
	}
	s.batchTime = now
	s.changes = s.changes[:0]
	clear(s.touched)
	s.touchedOrder = s.touchedOrder[:0]
	s.expireDue()
	s.undo = s.undo[:0] // expiry is not part of any command: never rolled back
	results := make([][]Result, len(cmds))
	for i := range cmds {
		results[i] = s.applyCommand(&cmds[i])
	}
	b := Batch{Time: now, Results: results}
	if len(s.changes) > 0 {
		b.Changes = slices.Clone(s.changes)
	}
	b.Touched = make([]*Account, 0, len(s.touched))
	for _, a := range s.touchedOrder {
		if s.touched[a.ID] != a {
			continue // created, then rolled back
		}
		s.checkAccount(a)
		c := *a
		b.Touched = append(b.Touched, &c)
	}
	return b
}

func (s *State) applyCommand(c *Command) []Result {
	res := make([]Result, len(c.Requests))
	if !c.Atomic {
		for i := range c.Requests {
			mark := len(s.undo)
			res[i] = s.apply(&c.Requests[i])
			if res[i].Code != CodeOK {
				s.rollback(mark)
			}
			s.undo = s.undo[:0]
		}
		return res
	}
	changesMark := len(s.changes)
	failed := false
	for i := range c.Requests {
		res[i] = s.apply(&c.Requests[i])
		if res[i].Code != CodeOK {
			failed = true
			break
		}
	}
	if failed {
		s.rollback(0)
		s.changes = s.changes[:changesMark]
		for i := range res {
			if res[i].Code == CodeOK {
				res[i] = Result{} // applied, then undone: not an error of its own
			}
		}
	}
	s.undo = s.undo[:0]
	return res
}

func (s *State) apply(r *Request) Result {
	switch r.Op {
	case OpTransfer:
		return s.createTransfer(&r.Transfer)
	case OpPost:
		return s.post(r)
	case OpIncrease:
		return s.increase(r)
	case OpVoid:
		return s.release(r.TransferID, TransferVoided)
	case OpCreateAccount:
		return s.createAccount(&r.Account)
	case OpFreeze:
		return s.setStatus(r.AccountID, StatusFrozen)
	case OpUnfreeze:
		return s.setStatus(r.AccountID, StatusActive)
	case OpCreateAsset:
		return s.createAsset(r.Asset)
	}
	return reject(CodeInvalidRequest, "unknown operation")
}

func reject(c Code, detail string) Result {
	if detail == "" {
		detail = c.detail()
	}
	return Result{Code: c, Detail: detail}
}

// tick returns the time for the next change: strictly after every earlier one.
func (s *State) tick() int64 {
	s.last++
	if s.last < s.batchTime {
		s.last = s.batchTime
	}
	return s.last
}

func (s *State) validateTransfer(r *TransferRequest) Result {
	switch {
	case r.ID != "" && !ValidID(r.ID):
		return reject(CodeInvalidRequest, "id must be 1-64 characters of A-Za-z0-9_.:-")
	case r.ID != "" && IsServerTransferID(r.ID):
		return reject(CodeInvalidRequest, "ids of the form tr_ followed by 13 base-32 digits are reserved for the server")
	case !ValidID(r.Source) || !ValidID(r.Destination):
		return reject(CodeInvalidRequest, "source and destination must be account ids")
	case r.Amount.IsZero():
		return reject(CodeInvalidRequest, "amount must be greater than zero")
	case r.Kind != "" && !validTransferKind(r.Kind):
		return reject(CodeInvalidRequest, "unknown transfer kind")
	case len(r.Reference) > ReferenceLenMax:
		return reject(CodeInvalidRequest, "reference is longer than 256 bytes")
	case !ValidText(r.Reference):
		return reject(CodeInvalidRequest, "reference must be valid UTF-8 without NUL characters")
	case r.HoldTimeout > HoldTimeoutMax:
		return reject(CodeInvalidRequest, "hold timeout_seconds is above ten years")
	}
	if why := CheckMetadata(r.Metadata); why != "" {
		return reject(CodeInvalidRequest, why)
	}
	return Result{}
}

func (s *State) createTransfer(r *TransferRequest) Result {
	if res := s.validateTransfer(r); res.Code != CodeOK {
		return res
	}
	if r.ID != "" {
		if t, ok := s.Transfer(r.ID); ok {
			if r.sameFields(t) {
				return Result{Existing: true, Transfer: t}
			}
			return reject(CodeTransferExists, "")
		}
	}
	if r.Source == r.Destination {
		return reject(CodeSameAccount, "")
	}
	src, dst := s.accounts[r.Source], s.accounts[r.Destination]
	if src == nil || dst == nil {
		return reject(CodeAccountNotFound, "")
	}
	if src.Asset != dst.Asset || r.Asset != "" && r.Asset != src.Asset {
		return reject(CodeAssetMismatch, "")
	}
	if c := usable(src, dst); c != CodeOK {
		return reject(c, "")
	}
	if !src.AllowNegative && !covers(src, r.Amount) {
		return reject(CodeInsufficientFunds, "")
	}
	if src.AllowNegative && !aboveFloor(src, r.Amount) {
		return reject(CodeAmountOverflow, "")
	}
	srcNew, dstNew := *src, *dst
	var ok1, ok2 bool
	if r.Hold {
		srcNew.DebitsPending, ok1 = src.DebitsPending.Add(r.Amount)
		dstNew.CreditsPending, ok2 = dst.CreditsPending.Add(r.Amount)
	} else {
		srcNew.DebitsPosted, ok1 = src.DebitsPosted.Add(r.Amount)
		dstNew.CreditsPosted, ok2 = dst.CreditsPosted.Add(r.Amount)
	}
	if !ok1 || !ok2 {
		return reject(CodeAmountOverflow, "")
	}
	now := s.tick()
	t := &Transfer{
		ID: r.ID, Source: r.Source, Destination: r.Destination, Amount: r.Amount,
		Asset: src.Asset, Kind: r.Kind, Status: TransferPosted, Reference: r.Reference,
		Metadata: r.Metadata, CreatedAt: now, Hold: r.Hold, HoldTimeout: r.HoldTimeout,
	}
	if t.ID == "" {
		t.ID = timeID("tr_", now)
	}
	if t.Kind == "" {
		t.Kind = TransferP2P
	}
	if t.Metadata == nil {
		t.Metadata = map[string]string{}
	}
	if r.Hold {
		t.Status = TransferPending
		if r.HoldTimeout > 0 {
			t.ExpiresAt = now + int64(r.HoldTimeout)*1e9
		}
	} else {
		t.PostedAt = now
		t.AmountPosted = r.Amount
	}
	s.setAccount(src, srcNew)
	s.setAccount(dst, dstNew)
	s.putTransfer(t)
	s.changes = append(s.changes, Change{Op: ChangeCreate, Time: now, Transfer: t, Amount: r.Amount,
		SourceAfter: src.Posted(), DestinationAfter: dst.Posted()})
	return Result{Transfer: t}
}

// covers reports whether src's available balance is at least amount.
func covers(src *Account, amount Amount) bool {
	need, ok := src.DebitsPosted.Add(src.DebitsPending)
	if ok {
		need, ok = need.Add(amount)
	}
	return ok && src.CreditsPosted.Cmp(need) >= 0
}

// aboveFloor reports whether src's available balance stays at or above −(2^128−1), the
// floor of an allow_negative account (api.md), once amount more is debited or held.
func aboveFloor(src *Account, amount Amount) bool {
	_, ok := src.Available().Sub(amount)
	return ok
}

func usable(accts ...*Account) Code {
	for _, a := range accts {
		switch a.Status {
		case StatusFrozen:
			return CodeAccountFrozen
		case StatusClosed:
			return CodeAccountClosed
		}
	}
	return CodeOK
}

// pending finds a pending transfer for post, increase or void.
func (s *State) pending(id string) (*Transfer, Result) {
	if t, ok := s.holds[id]; ok {
		if t.ExpiresAt != 0 && s.batchTime >= t.ExpiresAt {
			return nil, reject(CodeHoldExpired, "")
		}
		return t, Result{}
	}
	if t, ok := s.recent[id]; ok {
		if t.Status == TransferExpired {
			return nil, reject(CodeHoldExpired, "")
		}
		return nil, reject(CodeTransferNotPending, "the transfer is "+string(t.Status))
	}
	return nil, reject(CodeTransferNotFound, "")
}

func (s *State) post(r *Request) Result {
	t, res := s.pending(r.TransferID)
	if t == nil {
		return res
	}
	held := t.Held()
	amount := held
	if r.AmountSet {
		amount = r.Amount
	} else if r.NotFinal {
		return reject(CodeInvalidRequest, "a post with final false needs an amount")
	}
	if amount.IsZero() {
		return reject(CodeInvalidRequest, "amount must be greater than zero")
	}
	if amount.Cmp(held) > 0 {
		return reject(CodeAmountExceedsHold, "")
	}
	src, dst := s.accounts[t.Source], s.accounts[t.Destination]
	assert(src != nil && dst != nil, "hold accounts exist")
	if c := usable(src, dst); c != CodeOK {
		return reject(c, "")
	}
	release := amount // what leaves pending: all that is held when the post is final
	if !r.NotFinal {
		release = held
	}
	srcNew, dstNew := *src, *dst
	var ok1, ok2, ok3, ok4 bool
	srcNew.DebitsPosted, ok1 = src.DebitsPosted.Add(amount)
	dstNew.CreditsPosted, ok2 = dst.CreditsPosted.Add(amount)
	srcNew.DebitsPending, ok3 = src.DebitsPending.Sub(release)
	dstNew.CreditsPending, ok4 = dst.CreditsPending.Sub(release)
	assert(ok3 && ok4, "pending totals cover the hold")
	if !ok1 || !ok2 {
		return reject(CodeAmountOverflow, "")
	}
	now := s.tick()
	nt := *t
	nt.AmountPosted, _ = t.AmountPosted.Add(amount) // ≤ t.Amount, cannot overflow
	nt.PostedAt = now
	if !r.NotFinal {
		nt.Status = TransferPosted
	}
	s.setAccount(src, srcNew)
	s.setAccount(dst, dstNew)
	s.putTransfer(&nt)
	s.changes = append(s.changes, Change{Op: ChangePost, Time: now, Transfer: &nt, Amount: amount,
		SourceAfter: src.Posted(), DestinationAfter: dst.Posted()})
	return Result{Transfer: &nt}
}

func (s *State) increase(r *Request) Result {
	t, res := s.pending(r.TransferID)
	if t == nil {
		return res
	}
	if r.Amount.IsZero() {
		return reject(CodeInvalidRequest, "amount must be greater than zero")
	}
	src, dst := s.accounts[t.Source], s.accounts[t.Destination]
	if c := usable(src, dst); c != CodeOK {
		return reject(c, "")
	}
	if !src.AllowNegative && !covers(src, r.Amount) {
		return reject(CodeInsufficientFunds, "")
	}
	if src.AllowNegative && !aboveFloor(src, r.Amount) {
		return reject(CodeAmountOverflow, "")
	}
	srcNew, dstNew := *src, *dst
	var ok1, ok2, ok3 bool
	srcNew.DebitsPending, ok1 = src.DebitsPending.Add(r.Amount)
	dstNew.CreditsPending, ok2 = dst.CreditsPending.Add(r.Amount)
	nt := *t
	nt.Amount, ok3 = t.Amount.Add(r.Amount)
	if !ok1 || !ok2 || !ok3 {
		return reject(CodeAmountOverflow, "")
	}
	now := s.tick()
	s.setAccount(src, srcNew)
	s.setAccount(dst, dstNew)
	s.putTransfer(&nt)
	s.changes = append(s.changes, Change{Op: ChangeIncrease, Time: now, Transfer: &nt, Amount: r.Amount,
		SourceAfter: src.Posted(), DestinationAfter: dst.Posted()})
	return Result{Transfer: &nt}
}

// release ends a hold as voided or expired, releasing what it still holds.
func (s *State) release(id string, status TransferStatus) Result {
	var t *Transfer
	if status == TransferExpired {
		t = s.holds[id]
	} else {
		var res Result
		if t, res = s.pending(id); t == nil {
			return res
		}
	}
	held := t.Held()
	src, dst := s.accounts[t.Source], s.accounts[t.Destination]
	srcNew, dstNew := *src, *dst
	var ok1, ok2 bool
	srcNew.DebitsPending, ok1 = src.DebitsPending.Sub(held)
	dstNew.CreditsPending, ok2 = dst.CreditsPending.Sub(held)
	assert(ok1 && ok2, "pending totals cover the hold")
	now := s.tick()
	nt := *t
	nt.Status = status
	op := ChangeVoid
	if status == TransferExpired {
		op = ChangeExpire
	}
	s.setAccount(src, srcNew)
	s.setAccount(dst, dstNew)
	s.putTransfer(&nt)
	s.changes = append(s.changes, Change{Op: op, Time: now, Transfer: &nt, Amount: held,
		SourceAfter: src.Posted(), DestinationAfter: dst.Posted()})
	return Result{Transfer: &nt}
}

// expireDue expires every hold whose expires_at is at or before the batch time.
func (s *State) expireDue() {
	for {
		at := s.NextExpiry()
		if at == 0 || at > s.batchTime {
			return
		}
		e := heap.Pop(&s.expiries).(expiry)
		s.release(e.id, TransferExpired)
	}
}

func (s *State) createAccount(r *AccountRequest) Result {
	kind := r.Kind
	if kind == "" {
		kind = KindUser
	}
	switch {
	case r.ID != "" && !ValidID(r.ID):
		return reject(CodeInvalidRequest, "id must be 1-64 characters of A-Za-z0-9_.:-")
	case !validAccountKind(kind):
		return reject(CodeInvalidRequest, "unknown account kind")
	case len(r.Owner) > OwnerLenMax:
		return reject(CodeInvalidRequest, "owner is longer than 256 bytes")
	case !ValidText(r.Owner):
		return reject(CodeInvalidRequest, "owner must be valid UTF-8 without NUL characters")
	}
	if why := CheckMetadata(r.Metadata); why != "" {
		return reject(CodeInvalidRequest, why)
	}
	if _, ok := s.assets[r.Asset]; !ok {
		return reject(CodeAssetUnknown, "")
	}
	if r.ID != "" {
		if _, ok := s.accounts[r.ID]; ok {
			return reject(CodeAccountExists, "")
		}
	}
	now := s.tick()
	id := r.ID
	if id == "" {
		id = timeID("acc_", now)
		for n := 2; s.accounts[id] != nil; n++ { // a client may have picked this id
			id = timeID("acc_", now) + "_" + strconv.Itoa(n)
		}
	}
	md := r.Metadata
	if md == nil {
		md = map[string]string{}
	}
	a := &Account{ID: id, Owner: r.Owner, Asset: r.Asset, Kind: kind,
		AllowNegative: r.AllowNegative, Status: StatusActive, Metadata: md, CreatedAt: now}
	s.accounts[id] = a
	s.undo = append(s.undo, undoStep{account: a, created: true})
	s.touch(a)
	c := *a
	s.changes = append(s.changes, Change{Op: ChangeAccountCreate, Time: now, Account: &c})
	return Result{Account: &c}
}

func (s *State) setStatus(id string, status AccountStatus) Result {
	a := s.accounts[id]
	if a == nil {
		return reject(CodeAccountNotFound, "")
	}
	if a.Status == StatusClosed {
		return reject(CodeAccountClosed, "")
	}
	if a.Status == status { // already there: nothing to change or journal
		c := *a
		return Result{Account: &c}
	}
	n := *a
	n.Status = status
	s.setAccount(a, n)
	now := s.tick()
	op := ChangeAccountFreeze
	if status == StatusActive {
		op = ChangeAccountUnfreeze
	}
	c := *a
	s.changes = append(s.changes, Change{Op: op, Time: now, Account: &c})
	return Result{Account: &c}
}

func (s *State) createAsset(a Asset) Result {
	if !ValidAssetCode(a.Code) || a.Scale > AssetScaleMax {
		return reject(CodeInvalidRequest, "asset code must be 2-16 characters of A-Z0-9 and scale 0-18")
	}
	if _, ok := s.assets[a.Code]; ok {
		return reject(CodeAssetExists, "")
	}
	s.assets[a.Code] = a
	s.undo = append(s.undo, undoStep{asset: a.Code})
	now := s.tick()
	c := a
	s.changes = append(s.changes, Change{Op: ChangeAssetCreate, Time: now, Asset: &c})
	return Result{Asset: &c}
}

// setAccount replaces *a with n, remembering the old value for rollback.
func (s *State) setAccount(a *Account, n Account) {
	s.undo = append(s.undo, undoStep{account: a, old: *a})
	*a = n
	s.touch(a)
}

// touch records that a changed in this batch.
func (s *State) touch(a *Account) {
	if s.touched[a.ID] != a {
		s.touched[a.ID] = a
		s.touchedOrder = append(s.touchedOrder, a)
	}
}

// putTransfer makes t the current version of its transfer.
func (s *State) putTransfer(t *Transfer) {
	step := undoStep{transfer: t.ID}
	if old, ok := s.holds[t.ID]; ok {
		step.oldTransfer, step.wasHold = old, true
	} else if old, ok := s.recent[t.ID]; ok {
		step.oldTransfer = old
	}
	s.undo = append(s.undo, step)
	if t.Status == TransferPending {
		if step.oldTransfer == nil && t.ExpiresAt != 0 {
			heap.Push(&s.expiries, expiry{at: t.ExpiresAt, id: t.ID})
		}
		s.holds[t.ID] = t
		return
	}
	delete(s.holds, t.ID)
	s.recent[t.ID] = t
}

type undoStep struct {
	account     *Account
	old         Account
	created     bool // account was created: delete it
	asset       string
	transfer    string
	oldTransfer *Transfer
	wasHold     bool
}

// rollback undoes the steps after mark, newest first.
func (s *State) rollback(mark int) {
	for i := len(s.undo) - 1; i >= mark; i-- {
		u := &s.undo[i]
		switch {
		case u.asset != "":
			delete(s.assets, u.asset)
		case u.transfer != "":
			delete(s.holds, u.transfer)
			delete(s.recent, u.transfer)
			if u.oldTransfer != nil {
				if u.wasHold {
					s.holds[u.transfer] = u.oldTransfer
				} else {
					s.recent[u.transfer] = u.oldTransfer
				}
			}
		case u.created:
			delete(s.accounts, u.account.ID)
			delete(s.touched, u.account.ID)
		default:
			*u.account = u.old
		}
	}
	s.undo = s.undo[:mark]
}

// checkAccount asserts the per-account invariants: cheap, run on every touched account.
func (s *State) checkAccount(a *Account) {
	if !a.AllowNegative {
		assert(covers(a, Amount{}), "available balance of "+a.ID+" is not negative")
	}
}

type expiry struct {
	at int64
	id string
}

type expiryHeap []expiry

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].id < h[j].id
}
func (h expiryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)   { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
