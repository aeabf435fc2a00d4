package journal

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// CorruptionError reports a journal that does not check out: a record out of sequence, a
// broken link, a wrong hash, or a change that could not have followed the state before it.
type CorruptionError struct {
	Seq  uint64 // where in the chain it went wrong: the seq the record there should have
	What string // what is wrong, naming the change ("change 3 (post tr_x): ...") when it is one
	Want string // the value the chain implies, when the check compares two values
	Got  string // the value found
}

func (e *CorruptionError) Error() string {
	s := "journal: record " + strconv.FormatUint(e.Seq, 10) + " is corrupt: " + e.What
	if e.Want != "" || e.Got != "" {
		s += ": want " + e.Want + ", got " + e.Got
	}
	return s
}

// Verifier replays a journal from its first record: it checks the chain (seq, prev_hash,
// hash), that change times strictly increase, and that every change is legal against the
// state the earlier changes built, and it rebuilds that state: assets, accounts with their
// balances and statuses, and pending holds.
//
// Memory grows with the accounts and pending holds, not with history: a finished transfer
// is forgotten. So a transfer created with the id of one that already finished in an earlier
// record is not detected; a duplicate is detected when the first transfer is still pending
// or was created in the same record.
//
// The Verifier keeps references to the metadata maps of the records it is given: callers
// must not change a record after Add. A Verifier is not safe for concurrent use.
type Verifier struct {
	head       Head
	recordTime int64 // timestamp of the latest record
	changeTime int64 // time of the latest change
	err        error // sticky: once Add fails, the state is not trustworthy

	assets   map[string]ledger.Asset
	accounts map[string]*ledger.Account
	holds    map[string]*ledger.Transfer // pending transfers, as after their latest change
	created  map[string]struct{}         // ids of transfers created in the record being added

	hasher      *hasher
	hashChecked bool // AddHashed: the caller checked the record's hash

	records, changes, transfersCreated uint64

	// The change being checked, to name it in errors.
	index int
	cur   *ledger.Change
}

// NewVerifier returns a Verifier expecting record 1, with only the preloaded assets.
func NewVerifier() *Verifier {
	v := &Verifier{
		assets:   make(map[string]ledger.Asset),
		accounts: make(map[string]*ledger.Account),
		holds:    make(map[string]*ledger.Transfer),
		created:  make(map[string]struct{}),
		hasher:   newHasher(),
		index:    -1,
	}
	for _, a := range ledger.PreloadedAssets {
		v.assets[a.Code] = a
	}
	return v
}

// Add checks r as the next record of the chain and applies its changes. In order it checks
// that r.Seq is one more than the previous record's (1 for the first), that r.PrevHash is
// the previous record's hash (all zeros for the first), that r.Hash is RecordHash(r), that
// r.Timestamp is after the previous record's, and then each change in turn. The error is a
// *CorruptionError. After an error the Verifier's state is partly updated and Add returns
// the same error again.
func (v *Verifier) Add(r *Record) error {
	if v.err != nil {
		return v.err
	}
	v.err = v.add(r)
	return v.err
}

// AddHashed is Add for a record whose hash the caller has already checked (r.Hash equals
// RecordHash(r)), so that hashing can run on another core while the replay goes on. A
// caller that found a mismatch calls Add instead, which reports it.
func (v *Verifier) AddHashed(r *Record) error {
	if v.err != nil {
		return v.err
	}
	v.hashChecked = true
	v.err = v.add(r)
	v.hashChecked = false
	return v.err
}

