package ledger

// Op is what a Request asks for.
type Op uint8

// Request operations.
const (
	OpTransfer      Op = iota + 1 // create a transfer, posted at once or as a hold
	OpPost                        // post all or part of a hold
	OpIncrease                    // hold more on a pending transfer
	OpVoid                        // release what a hold still reserves
	OpCreateAccount               // open an account
	OpFreeze                      // freeze an account
	OpUnfreeze                    // unfreeze an account
	OpCreateAsset                 // add an asset
)

// TransferRequest is what a client sends to create a transfer (api.md POST /v1/transfers).
type TransferRequest struct {
	ID          string // empty: the ledger makes a time-sortable one
	Source      string
	Destination string
	Amount      Amount
	Asset       string // optional; when set it must be the asset of both accounts
	Kind        TransferKind
	Reference   string
	Metadata    map[string]string
	Hold        bool
	HoldTimeout uint32 // seconds; 0 = never expires
}

// AccountRequest is what a client sends to open an account (api.md POST /v1/accounts).
type AccountRequest struct {
	ID            string // empty: the ledger makes one
	Owner         string
	Asset         string
	Kind          AccountKind // empty means user
	AllowNegative bool
	Metadata      map[string]string
}

// Request is one operation of a Command. Only the fields of its Op are read.
type Request struct {
	Op         Op
	Transfer   TransferRequest // OpTransfer
	TransferID string          // OpPost, OpIncrease, OpVoid
	Amount     Amount          // OpPost (when AmountSet), OpIncrease
	AmountSet  bool            // OpPost: false posts everything still held
	NotFinal   bool            // OpPost: keep the rest held for later posts (multi-capture)
	Account    AccountRequest  // OpCreateAccount
	AccountID  string          // OpFreeze, OpUnfreeze
	Asset      Asset           // OpCreateAsset
}

// Command is the unit one caller submits: a single request, or a batch of transfers.
// With Atomic every request applies or none does; without, each stands on its own.
type Command struct {
	Requests []Request
	Atomic   bool
}

// Result is the outcome of one Request. Exactly one of Transfer, Account, Asset is set when
// Code is CodeOK.
type Result struct {
	Code     Code
	Detail   string // set with Code; client-facing, no personal data
	Existing bool   // the request repeated an existing transfer: nothing changed (200, not 201)
	Transfer *Transfer
	Account  *Account
	Asset    *Asset
}

// ChangeOp names a journal change (api.md).
type ChangeOp uint8

// Change operations, with their api.md names in ChangeOp.String.
const (
	ChangeCreate ChangeOp = iota + 1
	ChangePost
	ChangeIncrease
	ChangeVoid
	ChangeExpire
	ChangeAccountCreate
	ChangeAccountFreeze
	ChangeAccountUnfreeze
	ChangeAssetCreate
)

var changeOpNames = [...]string{"", "create", "post", "increase", "void", "expire",
	"account_create", "account_freeze", "account_unfreeze", "asset_create"}

func (o ChangeOp) String() string {
	if int(o) < len(changeOpNames) {
		return changeOpNames[o]
	}
	return "unknown"
}

// ParseChangeOp is the inverse of ChangeOp.String.
func ParseChangeOp(s string) (ChangeOp, bool) {
	for i := 1; i < len(changeOpNames); i++ {
		if changeOpNames[i] == s {
			return ChangeOp(i), true
		}
	}
	return 0, false
}

// Change is one committed state change: the object as it is after the change. Transfer
// changes also carry what moved, so entries and replays need no earlier state:
//   - Amount: for create the authorised amount, for post the amount posted now, for increase
//     the amount added, for void and expire the amount released.
//   - SourceAfter, DestinationAfter: the posted balances of both accounts after the change.
type Change struct {
	Op       ChangeOp
	Time     int64 // Unix ns; strictly increasing over all changes
	Transfer *Transfer
	Account  *Account
	Asset    *Asset

	Amount           Amount
	SourceAfter      Balance
	DestinationAfter Balance
}

// Posts reports whether the change moved posted balances (an entry on both accounts).
func (c *Change) Posts() bool {
	return c.Op == ChangePost || c.Op == ChangeCreate && !c.Transfer.Hold
}
