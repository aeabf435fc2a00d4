package journal

import (
	"encoding/hex"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Hash is a SHA-256 digest.
type Hash [32]byte

// String is the lower-case hex form used on the wire.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Head names the latest record of a chain: Seq 0 and a zero Hash when the chain is empty.
type Head struct {
	Seq  uint64
	Hash Hash
}

// Record is one committed engine batch: every change it made, chained to the record before
// by PrevHash. Hash is SHA-256 over the bytes docs/journal.md defines (see RecordHash).
type Record struct {
	Seq       uint64
	PrevHash  Hash
	Hash      Hash
	Timestamp int64 // Unix ns: the batch's engine time
	Changes   []ledger.Change
}

// Commit is what one engine batch writes in a single atomic, synced store write: the journal
// record (nil when the batch changed no ledger state) and the side data that must be durable
// with it but is not part of the chain.
type Commit struct {
	Record      *Record
	Accounts    []*ledger.Account // accounts created or changed by the batch, as they are after it
	Idempotency []Idempotency
	APIKeys     []APIKey // created or revoked keys, stored as given
}

// Idempotency is a stored answer to a request sent with an Idempotency-Key.
type Idempotency struct {
	Scope       string // the id of the API key that sent it
	Key         string
	RequestHash Hash // over method, path and body
	Status      int
	Body        []byte
	ExpiresAt   int64 // Unix ns; the store may drop it after
}

// APIKey is a stored API key: only the hash of the secret is kept.
type APIKey struct {
	ID        string
	Name      string
	Scopes    []string
	Hash      Hash // SHA-256 of the secret key
	CreatedAt int64
	Revoked   bool
}

// Direction is the side of an entry.
type Direction uint8

// Entry directions.
const (
	Debit Direction = iota + 1
	Credit
)

func (d Direction) String() string {
	if d == Debit {
		return "debit"
	}
	return "credit"
}

// Entry is one posted movement on one account (api.md GET /v1/accounts/{id}/entries).
type Entry struct {
	Account     string
	TransferID  string
	Direction   Direction
	Amount      ledger.Amount
	Kind        ledger.TransferKind
	PostedAfter ledger.Balance // the account's posted balance just after this entry
	Time        int64          // Unix ns, unique per account
}

// Entries returns the two entries a change that posts makes (debit on the source, credit on
// the destination), or nil for a change that posts nothing.
func Entries(c *ledger.Change) []Entry {
	if !c.Posts() {
		return nil
	}
	t := c.Transfer
	return []Entry{
		{Account: t.Source, TransferID: t.ID, Direction: Debit, Amount: c.Amount, Kind: t.Kind,
			PostedAfter: c.SourceAfter, Time: c.Time},
		{Account: t.Destination, TransferID: t.ID, Direction: Credit, Amount: c.Amount, Kind: t.Kind,
			PostedAfter: c.DestinationAfter, Time: c.Time},
	}
}