func (v *Verifier) add(r *Record) error {
	v.index, v.cur = -1, nil
	seq := v.head.Seq + 1
	if r.Seq != seq {
		return v.fail("seq", strconv.FormatUint(seq, 10), strconv.FormatUint(r.Seq, 10))
	}
	if r.PrevHash != v.head.Hash {
		return v.fail("prev_hash", v.head.Hash.String(), r.PrevHash.String())
	}
	if !v.hashChecked {
		if h := v.hasher.hash(r); h != r.Hash {
			return v.fail("hash", h.String(), r.Hash.String())
		}
	}
	if v.records > 0 && r.Timestamp <= v.recordTime {
		return v.fail("timestamp is not after the previous record's",
			"after "+FormatTime(v.recordTime), FormatTime(r.Timestamp))
	}
	clear(v.created)
	for i := range r.Changes {
		v.index, v.cur = i, &r.Changes[i]
		if err := v.change(r.Timestamp, v.cur); err != nil {
			return err
		}
	}
	v.index, v.cur = -1, nil
	v.head = Head{Seq: seq, Hash: r.Hash}
	v.recordTime = r.Timestamp
	v.records++
	return nil
}

// fail returns a CorruptionError at the record being added, naming the change being checked.
func (v *Verifier) fail(what, want, got string) error {
	if v.cur != nil {
		id := ""
		switch {
		case v.cur.Transfer != nil:
			id = " " + v.cur.Transfer.ID
		case v.cur.Account != nil:
			id = " " + v.cur.Account.ID
		case v.cur.Asset != nil:
			id = " " + v.cur.Asset.Code
		}
		what = fmt.Sprintf("change %d (%s%s): %s", v.index, v.cur.Op, id, what)
	}
	return &CorruptionError{Seq: v.head.Seq + 1, What: what, Want: want, Got: got}
}

func (v *Verifier) change(recordTime int64, c *ledger.Change) error {
	if v.changes > 0 && c.Time <= v.changeTime {
		return v.fail("time is not after the previous change's",
			"after "+FormatTime(v.changeTime), FormatTime(c.Time))
	}
	if c.Time < recordTime {
		return v.fail("time is before the record's timestamp",
			"at or after "+FormatTime(recordTime), FormatTime(c.Time))
	}
	v.changeTime = c.Time
	v.changes++
	switch c.Op {
	case ledger.ChangeAssetCreate:
		return v.assetCreate(c)
	case ledger.ChangeAccountCreate:
		return v.accountCreate(c)
	case ledger.ChangeAccountFreeze:
		return v.accountStatus(c, ledger.StatusActive, ledger.StatusFrozen)
	case ledger.ChangeAccountUnfreeze:
		return v.accountStatus(c, ledger.StatusFrozen, ledger.StatusActive)
	case ledger.ChangeCreate:
		return v.create(c)
	case ledger.ChangePost, ledger.ChangeIncrease, ledger.ChangeVoid, ledger.ChangeExpire:
		return v.holdChange(recordTime, c)
	}
	return v.fail("unknown op", "", strconv.Itoa(int(c.Op)))
}

func (v *Verifier) assetCreate(c *ledger.Change) error {
	a := c.Asset
	switch {
	case a == nil:
		return v.fail("no asset", "", "")
	case !ledger.ValidAssetCode(a.Code) || a.Scale > ledger.AssetScaleMax:
		return v.fail("invalid asset", "", string(AppendAssetJSON(nil, a)))
	}
	if _, ok := v.assets[a.Code]; ok {
		return v.fail("asset created twice", "", a.Code)
	}
	v.assets[a.Code] = *a
	return nil
}

func (v *Verifier) accountCreate(c *ledger.Change) error {
	a := c.Account
	switch {
	case a == nil:
		return v.fail("no account", "", "")
	case !ledger.ValidID(a.ID):
		return v.fail("invalid account id", "", strconv.Quote(a.ID))
	case !slices.Contains(ledger.AccountKinds, a.Kind):
		return v.fail("invalid account kind", "", strconv.Quote(string(a.Kind)))
	}
	if _, ok := v.accounts[a.ID]; ok {
		return v.fail("account created twice", "", a.ID)
	}
	if _, ok := v.assets[a.Asset]; !ok {
		return v.fail("account of an unknown asset", "", a.Asset)
	}
	n := &ledger.Account{ID: a.ID, Owner: a.Owner, Asset: a.Asset, Kind: a.Kind,
		AllowNegative: a.AllowNegative, Status: ledger.StatusActive, Metadata: a.Metadata,
		CreatedAt: c.Time}
	if err := v.sameAccount(n, a); err != nil {
		return err
	}
	v.accounts[a.ID] = n
	return nil
}

