package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The types below are api.md's resources and requests. Amounts are Amount or SignedAmount
// (decimal strings on the wire), times are time.Time (RFC 3339 with nine fraction digits on
// the wire), and fields the server may leave null are pointers.

// Scope is what an API key may do: read (every GET), write (read, plus accounts and
// transfers), admin (everything).
type Scope string

const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
	ScopeAdmin Scope = "admin"
)

// CreateAPIKeyRequest is the body of POST /v1/api-keys.
type CreateAPIKeyRequest struct {
	Name   string  `json:"name,omitempty"`
	Scopes []Scope `json:"scopes"`
}

// APIKey is a live API key, without its secret.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []Scope   `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
}

// APIKeyCreated is a new API key with its secret Key, which the server shows this once.
type APIKeyCreated struct {
	APIKey
	Key string `json:"key"`
}

// Asset is a currency or token and its scale (the number of minor-unit digits).
type Asset struct {
	Code  string `json:"code"`
	Scale int    `json:"scale"`
}

// AccountKind is what an account is for.
type AccountKind string

const (
	AccountUser       AccountKind = "user"
	AccountMerchant   AccountKind = "merchant"
	AccountSystem     AccountKind = "system"
	AccountFee        AccountKind = "fee"
	AccountFX         AccountKind = "fx"
	AccountSettlement AccountKind = "settlement"
)

// AccountStatus is active, frozen or closed.
type AccountStatus string

const (
	AccountActive AccountStatus = "active"
	AccountFrozen AccountStatus = "frozen"
	AccountClosed AccountStatus = "closed"
)

// CreateAccountRequest is the body of POST /v1/accounts. Only Asset is required; the server
// makes an ID when it is empty, and Kind defaults to user.
type CreateAccountRequest struct {
	ID            string            `json:"id,omitempty"`
	Owner         string            `json:"owner,omitempty"`
	Asset         string            `json:"asset"`
	Kind          AccountKind       `json:"kind,omitempty"`
	AllowNegative bool              `json:"allow_negative,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// Balance is an account's balance. Posted = credits_posted − debits_posted; Available =
// Posted − PendingDebits.
type Balance struct {
	Posted         SignedAmount `json:"posted"`
	Available      SignedAmount `json:"available"`
	PendingDebits  Amount       `json:"pending_debits"`
	PendingCredits Amount       `json:"pending_credits"`
}

// Account is an account as of the latest commit.
type Account struct {
	ID            string            `json:"id"`
	Owner         string            `json:"owner"`
	Asset         string            `json:"asset"`
	Kind          AccountKind       `json:"kind"`
	AllowNegative bool              `json:"allow_negative"`
	Status        AccountStatus     `json:"status"`
	Balance       Balance           `json:"balance"`
	DebitsPosted  Amount            `json:"debits_posted"`
	CreditsPosted Amount            `json:"credits_posted"`
	Metadata      map[string]string `json:"metadata"`
	CreatedAt     time.Time         `json:"created_at"`
}

// Direction is the side of an entry: debit or credit.
type Direction string

const (
	Debit  Direction = "debit"
	Credit Direction = "credit"
)

// Entry is one posted movement of an account.
type Entry struct {
	TransferID  string       `json:"transfer_id"`
	Direction   Direction    `json:"direction"`
	Amount      Amount       `json:"amount"`
	Kind        TransferKind `json:"kind"`
	PostedAfter SignedAmount `json:"posted_after"` // the account's posted balance just after
	Timestamp   time.Time    `json:"timestamp"`
}

// PostedBalance is an account's posted balance at a time (GET /v1/accounts/{id}/balance).
type PostedBalance struct {
	AccountID string       `json:"account_id"`
	At        time.Time    `json:"at"`
	Posted    SignedAmount `json:"posted"`
}

// TransferKind classifies a transfer.
type TransferKind string

const (
	KindP2P        TransferKind = "p2p"
	KindP2M        TransferKind = "p2m"
	KindB2C        TransferKind = "b2c"
	KindTopup      TransferKind = "topup"
	KindWithdrawal TransferKind = "withdrawal"
	KindFee        TransferKind = "fee"
	KindFX         TransferKind = "fx"
	KindAdjustment TransferKind = "adjustment"
)

// TransferStatus is posted, pending, voided or expired. Posted, voided and expired are final.
type TransferStatus string

const (
	StatusPosted  TransferStatus = "posted"
	StatusPending TransferStatus = "pending"
	StatusVoided  TransferStatus = "voided"
	StatusExpired TransferStatus = "expired"
)

// Hold makes a transfer reserve its amount instead of posting it. Timeout is how long the
// hold lasts, in whole seconds; 0 never expires.
type Hold struct {
	Timeout time.Duration
}

// MarshalJSON writes {"timeout_seconds": n}; a Timeout that is not whole seconds, or is
// negative, is an error (it would be sent as something else than what was asked).
func (h Hold) MarshalJSON() ([]byte, error) {
	if h.Timeout < 0 || h.Timeout%time.Second != 0 {
		return nil, fmt.Errorf("client: hold timeout %v must be zero or whole seconds", h.Timeout)
	}
	return fmt.Appendf(nil, `{"timeout_seconds":%d}`, h.Timeout/time.Second), nil
}

// UnmarshalJSON reads {"timeout_seconds": n}.
func (h *Hold) UnmarshalJSON(b []byte) error {
	var v struct {
		TimeoutSeconds int64 `json:"timeout_seconds"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	h.Timeout = time.Duration(v.TimeoutSeconds) * time.Second
	return nil
}

