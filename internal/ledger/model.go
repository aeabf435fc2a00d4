package ledger

import (
	"maps"
	"strings"
	"unicode/utf8"
)

// Limits checked at the edge and asserted here (api.md).
const (
	IDLenMax            = 64
	MetadataKeysMax     = 32
	MetadataKeyLenMax   = 64
	MetadataValLenMax   = 512
	ReferenceLenMax     = 256
	OwnerLenMax         = 256
	AssetCodeLenMin     = 2
	AssetCodeLenMax     = 16
	AssetScaleMax       = 18
	BatchTransfersMax   = 8190 // api.md: POST /v1/transfers/batch
	HoldTimeoutMax      = 10 * 365 * 24 * 3600
	serverTransferIDLen = 3 + 13
)

// Asset is a currency or crypto asset; amounts of it are integers in units of 10^-Scale.
type Asset struct {
	Code  string
	Scale uint8
}

// PreloadedAssets are the assets every new ledger starts with.
var PreloadedAssets = []Asset{
	{"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"CNY", 2}, {"HKD", 2}, {"JPY", 0},
	{"BTC", 8}, {"ETH", 18}, {"USDT", 6},
}

// AccountKind says what an account is for.
type AccountKind string

// The account kinds of api.md.
const (
	KindUser       AccountKind = "user"
	KindMerchant   AccountKind = "merchant"
	KindSystem     AccountKind = "system"
	KindFee        AccountKind = "fee"
	KindFX         AccountKind = "fx"
	KindSettlement AccountKind = "settlement"
)

// AccountKinds lists the valid kinds; the index is the kind's binary code.
var AccountKinds = []AccountKind{KindUser, KindMerchant, KindSystem, KindFee, KindFX, KindSettlement}

// AccountStatus is active, frozen or closed.
type AccountStatus string

// Account statuses.
const (
	StatusActive AccountStatus = "active"
	StatusFrozen AccountStatus = "frozen"
	StatusClosed AccountStatus = "closed"
)

// AccountStatuses lists the statuses; the index is the binary code.
var AccountStatuses = []AccountStatus{StatusActive, StatusFrozen, StatusClosed}

// Account is a balance in one asset. Values of Account are snapshots: the ledger never
// mutates an Account it has handed out.
type Account struct {
	ID            string
	Owner         string
	Asset         string
	Kind          AccountKind
	AllowNegative bool
	Status        AccountStatus
	Metadata      map[string]string
	CreatedAt     int64 // Unix nanoseconds, engine time

	DebitsPosted   Amount
	CreditsPosted  Amount
	DebitsPending  Amount
	CreditsPending Amount
}

// Posted is credits_posted − debits_posted.
func (a *Account) Posted() Balance { return BalanceOf(a.CreditsPosted, a.DebitsPosted) }

// Available is posted − pending_debits.
func (a *Account) Available() Balance {
	b, ok := a.Posted().Sub(a.DebitsPending)
	assert(ok, "available balance fits in 129 bits")
	return b
}

// TransferKind classifies a transfer for reports.
type TransferKind string

// The transfer kinds of api.md.
const (
	TransferP2P        TransferKind = "p2p"
	TransferP2M        TransferKind = "p2m"
	TransferB2C        TransferKind = "b2c"
	TransferTopup      TransferKind = "topup"
	TransferWithdrawal TransferKind = "withdrawal"
	TransferFee        TransferKind = "fee"
	TransferFX         TransferKind = "fx"
	TransferAdjustment TransferKind = "adjustment"
)

// TransferKinds lists the valid kinds; the index is the binary code.
var TransferKinds = []TransferKind{TransferP2P, TransferP2M, TransferB2C, TransferTopup,
	TransferWithdrawal, TransferFee, TransferFX, TransferAdjustment}

// TransferStatus is where a transfer is in its life.
type TransferStatus string

// Transfer statuses. Posted, voided and expired are final.
const (
	TransferPosted  TransferStatus = "posted"
	TransferPending TransferStatus = "pending"
	TransferVoided  TransferStatus = "voided"
	TransferExpired TransferStatus = "expired"
)

// TransferStatuses lists the statuses; the index is the binary code.
var TransferStatuses = []TransferStatus{TransferPosted, TransferPending, TransferVoided, TransferExpired}

// Transfer moves Amount of Asset from Source to Destination, at once or as a hold.
// Values of Transfer are snapshots: every change makes a new one.
type Transfer struct {
	ID           string
	Source       string
	Destination  string
	Amount       Amount // authorised: the original plus increases
	Asset        string
	Kind         TransferKind
	Status       TransferStatus
	Reference    string
	Metadata     map[string]string
	CreatedAt    int64 // Unix ns
	PostedAt     int64 // Unix ns of the latest post, 0 before any
	AmountPosted Amount
	ExpiresAt    int64  // Unix ns, 0 = never (or not a hold)
	Hold         bool   // created as a hold
	HoldTimeout  uint32 // seconds, as requested; 0 = never expires
}

// Held is what a pending transfer still reserves: Amount − AmountPosted, zero once final.
func (t *Transfer) Held() Amount {
	if t.Status != TransferPending {
		return Amount{}
	}
	h, ok := t.Amount.Sub(t.AmountPosted)
	assert(ok, "amount_posted <= amount")
	return h
}

// Final reports whether nothing can move t any more.
func (t *Transfer) Final() bool { return t.Status != TransferPending }

// ValidID reports whether s is 1–64 chars of A-Za-z0-9_.:-.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > IDLenMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// IsServerTransferID reports whether s has the form of ids the server makes ("tr_" and 13
// base-32 digits of the creation time). Clients may not choose such ids, so a server id
// can never collide with one a client picked before.
func IsServerTransferID(s string) bool {
	if len(s) != serverTransferIDLen || !strings.HasPrefix(s, "tr_") {
		return false
	}
	for i := 3; i < len(s); i++ {
		if strings.IndexByte(base32Digits, s[i]) < 0 {
			return false
		}
	}
	return true
}

const base32Digits = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford, lower case

// timeID renders a positive Unix-ns time as 13 base-32 digits, so ids sort by time.
func timeID(prefix string, t int64) string {
	var b [32]byte // room for a prefix of up to 19 bytes ("tr_", "acc_") and 13 digits
	n := copy(b[:], prefix)
	u := uint64(t)
	for i := 12; i >= 0; i-- {
		b[n+i] = base32Digits[u&31]
		u >>= 5
	}
	return string(b[:n+13])
}

// ValidAssetCode reports whether s is 2–16 chars of A-Z0-9.
func ValidAssetCode(s string) bool {
	if len(s) < AssetCodeLenMin || len(s) > AssetCodeLenMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// CheckMetadata returns a client-facing reason if m breaks api.md's limits, else "".
func CheckMetadata(m map[string]string) string {
	if len(m) > MetadataKeysMax {
		return "metadata has more than 32 keys"
	}
	for k, v := range m {
		if len(k) == 0 || len(k) > MetadataKeyLenMax {
			return "metadata keys must be 1-64 bytes"
		}
		if len(v) > MetadataValLenMax {
			return "metadata values must be at most 512 bytes"
		}
		if !ValidText(k) || !ValidText(v) {
			return "metadata must be valid UTF-8 without NUL characters"
		}
	}
	return ""
}

// ValidText reports whether s is valid UTF-8 without NUL: the journal hashes text as JSON
// (where invalid bytes would all read as U+FFFD) and stores keep it in keys and columns
// (where NUL separates parts, and PostgreSQL text cannot hold it).
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

func validAccountKind(k AccountKind) bool {
	for _, v := range AccountKinds {
		if v == k {
			return true
		}
	}
	return false
}

func validTransferKind(k TransferKind) bool {
	for _, v := range TransferKinds {
		if v == k {
			return true
		}
	}
	return false
}

// sameFields reports whether a transfer request repeats the transfer t was created from.
func (r *TransferRequest) sameFields(t *Transfer) bool {
	kind := r.Kind
	if kind == "" {
		kind = TransferP2P
	}
	return r.Source == t.Source && r.Destination == t.Destination &&
		(r.Asset == "" || r.Asset == t.Asset) && kind == t.Kind &&
		r.Reference == t.Reference && maps.Equal(r.Metadata, t.Metadata) &&
		r.Hold == t.Hold && r.HoldTimeout == t.HoldTimeout &&
		r.Amount == t.Amount
}