func (v *Verifier) accountStatus(c *ledger.Change, from, to ledger.AccountStatus) error {
	a := c.Account
	if a == nil {
		return v.fail("no account", "", "")
	}
	cur := v.accounts[a.ID]
	if cur == nil {
		return v.fail("account not found", "", a.ID)
	}
	if cur.Status != from {
		return v.fail("account status", string(from), string(cur.Status))
	}
	cur.Status = to
	return v.sameAccount(cur, a)
}

// sameAccount checks that the snapshot got is the rebuilt account want.
func (v *Verifier) sameAccount(want, got *ledger.Account) error {
	amounts := [...]struct {
		name      string
		want, got ledger.Amount
	}{
		{"debits_posted", want.DebitsPosted, got.DebitsPosted},
		{"credits_posted", want.CreditsPosted, got.CreditsPosted},
		{"pending_debits", want.DebitsPending, got.DebitsPending},
		{"pending_credits", want.CreditsPending, got.CreditsPending},
	}
	for _, a := range amounts {
		if a.want != a.got {
			return v.fail("account "+a.name, a.want.String(), a.got.String())
		}
	}
	switch {
	case want.ID != got.ID:
		return v.fail("account id", want.ID, got.ID)
	case want.Owner != got.Owner:
		return v.fail("account owner", strconv.Quote(want.Owner), strconv.Quote(got.Owner))
	case want.Asset != got.Asset:
		return v.fail("account asset", want.Asset, got.Asset)
	case want.Kind != got.Kind:
		return v.fail("account kind", string(want.Kind), string(got.Kind))
	case want.AllowNegative != got.AllowNegative:
		return v.fail("account allow_negative", strconv.FormatBool(want.AllowNegative),
			strconv.FormatBool(got.AllowNegative))
	case want.Status != got.Status:
		return v.fail("account status", string(want.Status), string(got.Status))
	case want.CreatedAt != got.CreatedAt:
		return v.fail("account created_at", FormatTime(want.CreatedAt), FormatTime(got.CreatedAt))
	case !maps.Equal(want.Metadata, got.Metadata):
		return v.fail("account metadata", string(appendMetadataJSON(nil, want.Metadata)),
			string(appendMetadataJSON(nil, got.Metadata)))
	}
	return nil
}

// create checks and applies the creation of a transfer, posted at once or as a hold.
func (v *Verifier) create(c *ledger.Change) error {
	t := c.Transfer
	if t == nil {
		return v.fail("no transfer", "", "")
	}
	if err := v.checkNew(c, t); err != nil {
		return err
	}
	src, dst, err := v.parties(t, true)
	if err != nil {
		return err
	}
	var ok1, ok2 bool
	if t.Hold {
		src.DebitsPending, ok1 = src.DebitsPending.Add(t.Amount)
		dst.CreditsPending, ok2 = dst.CreditsPending.Add(t.Amount)
	} else {
		src.DebitsPosted, ok1 = src.DebitsPosted.Add(t.Amount)
		dst.CreditsPosted, ok2 = dst.CreditsPosted.Add(t.Amount)
	}
	if !ok1 || !ok2 {
		return v.fail("an account total passes 2^128-1", "", t.Amount.String())
	}
	if err := v.checkFunds(src); err != nil {
		return err
	}
	v.created[t.ID] = struct{}{}
	if t.Hold {
		h := *t
		v.holds[t.ID] = &h
	}
	v.transfersCreated++
	return v.checkAfter(c, src, dst)
}