// CreateTransferRequest is the body of POST /v1/transfers. Source, Destination and a
// positive Amount are required. Without Hold the transfer posts at once; with it the amount
// is held until posted, voided or expired. An ID chosen by the client makes the transfer
// itself idempotent: sent again with the same fields it returns the existing transfer.
type CreateTransferRequest struct {
	ID          string            `json:"id,omitempty"`
	Source      string            `json:"source"`
	Destination string            `json:"destination"`
	Amount      Amount            `json:"amount"`
	Asset       string            `json:"asset,omitempty"`
	Kind        TransferKind      `json:"kind,omitempty"`
	Reference   string            `json:"reference,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Hold        *Hold             `json:"hold,omitempty"`
}

// Transfer is a transfer as of its latest change. For a hold, Amount is what was authorised
// (the original plus increases) and AmountPosted what was posted so far.
type Transfer struct {
	ID           string            `json:"id"`
	Source       string            `json:"source"`
	Destination  string            `json:"destination"`
	Amount       Amount            `json:"amount"`
	Asset        string            `json:"asset"`
	Kind         TransferKind      `json:"kind"`
	Status       TransferStatus    `json:"status"`
	Reference    string            `json:"reference"`
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    time.Time         `json:"created_at"`
	PostedAt     *time.Time        `json:"posted_at"` // the latest post; nil before any
	AmountPosted Amount            `json:"amount_posted"`
	ExpiresAt    *time.Time        `json:"expires_at"` // nil when it never expires or is no hold
}

// PostTransferRequest says how much of a hold to post. A zero Amount posts all that is still
// held. NotFinal keeps the rest held for later posts (multi-capture; Amount is then
// required); by default the post is final and releases the rest.
type PostTransferRequest struct {
	Amount   Amount
	NotFinal bool
}

// MarshalJSON writes the api.md body: {"amount": "..", "final": false}, leaving out what is
// default.
func (p PostTransferRequest) MarshalJSON() ([]byte, error) {
	var v struct {
		Amount Amount `json:"amount,omitzero"`
		Final  *bool  `json:"final,omitempty"`
	}
	v.Amount = p.Amount
	if p.NotFinal {
		v.Final = new(bool)
	}
	return json.Marshal(v)
}

// BatchResult is the outcome of one transfer of a non-atomic batch: Transfer when it
// applied, else Err (an *Error with the item's code, for errors.Is).
type BatchResult struct {
	Transfer *Transfer
	Err      error
}

// UnmarshalJSON reads {"transfer": {...}} or {"error": {"code": .., "detail": ..}}.
func (r *BatchResult) UnmarshalJSON(b []byte) error {
	var v struct {
		Transfer *Transfer `json:"transfer"`
		Error    *struct {
			Code   Code   `json:"code"`
			Detail string `json:"detail"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch {
	case v.Transfer != nil:
		r.Transfer = v.Transfer
	case v.Error != nil:
		r.Err = &Error{Code: v.Error.Code, Detail: v.Error.Detail}
	default:
		return errors.New("client: a batch result with neither transfer nor error")
	}
	return nil
}

// Page is one page of a list. NextCursor is empty on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// ListParams pages through a list: Limit items a page (1–1000; 0 is the server's default,
// 50), starting after Cursor (a NextCursor of the page before; empty for the first page).
type ListParams struct {
	Limit  int
	Cursor string
}

// ListAccountsParams filters GET /v1/accounts: the accounts of Owner, or all without it.
type ListAccountsParams struct {
	Owner string
	ListParams
}