// checkNew checks the fields of a newly created transfer.
func (v *Verifier) checkNew(c *ledger.Change, t *ledger.Transfer) error {
	if !ledger.ValidID(t.ID) {
		return v.fail("invalid transfer id", "", strconv.Quote(t.ID))
	}
	if _, ok := v.holds[t.ID]; ok {
		return v.fail("transfer created twice (the first is pending)", "", t.ID)
	}
	if _, ok := v.created[t.ID]; ok {
		return v.fail("transfer created twice in one record", "", t.ID)
	}
	want := ledger.Transfer{ID: t.ID, Source: t.Source, Destination: t.Destination,
		Amount: c.Amount, Asset: t.Asset, Kind: t.Kind, Status: ledger.TransferPosted,
		Reference: t.Reference, Metadata: t.Metadata, CreatedAt: c.Time, PostedAt: c.Time,
		AmountPosted: c.Amount, Hold: t.Hold, HoldTimeout: t.HoldTimeout}
	if t.Hold {
		want.Status, want.PostedAt, want.AmountPosted = ledger.TransferPending, 0, ledger.Amount{}
		if t.HoldTimeout > 0 {
			want.ExpiresAt = c.Time + int64(t.HoldTimeout)*1e9
		}
	}
	switch {
	case c.Amount.IsZero():
		return v.fail("amount is zero", "", "0")
	case !slices.Contains(ledger.TransferKinds, t.Kind):
		return v.fail("invalid transfer kind", "", strconv.Quote(string(t.Kind)))
	}
	return v.sameTransfer(&want, t)
}

// parties returns the accounts of t after checking that they exist, differ and share t's
// asset, and (for changes that move funds in) that both are active.
func (v *Verifier) parties(t *ledger.Transfer, active bool) (src, dst *ledger.Account, err error) {
	src, dst = v.accounts[t.Source], v.accounts[t.Destination]
	switch {
	case src == nil:
		return nil, nil, v.fail("source account not found", "", t.Source)
	case dst == nil:
		return nil, nil, v.fail("destination account not found", "", t.Destination)
	case src == dst:
		return nil, nil, v.fail("source and destination are the same account", "", t.Source)
	case src.Asset != t.Asset:
		return nil, nil, v.fail("source account asset", t.Asset, src.Asset)
	case dst.Asset != t.Asset:
		return nil, nil, v.fail("destination account asset", t.Asset, dst.Asset)
	}
	if active {
		for _, a := range [2]*ledger.Account{src, dst} {
			if a.Status != ledger.StatusActive {
				return nil, nil, v.fail("account "+a.ID+" is not active", "active", string(a.Status))
			}
		}
	}
	return src, dst, nil
}

// checkFunds checks an account's available balance after funds left it (a posted create, a
// hold or an increase): not below zero, or with allow_negative not below −(2^128−1).
func (v *Verifier) checkFunds(a *ledger.Account) error {
	if a.AllowNegative {
		if _, ok := a.Posted().Sub(a.DebitsPending); !ok {
			return v.fail("available balance of "+a.ID+" below -(2^128-1)", "", "")
		}
		return nil
	}
	need, ok := a.DebitsPosted.Add(a.DebitsPending)
	if !ok || a.CreditsPosted.Cmp(need) < 0 {
		return v.fail("insufficient funds: available balance of "+a.ID+" below zero", "", "")
	}
	return nil
}

// checkAfter checks the posted balances the change says both accounts have after it.
func (v *Verifier) checkAfter(c *ledger.Change, src, dst *ledger.Account) error {
	if b := src.Posted(); c.SourceAfter != b {
		return v.fail("source_after", b.String(), c.SourceAfter.String())
	}
	if b := dst.Posted(); c.DestinationAfter != b {
		return v.fail("destination_after", b.String(), c.DestinationAfter.String())
	}
	return nil
}

// holdChange checks and applies a post, increase, void or expire of a pending transfer.
func (v *Verifier) holdChange(recordTime int64, c *ledger.Change) error {
	t := c.Transfer
	if t == nil {
		return v.fail("no transfer", "", "")
	}
	h := v.holds[t.ID]
	if h == nil {
		return v.fail("transfer is not pending (unknown or final)", "", t.ID)
	}
	due := h.ExpiresAt != 0 && recordTime >= h.ExpiresAt // the engine expires it at batch start
	if c.Op == ledger.ChangeExpire && !due {
		return v.fail("expire before expires_at", "at or after "+FormatTime(h.ExpiresAt),
			FormatTime(recordTime))
	}
	if c.Op != ledger.ChangeExpire && due {
		return v.fail("hold expired", "before "+FormatTime(h.ExpiresAt), FormatTime(recordTime))
	}
	want, release, err := v.next(c, h)
	if err != nil {
		return err
	}
	if err := v.sameTransfer(&want, t); err != nil {
		return err
	}
	src, dst, err := v.parties(h, c.Op == ledger.ChangePost || c.Op == ledger.ChangeIncrease)
	if err != nil {
		return err
	}
	if err := v.move(c, src, dst, release); err != nil {
		return err
	}
	if want.Status == ledger.TransferPending {
		v.holds[t.ID] = &want
	} else {
		delete(v.holds, t.ID)
	}
	return v.checkAfter(c, src, dst)
}

// next returns the transfer hold h becomes by change c, and what c releases from pending.
func (v *Verifier) next(c *ledger.Change, h *ledger.Transfer) (ledger.Transfer, ledger.Amount, error) {
	want, held := *h, h.Held()
	var ok bool
	switch c.Op {
	case ledger.ChangePost:
		if c.Amount.IsZero() || c.Amount.Cmp(held) > 0 {
			return want, held, v.fail("post amount", "1.."+held.String(), c.Amount.String())
		}
		want.AmountPosted, _ = h.AmountPosted.Add(c.Amount) // ≤ h.Amount
		want.PostedAt = c.Time
		if c.Transfer.Status == ledger.TransferPosted {
			want.Status = ledger.TransferPosted // final: the rest of the hold is released
			return want, held, nil
		}
		return want, c.Amount, nil // multi-capture: the rest stays held
	case ledger.ChangeIncrease:
		if c.Amount.IsZero() {
			return want, held, v.fail("increase amount is zero", "", "0")
		}
		if want.Amount, ok = h.Amount.Add(c.Amount); !ok {
			return want, held, v.fail("transfer amount passes 2^128-1", "", c.Amount.String())
		}
		return want, ledger.Amount{}, nil
	case ledger.ChangeVoid:
		want.Status = ledger.TransferVoided
	default:
		want.Status = ledger.TransferExpired
	}
	if c.Amount != held {
		return want, held, v.fail("amount released", held.String(), c.Amount.String())
	}
	return want, held, nil
}

// move applies a hold change to the accounts' totals: a post moves c.Amount to posted and
// releases release; an increase adds to pending; a void or expire releases release.
func (v *Verifier) move(c *ledger.Change, src, dst *ledger.Account, release ledger.Amount) error {
	var ok [4]bool
	switch c.Op {
	case ledger.ChangeIncrease:
		src.DebitsPending, ok[0] = src.DebitsPending.Add(c.Amount)
		dst.CreditsPending, ok[1] = dst.CreditsPending.Add(c.Amount)
		if !ok[0] || !ok[1] {
			return v.fail("an account's pending total passes 2^128-1", "", c.Amount.String())
		}
		return v.checkFunds(src)
	case ledger.ChangePost:
		src.DebitsPosted, ok[0] = src.DebitsPosted.Add(c.Amount)
		dst.CreditsPosted, ok[1] = dst.CreditsPosted.Add(c.Amount)
		if !ok[0] || !ok[1] {
			return v.fail("an account's posted total passes 2^128-1", "", c.Amount.String())
		}
	}
	src.DebitsPending, ok[2] = src.DebitsPending.Sub(release)
	dst.CreditsPending, ok[3] = dst.CreditsPending.Sub(release)
	if !ok[2] || !ok[3] {
		return v.fail("pending totals do not cover the hold", release.String(), "")
	}
	return nil
}