// ListTransfersParams filters GET /v1/transfers: those touching Account, or all without it.
type ListTransfersParams struct {
	Account string
	ListParams
}

// Op is what a journal change did.
type Op string

const (
	OpCreate          Op = "create"
	OpPost            Op = "post"
	OpIncrease        Op = "increase"
	OpVoid            Op = "void"
	OpExpire          Op = "expire"
	OpAccountCreate   Op = "account_create"
	OpAccountFreeze   Op = "account_freeze"
	OpAccountUnfreeze Op = "account_unfreeze"
	OpAssetCreate     Op = "asset_create"
)

// Change is one change of a journal record, with the object as it is after it: Transfer for
// transfer ops (Amount is what moved, was added or was released), Account for account ops,
// Asset for asset_create.
type Change struct {
	Op        Op        `json:"op"`
	Timestamp time.Time `json:"timestamp"`
	Amount    *Amount   `json:"amount,omitempty"`
	Transfer  *Transfer `json:"transfer,omitempty"`
	Account   *Account  `json:"account,omitempty"`
	Asset     *Asset    `json:"asset,omitempty"`
}

// Record is one committed batch of the hash-chained journal.
type Record struct {
	Seq       uint64    `json:"seq"`
	PrevHash  string    `json:"prev_hash"`
	Hash      string    `json:"hash"`
	Timestamp time.Time `json:"timestamp"`
	Changes   []Change  `json:"changes"`
}

// JournalHead is the latest record's seq and hash (seq 0 and 64 zeros when empty).
type JournalHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// JournalParams pages through the journal: records with seq > After, Limit a page.
type JournalParams struct {
	After uint64
	Limit int
}

// EventType is the type of an event (docs/events.md).
type EventType string

const (
	EventTransferPending         EventType = "transfer.pending"
	EventTransferPosted          EventType = "transfer.posted"
	EventTransferPartiallyPosted EventType = "transfer.partially_posted"
	EventTransferIncreased       EventType = "transfer.increased"
	EventTransferVoided          EventType = "transfer.voided"
	EventTransferExpired         EventType = "transfer.expired"
	EventAccountCreated          EventType = "account.created"
	EventAccountFrozen           EventType = "account.frozen"
	EventAccountUnfrozen         EventType = "account.unfrozen"
	EventAssetCreated            EventType = "asset.created"
)

// Event is a CloudEvents 1.0 event: one journal change. ID (<seq>-<index>) is stable, so a
// consumer can drop the copies at-least-once delivery brings, and can resume after it.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            EventType `json:"type"`
	Subject         string    `json:"subject"` // the transfer id, account id or asset code
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	JournalSeq      uint64    `json:"journalseq"`
	JournalIndex    int       `json:"journalindex"`
	PartitionKey    string    `json:"partitionkey"`
	Data            Change    `json:"data"`
}

// EventsParams reads GET /v1/events: events after After (a journal seq or an event id; ""
// is the start of the journal), Limit a page, only Types (all when empty). ListEvents waits
// up to Wait (whole seconds, at most 30 s) for a first event; the Events iterator always
// long-polls and ignores Wait.
type EventsParams struct {
	After string
	Limit int
	Wait  time.Duration
	Types []EventType
}

// Follower is one of the journal's followers (event publishers, webhook endpoints).
type Follower struct {
	Name       string `json:"name"`
	Running    bool   `json:"running"`
	Position   string `json:"position"` // an After of GET /v1/events: all up to it is delivered
	Delivered  uint64 `json:"delivered"`
	Errors     uint64 `json:"errors"`
	LastError  string `json:"last_error"`
	LagRecords uint64 `json:"lag_records"`
	// Lag is the age of the oldest record still to deliver (0 when caught up).
	Lag time.Duration `json:"-"`
}

// UnmarshalJSON reads a follower, with lag_seconds (a decimal number of seconds) as Lag.
func (f *Follower) UnmarshalJSON(b []byte) error {
	type plain Follower
	var v struct {
		*plain
		LagSeconds json.Number `json:"lag_seconds"`
	}
	v.plain = (*plain)(f)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.LagSeconds == "" {
		return nil
	}
	// Parsed as a duration string, exactly: "0.125" → 125 ms.
	d, err := time.ParseDuration(strings.TrimPrefix(v.LagSeconds.String(), "+") + "s")
	if err != nil {
		return fmt.Errorf("client: lag_seconds %q: %w", v.LagSeconds, err)
	}
	f.Lag = d
	return nil
}