// sameTransfer checks that the snapshot got is the transfer the chain implies, want.
func (v *Verifier) sameTransfer(want, got *ledger.Transfer) error {
	type field struct{ name, want, got string }
	amounts := [...]struct {
		name      string
		want, got ledger.Amount
	}{{"amount", want.Amount, got.Amount}, {"amount_posted", want.AmountPosted, got.AmountPosted}}
	for _, a := range amounts {
		if a.want != a.got {
			return v.fail("transfer "+a.name, a.want.String(), a.got.String())
		}
	}
	times := [...]struct {
		name      string
		want, got int64
	}{{"created_at", want.CreatedAt, got.CreatedAt}, {"posted_at", want.PostedAt, got.PostedAt},
		{"expires_at", want.ExpiresAt, got.ExpiresAt}}
	for _, t := range times {
		if t.want != t.got {
			return v.fail("transfer "+t.name, FormatTime(t.want), FormatTime(t.got))
		}
	}
	var f *field
	switch {
	case want.Status != got.Status:
		f = &field{"status", string(want.Status), string(got.Status)}
	case want.ID != got.ID:
		f = &field{"id", want.ID, got.ID}
	case want.Source != got.Source:
		f = &field{"source", want.Source, got.Source}
	case want.Destination != got.Destination:
		f = &field{"destination", want.Destination, got.Destination}
	case want.Asset != got.Asset:
		f = &field{"asset", want.Asset, got.Asset}
	case want.Kind != got.Kind:
		f = &field{"kind", string(want.Kind), string(got.Kind)}
	case want.Reference != got.Reference:
		f = &field{"reference", strconv.Quote(want.Reference), strconv.Quote(got.Reference)}
	case want.Hold != got.Hold:
		f = &field{"hold", strconv.FormatBool(want.Hold), strconv.FormatBool(got.Hold)}
	case want.HoldTimeout != got.HoldTimeout:
		f = &field{"hold timeout", strconv.Itoa(int(want.HoldTimeout)), strconv.Itoa(int(got.HoldTimeout))}
	case !sameMetadata(want.Metadata, got.Metadata):
		f = &field{"metadata", string(appendMetadataJSON(nil, want.Metadata)),
			string(appendMetadataJSON(nil, got.Metadata))}
	default:
		return nil
	}
	return v.fail("transfer "+f.name, f.want, f.got)
}

// sameMetadata is maps.Equal with a shortcut for the common empty metadata.
func sameMetadata(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	return maps.Equal(a, b)
}

// Head returns the seq and hash of the last record added without error.
func (v *Verifier) Head() Head { return v.head }

// Accounts returns the rebuilt accounts by id. The map and the accounts are the Verifier's
// own: the caller must not change them, and they change with later calls to Add.
func (v *Verifier) Accounts() map[string]*ledger.Account { return v.accounts }

// Holds returns the pending transfers by id, as after their latest change. The map is the
// Verifier's own: the caller must not change it, and it changes with later calls to Add.
func (v *Verifier) Holds() map[string]*ledger.Transfer { return v.holds }

// Assets returns every asset, preloaded and created, sorted by code.
func (v *Verifier) Assets() []ledger.Asset {
	out := slices.Collect(maps.Values(v.assets))
	slices.SortFunc(out, func(a, b ledger.Asset) int {
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

// Summary is what a replay found.
type Summary struct {
	Head             Head
	Records          uint64
	Changes          uint64
	TransfersCreated uint64
	Accounts         int
	Holds            int          // pending transfers
	Assets           []AssetTotal // every asset, sorted by code
}

// AssetTotal sums the balances of one asset's accounts. In a sound ledger DebitsPosted
// equals CreditsPosted (the volume ever posted) and DebitsPending equals CreditsPending (what
// holds reserve now); Finish checks it.
type AssetTotal struct {
	Code           string
	Scale          uint8
	Accounts       int
	DebitsPosted   *big.Int
	CreditsPosted  *big.Int
	DebitsPending  *big.Int
	CreditsPending *big.Int
}

// Summary returns the counts and per-asset totals of what has been added so far.
func (v *Verifier) Summary() Summary {
	s := Summary{Head: v.head, Records: v.records, Changes: v.changes,
		TransfersCreated: v.transfersCreated, Accounts: len(v.accounts), Holds: len(v.holds)}
	totals := make(map[string]*[4]sum192, len(v.assets))
	counts := make(map[string]int, len(v.assets))
	for _, a := range v.accounts {
		t := totals[a.Asset]
		if t == nil {
			t = new([4]sum192)
			totals[a.Asset] = t
		}
		t[0].add(a.DebitsPosted)
		t[1].add(a.CreditsPosted)
		t[2].add(a.DebitsPending)
		t[3].add(a.CreditsPending)
		counts[a.Asset]++
	}
	for _, as := range v.Assets() {
		t := totals[as.Code]
		if t == nil {
			t = new([4]sum192)
		}
		s.Assets = append(s.Assets, AssetTotal{Code: as.Code, Scale: as.Scale,
			Accounts: counts[as.Code], DebitsPosted: t[0].big(), CreditsPosted: t[1].big(),
			DebitsPending: t[2].big(), CreditsPending: t[3].big()})
	}
	return s
}

// Finish checks what only the whole state shows, once every record is added: for each asset
// posted debits equal posted credits and pending debits equal pending credits, and each
// account's pending totals are what its holds still reserve. It returns Add's error if Add
// failed, else nil or a *CorruptionError at the last record.
func (v *Verifier) Finish() error {
	if v.err != nil {
		return v.err
	}
	v.index, v.cur = -1, nil
	last := func(what string, want, got *big.Int) error {
		return &CorruptionError{Seq: v.head.Seq, What: what, Want: want.String(), Got: got.String()}
	}
	for _, t := range v.Summary().Assets {
		if t.DebitsPosted.Cmp(t.CreditsPosted) != 0 {
			return last("asset "+t.Code+": sum of debits_posted differs from sum of credits_posted",
				t.CreditsPosted, t.DebitsPosted)
		}
		if t.DebitsPending.Cmp(t.CreditsPending) != 0 {
			return last("asset "+t.Code+": sum of pending_debits differs from sum of pending_credits",
				t.CreditsPending, t.DebitsPending)
		}
	}
	held := make(map[string]*[2]sum192, 2*len(v.holds))
	for _, h := range v.holds {
		for i, id := range [2]string{h.Source, h.Destination} {
			if held[id] == nil {
				held[id] = new([2]sum192)
			}
			held[id][i].add(h.Held())
		}
	}
	for _, a := range v.accounts {
		w := held[a.ID]
		if w == nil {
			w = new([2]sum192)
		}
		if p := (sum192{lo: a.DebitsPending}); w[0] != p {
			return last("account "+a.ID+": pending_debits differ from its holds", w[0].big(), p.big())
		}
		if p := (sum192{lo: a.CreditsPending}); w[1] != p {
			return last("account "+a.ID+": pending_credits differ from its holds", w[1].big(), p.big())
		}
	}
	return nil
}

// sum192 is a sum of Amounts: 192 bits are enough for 2^64 of them.
type sum192 struct {
	hi uint64
	lo ledger.Amount
}

func (s *sum192) add(a ledger.Amount) {
	var ok bool
	if s.lo, ok = s.lo.Add(a); !ok {
		s.hi++
	}
}

func (s sum192) big() *big.Int {
	v := new(big.Int).SetUint64(s.hi)
	return v.Lsh(v, 128).Or(v, bigAmount(s.lo))
}
